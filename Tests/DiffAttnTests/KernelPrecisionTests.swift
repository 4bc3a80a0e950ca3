// bf16 operands/outputs and the int8 path of scaledDotProductAttention against the
// double-precision reference (KernelTestSupport.swift), with tolerances derived from the formats.
import DiffAttnKernels
import XCTest

final class KernelPrecisionTests: XCTestCase {
    override func tearDown() { KernelPath.selected = .best }

    /// bf16 inputs widen exactly to float32, so against a reference on the same (rounded) inputs
    /// the kernel keeps the float32 tolerance. A bf16 output adds one rounding: bf16 has 8
    /// significant bits, so its unit roundoff is 2⁻⁸: at most 2⁻⁸·|element| ≤ 2⁻⁸·max|want|.
    func testBFloat16InputsAndOutputs() {
        for path in KernelPath.allCases where path.isSupported {
            KernelPath.selected = path
            for (d, dv, nq, nk, layout) in [(64, 64, 130, 200, 0), (40, 24, 65, 77, 1), (8, 8, 5, 7, 2)] {
                for output in [false, true] {
                    var c = KernelAttentionCase(b: 2, h: 2, kvHeads: 1, nq: nq, nk: nk, d: d, dv: dv)
                    c.layout = layout; c.bf16Inputs = true; c.bf16Output = output
                    c.mask = .additive(batch: true, head: false, query: true, removeEvery: 7)
                    let want = c.compute(.math, reference: true)
                    let tolerance: Float = 2e-4 + (output ? 1.0 / 256 : 0)
                    for algorithm in [SDPAAlgorithm.math, .flash] {
                        assertClose(c.compute(algorithm, reference: false), want, tolerance: tolerance,
                                    "bf16 d\(d) layout \(layout) out-bf16 \(output) \(algorithm) \(path.name)")
                    }
                }
            }
        }
    }

    func testBFloat16CausalAndGroupedHeads() {
        var c = KernelAttentionCase(b: 1, h: 4, kvHeads: 2, nq: 100, nk: 100, d: 32, dv: 32)
        c.bf16Inputs = true; c.causal = true
        let want = c.compute(.math, reference: true)
        assertClose(c.compute(.flash, reference: false), want, "bf16 causal gqa")
    }

    /// The int8 path's worst-case error, from its formats: Q, K' = K − mean and V are rounded to
    /// int8 with step max|·|/127 (error ≤ half a step), P to 15 bits (error ≤ 1/65534 each). A score
    /// then moves by at most δ = scale·D·(Qmax·sk + K'max·sq + sq·sk/2)/2, which moves every
    /// softmax weight by a factor within e^±2δ: |Δout| ≤ (e^{2δ} − 1)·Vmax; V's rounding adds
    /// Vmax/254 and P's nk·Vmax/65534 (the row sum is ≥ 1); float32 arithmetic 2e-4·Vmax.
    private func int8Bound(_ c: KernelAttentionCase) -> Float {
        let q = KernelTestTensor(c.b, c.h, c.nq, c.d, layout: c.layout, seed: 1)
        let k = KernelTestTensor(c.b, c.kvHeads, c.nk, c.d, layout: c.layout, seed: 2)
        let v = KernelTestTensor(c.b, c.kvHeads, c.nk, c.dv, layout: c.layout, seed: 3)
        var qMax: Float = 0, kMax: Float = 0, vMax: Float = 0
        for bi in 0..<c.b {
            for hi in 0..<c.h { for i in 0..<c.nq { for dd in 0..<c.d { qMax = max(qMax, abs(q[bi, hi, i, dd])) } } }
            for hi in 0..<c.kvHeads {
                for dd in 0..<c.d {
                    var mean: Float = 0
                    for j in 0..<c.nk { mean += k[bi, hi, j, dd] }
                    mean /= Float(c.nk)
                    for j in 0..<c.nk { kMax = max(kMax, abs(k[bi, hi, j, dd] - mean)) }
                }
                for j in 0..<c.nk { for dd in 0..<c.dv { vMax = max(vMax, abs(v[bi, hi, j, dd])) } }
            }
        }
        let sq = qMax / 127, sk = kMax / 127, scale = c.scale ?? 1 / Float(c.d).squareRoot()
        let delta = scale * Float(c.d) * (qMax * sk + kMax * sq + sq * sk / 2) / 2
        return (exp(2 * delta) - 1) * vMax + vMax / 254 + Float(c.nk) * vMax / 65534 + 2e-4 * vMax
    }

