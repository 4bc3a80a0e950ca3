// scaledDotProductAttention (math and flash) against a double-precision reference of torch's
// semantics, on every kernel path this CPU supports.
import DiffAttnKernels
import XCTest

final class KernelSDPATests: XCTestCase {
    override func tearDown() { KernelPath.selected = .best }

    /// Runs `body` once per supported kernel path (AVX-512, AVX2, portable).
    private func forEachPath(_ body: (KernelPath) -> Void) {
        for path in KernelPath.allCases where path.isSupported {
            KernelPath.selected = path
            body(path)
        }
        KernelPath.selected = .best
    }

    private func check(_ c: KernelAttentionCase, _ label: String, paths: Bool = true,
                       file: StaticString = #filePath, line: UInt = #line) {
        let want = c.compute(.math, reference: true)
        let run = { (path: KernelPath) in
            for algorithm in [SDPAAlgorithm.math, .flash] {
                let got = c.compute(algorithm, reference: false)
                assertClose(got, want, "\(label) \(algorithm) \(path.name)", file: file, line: line)
            }
        }
        if paths { forEachPath(run) } else { run(KernelPath.selected) }
    }

    func testShapesAndHeadDimensions() {
        for d in [8, 40, 64, 80, 128] {
            check(KernelAttentionCase(b: 2, h: 2, kvHeads: 2, nq: 77, nk: 100, d: d, dv: d), "d=\(d)")
        }
    }

    func testOddLengths() {
        for (nq, nk) in [(1, 1), (1, 333), (7, 1), (7, 77), (333, 7), (65, 97), (130, 193)] {
            check(KernelAttentionCase(b: 1, h: 2, kvHeads: 2, nq: nq, nk: nk, d: 40, dv: 24), "nq=\(nq) nk=\(nk)", paths: nq * nk < 5000)
        }
    }

    func testValueDimDiffersFromHeadDim() {
        check(KernelAttentionCase(b: 1, h: 1, kvHeads: 1, nq: 70, nk: 50, d: 16, dv: 7), "dv=7")
        check(KernelAttentionCase(b: 1, h: 1, kvHeads: 1, nq: 20, nk: 50, d: 3, dv: 33), "d=3 dv=33")
    }

    func testStridedInputs() {
        check(KernelAttentionCase(b: 2, h: 3, kvHeads: 3, nq: 33, nk: 45, d: 40, dv: 40, layout: 1), "(B,N,H,D) layout")
        check(KernelAttentionCase(b: 2, h: 2, kvHeads: 2, nq: 33, nk: 45, d: 24, dv: 12, layout: 2), "channel stride 2")
        // More than one tile per head: strided keys and values are gathered into dense rows first
        // (SDPAPacking.swift); only the layout changes, so every layout gives the same bits.
        for (d, dv, kvHeads) in [(40, 40, 3), (24, 12, 1)] {
            let dense = KernelAttentionCase(b: 2, h: 3, kvHeads: kvHeads, nq: 130, nk: 100, d: d, dv: dv)
            check(dense, "dense d=\(d) kv=\(kvHeads)", paths: false)
            for layout in [1, 2] {
                var c = dense
                c.layout = layout
                check(c, "layout \(layout) d=\(d) kv=\(kvHeads), gathered", paths: false)
                for algorithm in [SDPAAlgorithm.math, .flash] {
                    XCTAssertEqual(c.compute(algorithm, reference: false), dense.compute(algorithm, reference: false),
                                   "layout \(layout) \(algorithm): bitwise the dense layout's result")
                }
            }
        }
    }

