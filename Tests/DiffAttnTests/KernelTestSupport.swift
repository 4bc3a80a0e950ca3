// Shared helpers for the kernel tests: deterministic data, strided layouts, and a naive
// double-precision reference of torch's scaled_dot_product_attention.
import DiffAttnKernels
import XCTest

struct SeededNumbers {
    var state: UInt64
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1   // [-1, 1]
    }
}

/// A rank-4 float tensor stored with arbitrary strides inside a larger buffer.
struct KernelTestTensor {
    var storage: [Float]
    var shape: (Int, Int, Int, Int)
    var strides: Strides4

    /// `layout`: 0 = contiguous (B,H,N,D); 1 = (B,N,H,D) like diffusers before its transpose;
    /// 2 = (B,H,N,D) with every channel 2 apart and rows padded (nothing contiguous).
    init(_ b: Int, _ h: Int, _ n: Int, _ d: Int, layout: Int, seed: UInt64) {
        shape = (b, h, n, d)
        switch layout {
        case 1: strides = Strides4(batch: n * h * d, head: d, token: h * d, channel: 1)
        case 2: strides = Strides4(batch: h * n * (2 * d + 3), head: n * (2 * d + 3), token: 2 * d + 3, channel: 2)
        default: strides = .contiguous(heads: h, tokens: n, channels: d)
        }
        let count = max(1, (b - 1) * strides.batch + (h - 1) * strides.head + (n - 1) * strides.token
                        + (d - 1) * strides.channel + 1)
        storage = [Float](repeating: .nan, count: count)   // untouched padding would poison results
        var rng = SeededNumbers(state: seed)
        for i in 0..<b { for j in 0..<h { for t in 0..<n { for c in 0..<d {
            storage[offset(i, j, t, c)] = rng.next()
        } } } }
    }

    func offset(_ b: Int, _ h: Int, _ n: Int, _ d: Int) -> Int {
        b * strides.batch + h * strides.head + n * strides.token + d * strides.channel
    }
    subscript(b: Int, h: Int, n: Int, d: Int) -> Float { storage[offset(b, h, n, d)] }
}

enum KernelMaskSpec {
    case none
    /// Additive mask of shape (mb, mh, mq, Nk), each of mb/mh/mq either 1 (broadcast) or full;
    /// `removeEvery` > 0 puts -inf on keys j with j % removeEvery == 1.
    case additive(batch: Bool, head: Bool, query: Bool, removeEvery: Int)
    /// Boolean mask over (B, 1, Nq, Nk), or (B, 1, 1, Nk) when `perQuery` is false;
    /// `keepNoneOnRow1` removes every key of query row 1.
    case boolean(keepNoneOnRow1: Bool, perQuery: Bool = true)
}

struct KernelAttentionCase {
    var b = 1, h = 1, kvHeads = 1, nq = 5, nk = 7, d = 8, dv = 8
    var layout = 0
    var mask = KernelMaskSpec.none
    var causal = false
    var fullyMasked = FullyMaskedRows.zero
    var scale: Float? = nil
    /// Query, key and value rounded to bf16 and passed as bf16 (the reference sees the rounded values).
    var bf16Inputs = false
    var bf16Output = false
    var precision = SDPAPrecision.standard

    /// Runs the kernel and the reference; returns (got, reference), both (B, H, Nq, Dv) contiguous.
    func run(_ algorithm: SDPAAlgorithm) -> (got: [Float], want: [Float]) {
        (compute(algorithm, reference: false), compute(algorithm, reference: true))
    }