    private func checkInt8(_ c: KernelAttentionCase, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        var c = c
        c.precision = .int8
        let want = c.compute(.flash, reference: true), got = c.compute(.flash, reference: false)
        let bound = int8Bound(c)
        var worst: Float = 0, dot = 0.0, gg = 0.0, ww = 0.0
        for (g, w) in zip(got, want) where !w.isNaN {
            worst = max(worst, abs(g - w)); dot += Double(g * w); gg += Double(g * g); ww += Double(w * w)
        }
        XCTAssertFalse(got.contains { $0.isNaN } != want.contains { $0.isNaN }, "\(label): NaN placement", file: file, line: line)
        XCTAssertLessThanOrEqual(worst, bound, "\(label): max error \(worst) above the format bound \(bound)", file: file, line: line)
        // SageAttention reports cosine similarity ≥ 0.999 for int8 Q·Kᵀ; this data is easier than that.
        if ww > 0 { XCTAssertGreaterThan(dot / (gg * ww).squareRoot(), 0.999, "\(label): cosine", file: file, line: line) }
    }

    func testInt8AgainstTheFormatBound() throws {
        try XCTSkipUnless(int8AttentionSupported, "int8 attention needs AVX2")
        checkInt8(KernelAttentionCase(b: 2, h: 2, kvHeads: 2, nq: 130, nk: 300, d: 64, dv: 64), "d64")
        checkInt8(KernelAttentionCase(b: 1, h: 2, kvHeads: 1, nq: 70, nk: 77, d: 40, dv: 40, layout: 1), "d40 cross gqa")
        checkInt8(KernelAttentionCase(b: 1, h: 1, kvHeads: 1, nq: 5, nk: 7, d: 7, dv: 5, layout: 2), "odd sizes strided")
        var masked = KernelAttentionCase(b: 2, h: 1, kvHeads: 1, nq: 70, nk: 100, d: 16, dv: 16)
        masked.mask = .boolean(keepNoneOnRow1: true)
        checkInt8(masked, "boolean mask, a fully masked row")
        var causal = KernelAttentionCase(b: 1, h: 1, kvHeads: 1, nq: 200, nk: 200, d: 32, dv: 32)
        causal.causal = true
        checkInt8(causal, "causal")
        var bf16 = KernelAttentionCase(b: 1, h: 2, kvHeads: 2, nq: 64, nk: 96, d: 64, dv: 64)
        bf16.bf16Inputs = true; bf16.bf16Output = true
        checkInt8(bf16, "bf16 in and out")
    }

    func testBFloat16AndInt8AreBitwiseIdenticalForAnyThreadCount() throws {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        var c = KernelAttentionCase(b: 2, h: 3, kvHeads: 3, nq: 200, nk: 150, d: 40, dv: 40)
        c.mask = .additive(batch: true, head: false, query: true, removeEvery: 5)
        c.bf16Inputs = true; c.bf16Output = true
        var cases = [(c, SDPAAlgorithm.math), (c, .flash)]
        if int8AttentionSupported { var i = c; i.precision = .int8; cases.append((i, .flash)) }
        for (variant, algorithm) in cases {
            var results: [[UInt32]] = []
            for threads in [1, 2, 3] {
                Parallel.threadCount = threads
                results.append(variant.compute(algorithm, reference: false).map(\.bitPattern))
            }
            XCTAssertEqual(results[0], results[1], "\(variant.precision) \(algorithm) 1 vs 2 threads")
            XCTAssertEqual(results[0], results[2], "\(variant.precision) \(algorithm) 1 vs 3 threads")
        }
    }
}