    /// With more than one tile per head the narrow paths read K and V from a copy in the kernels'
    /// own layout (SDPAPacking.swift, `KernelLayout`); a single-tile call reads them as given. Rows
    /// computed both ways must be bitwise equal — for head and value widths that leave the key
    /// groups (6) and channel groups (6) partly filled.
    func testKernelLayoutGivesTheBitsOfThePlainLayout() {
        forEachPath { path in
            guard path != .avx512 else { return }   // the wide tiles read the plain layout
            do {
                for (nk, d, dv) in [(100, 40, 40), (77, 128, 128), (7, 5, 3), (131, 33, 17)] {
                    let nq = 130
                    var rng = SeededNumbers(state: UInt64(nk * 1000 + d))
                    let q = (0..<(nq * d)).map { _ in rng.next() }, k = (0..<(nk * d)).map { _ in rng.next() }
                    let v = (0..<(nk * dv)).map { _ in rng.next() }
                    for algorithm in [SDPAAlgorithm.math, .flash] {
                        var whole = [Float](repeating: 0, count: nq * dv), pieces = whole
                        for (first, rows) in [(0, nq), (0, 64), (64, 64), (128, 2)] {
                            q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                                let out = UnsafeMutablePointer<Float>.allocate(capacity: rows * dv)
                                defer { out.deallocate() }
                                let problem = SDPAProblem(
                                    batch: 1, queryHeads: 1, keyValueHeads: 1, queryLength: rows, keyLength: nk,
                                    headDim: d, valueDim: dv,
                                    query: SDPAOperand(data: qp.baseAddress! + first * d, strides: .contiguous(heads: 1, tokens: rows, channels: d)),
                                    key: SDPAOperand(data: kp.baseAddress!, strides: .contiguous(heads: 1, tokens: nk, channels: d)),
                                    value: SDPAOperand(data: vp.baseAddress!, strides: .contiguous(heads: 1, tokens: nk, channels: dv)),
                                    output: out, outputStrides: .contiguous(heads: 1, tokens: rows, channels: dv),
                                    mask: .none, scale: 0.3, isCausal: false, fullyMaskedRows: .zero)
                                scaledDotProductAttention(problem, algorithm: algorithm)
                                for i in 0..<(rows * dv) {
                                    if rows == nq { whole[i] = out[i] } else { pieces[first * dv + i] = out[i] }
                                }
                            } } }
                        }
                        XCTAssertEqual(whole.map(\.bitPattern), pieces.map(\.bitPattern),
                                       "\(path) \(algorithm) keys \(nk) d \(d) dv \(dv): packed and plain layouts differ")
                    }
                }
            }
        }
    }

    func testAdditiveMaskBroadcastShapes() {
        let shapes: [(Bool, Bool, Bool, String)] = [(true, false, false, "(B,1,1,Nk)"), (true, false, true, "(B,1,Nq,Nk)"),
                                                    (false, true, true, "(1,H,Nq,Nk)"), (true, true, true, "(B,H,Nq,Nk)")]
        for (mb, mh, mq, name) in shapes {
            var c = KernelAttentionCase(b: 2, h: 2, kvHeads: 2, nq: 70, nk: 101, d: 16, dv: 16)
            c.mask = .additive(batch: mb, head: mh, query: mq, removeEvery: 3)
            check(c, name)
        }
    }

    func testBooleanMask() {
        var c = KernelAttentionCase(b: 2, h: 2, kvHeads: 2, nq: 70, nk: 130, d: 24, dv: 24)
        c.mask = .boolean(keepNoneOnRow1: false)
        check(c, "boolean")
        c.mask = .boolean(keepNoneOnRow1: false, perQuery: false)
        check(c, "boolean (B,1,1,Nk)")
    }

    func testNoKeysGiveZeros() {
        for policy in [FullyMaskedRows.zero, .nan] {
            var c = KernelAttentionCase(b: 1, h: 1, kvHeads: 1, nq: 3, nk: 0, d: 8, dv: 8)
            c.fullyMasked = policy
            for algorithm in [SDPAAlgorithm.math, .flash] {
                XCTAssertTrue(c.compute(algorithm, reference: false).allSatisfy { $0 == 0 }, "\(policy) \(algorithm)")
            }
        }
    }

    func testCausalWithDifferentLengths() {
        for (nq, nk) in [(100, 100), (70, 200), (200, 70), (1, 9)] {
            var c = KernelAttentionCase(b: 1, h: 2, kvHeads: 2, nq: nq, nk: nk, d: 16, dv: 16)
            c.causal = true
            check(c, "causal nq=\(nq) nk=\(nk)")
            c.mask = .additive(batch: true, head: false, query: true, removeEvery: 4)
            check(c, "causal+mask nq=\(nq) nk=\(nk)", paths: false)
        }
    }

    func testGroupedQueryHeads() {
        check(KernelAttentionCase(b: 2, h: 6, kvHeads: 2, nq: 40, nk: 50, d: 16, dv: 16), "GQA 6/2")
        check(KernelAttentionCase(b: 1, h: 4, kvHeads: 1, nq: 40, nk: 50, d: 16, dv: 16, layout: 1), "MQA 4/1")
    }

    func testFullyMaskedRowsGiveZerosOrNaN() {
        for policy in [FullyMaskedRows.zero, .nan] {
            var c = KernelAttentionCase(b: 2, h: 2, kvHeads: 2, nq: 9, nk: 200, d: 16, dv: 16)
            c.mask = .boolean(keepNoneOnRow1: true)
            c.fullyMasked = policy
            for algorithm in [SDPAAlgorithm.math, .flash] {
                let (got, want) = c.run(algorithm)
                assertClose(got, want, "fully masked \(policy) \(algorithm)")
                let row1 = got[16..<32]
                XCTAssertTrue(row1.allSatisfy { policy == .nan ? $0.isNaN : $0 == 0 }, "\(policy) \(algorithm)")
                XCTAssertFalse(got[0..<16].contains { $0.isNaN }, "other rows stay finite")
            }
        }
    }

    func testScoresAreScaled() {
        var c = KernelAttentionCase(b: 1, h: 1, kvHeads: 1, nq: 20, nk: 30, d: 16, dv: 16)
        c.scale = 2.5
        check(c, "scale 2.5")
    }

    func testResultsAreBitwiseIdenticalForAnyThreadCount() {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        var c = KernelAttentionCase(b: 2, h: 3, kvHeads: 3, nq: 200, nk: 150, d: 40, dv: 40)
        c.mask = .additive(batch: true, head: false, query: true, removeEvery: 5)
        for algorithm in [SDPAAlgorithm.math, .flash] {
            var results: [[UInt32]] = []
            for threads in [1, 2, 3] {
                Parallel.threadCount = threads
                results.append(c.compute(algorithm, reference: false).map(\.bitPattern))
            }
            XCTAssertEqual(results[0], results[1], "\(algorithm) 1 vs 2 threads")
            XCTAssertEqual(results[0], results[2], "\(algorithm) 1 vs 3 threads")
        }
    }
}