    /// The kernel's output, or (`reference`) the naive double-precision one.
    func compute(_ algorithm: SDPAAlgorithm, reference: Bool) -> [Float] {
        var q = KernelTestTensor(b, h, nq, d, layout: layout, seed: 1)
        var k = KernelTestTensor(b, kvHeads, nk, d, layout: layout, seed: 2)
        var v = KernelTestTensor(b, kvHeads, nk, dv, layout: layout, seed: 3)
        if bf16Inputs {
            for i in q.storage.indices { q.storage[i] = bf16Rounded(q.storage[i]) }
            for i in k.storage.indices { k.storage[i] = bf16Rounded(k.storage[i]) }
            for i in v.storage.indices { v.storage[i] = bf16Rounded(v.storage[i]) }
        }
        let qBits = q.storage.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
        let kBits = k.storage.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
        let vBits = v.storage.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
        var outBits = [UInt16](repeating: 0, count: b * h * nq * dv)
        let s = scale ?? 1 / Float(d).squareRoot()
        var floatMask: [Float] = [], byteMask: [UInt8] = []
        var maskStrides = Strides4(batch: 0, head: 0, token: 0, channel: 1)
        var maskAt: (Int, Int, Int, Int) -> Double? = { _, _, _, _ in 0 }   // nil = removed
        switch mask {
        case .none: break
        case let .additive(mb, mh, mq, every):
            let sb = mb ? b : 1, sh = mh ? h : 1, sq = mq ? nq : 1
            maskStrides = Strides4(batch: mb ? sh * sq * nk : 0, head: mh ? sq * nk : 0, token: mq ? nk : 0, channel: 1)
            var rng = SeededNumbers(state: 4)
            floatMask = (0..<(sb * sh * sq * nk)).map { i in
                every > 0 && (i % nk) % every == 1 ? -.infinity : rng.next() * 2
            }
            let fm = floatMask, ms = maskStrides
            maskAt = { bi, hi, qi, kj in
                let x = fm[bi * ms.batch + hi * ms.head + qi * ms.token + kj]
                return x == -.infinity ? nil : Double(x)
            }
        case let .boolean(keepNone, perQuery):
            maskStrides = Strides4(batch: nq * nk, head: 0, token: perQuery ? nk : 0, channel: 1)
            byteMask = (0..<(b * nq * nk)).map { i in
                let row = i / nk % nq
                return keepNone && row == 1 ? 0 : UInt8((i * 7 + 3) % 5 == 0 ? 0 : 1 + i % 3)
            }
            let bm = byteMask, ms = maskStrides
            maskAt = { bi, _, qi, kj in bm[bi * ms.batch + qi * ms.token + kj] == 0 ? nil : 0 }
        }
        var got = [Float](repeating: -7, count: b * h * nq * dv)
        if !reference {
            q.storage.withUnsafeBufferPointer { qp in k.storage.withUnsafeBufferPointer { kp in
            v.storage.withUnsafeBufferPointer { vp in floatMask.withUnsafeBufferPointer { fp in
            byteMask.withUnsafeBufferPointer { bp in got.withUnsafeMutableBufferPointer { op in
                let sdpaMask: SDPAMask
                switch mask {
                case .none: sdpaMask = .none
                case .additive: sdpaMask = .additive(fp.baseAddress!, maskStrides)
                case .boolean: sdpaMask = .boolean(bp.baseAddress!, maskStrides)
                }
                var problem = SDPAProblem(
                    batch: b, queryHeads: h, keyValueHeads: kvHeads, queryLength: nq, keyLength: nk,
                    headDim: d, valueDim: dv,
                    query: SDPAOperand(data: qp.baseAddress!, strides: q.strides),
                    key: SDPAOperand(data: kp.baseAddress!, strides: k.strides),
                    value: SDPAOperand(data: vp.baseAddress!, strides: v.strides),
                    output: op.baseAddress!, outputStrides: .contiguous(heads: h, tokens: nq, channels: dv),
                    mask: sdpaMask, scale: s, isCausal: causal, fullyMaskedRows: fullyMasked)
                problem.precision = precision
                qBits.withUnsafeBufferPointer { qb in kBits.withUnsafeBufferPointer { kb in
                vBits.withUnsafeBufferPointer { vb in outBits.withUnsafeMutableBufferPointer { ob in
                    if bf16Inputs {
                        problem.query = SDPAOperand(bfloat16: qb.baseAddress!, strides: q.strides)
                        problem.key = SDPAOperand(bfloat16: kb.baseAddress!, strides: k.strides)
                        problem.value = SDPAOperand(bfloat16: vb.baseAddress!, strides: v.strides)
                    }
                    if bf16Output {
                        problem.output = UnsafeMutableRawPointer(ob.baseAddress!).assumingMemoryBound(to: Float.self)
                        problem.outputFormat = .bfloat16
                    }
                    scaledDotProductAttention(problem, algorithm: algorithm)
                } } } }
            } } } } } }
            if bf16Output { return outBits.map { Float(bitPattern: UInt32($0) << 16) } }
            return got
        }

        var want = [Float](repeating: 0, count: got.count)
        let group = h / kvHeads
        for bi in 0..<b { for hi in 0..<h { for i in 0..<nq {
            var scores = [Double?](repeating: nil, count: nk)
            for j in 0..<nk where !(causal && j > i) {
                guard let m = maskAt(bi, hi, i, j) else { continue }
                var dot = 0.0
                for c in 0..<d { dot += Double(q[bi, hi, i, c]) * Double(k[bi, hi / group, j, c]) }
                scores[j] = Double(s) * dot + m
            }
            let finite = scores.compactMap { $0 }
            for c in 0..<dv {
                let index = ((bi * h + hi) * nq + i) * dv + c
                guard let top = finite.max() else {
                    want[index] = fullyMasked == .nan ? .nan : 0; continue
                }
                var num = 0.0, den = 0.0
                for j in 0..<nk { if let x = scores[j] { let e = exp(x - top); den += e; num += e * Double(v[bi, hi / group, j, c]) } }
                want[index] = Float(num / den)
            }
        } } }
        return want
    }
}

/// `x` rounded to the nearest bf16 (ties to even), as float32.
func bf16Rounded(_ x: Float) -> Float {
    let bits = x.bitPattern
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
}

/// Asserts max |got − want| ≤ tolerance · max |want|, with NaNs in the same places.
func assertClose(_ got: [Float], _ want: [Float], tolerance: Float = 2e-4, _ message: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, message, file: file, line: line)
    var maxError: Float = 0, maxRef: Float = 1e-6
    for (g, w) in zip(got, want) {
        if w.isNaN || g.isNaN {
            if w.isNaN != g.isNaN { XCTFail("\(message): NaN mismatch got \(g) want \(w)", file: file, line: line); return }
            continue
        }
        maxError = max(maxError, abs(g - w)); maxRef = max(maxRef, abs(w))
    }
    XCTAssertLessThanOrEqual(maxError / maxRef, tolerance, "\(message): relative error \(maxError / maxRef)",
                             file: file, line: line)
}
