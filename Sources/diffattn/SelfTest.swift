// `diffattn selftest`: small problems on every supported kernel path against a naive
// double-precision reference; false on any mismatch.
import DiffAttnKernels
import Glibc

func runSelfTest() -> Bool {
    struct Case { var b, h, kv, nq, nk, d: Int; var causal: Bool; var masked: Bool }
    let cases = [Case(b: 1, h: 2, kv: 2, nq: 37, nk: 50, d: 40, causal: false, masked: false),
                 Case(b: 2, h: 4, kv: 2, nq: 70, nk: 33, d: 64, causal: true, masked: false),
                 Case(b: 2, h: 2, kv: 1, nq: 9, nk: 200, d: 80, causal: false, masked: true),
                 Case(b: 1, h: 1, kv: 1, nq: 130, nk: 130, d: 128, causal: true, masked: true)]
    var allPassed = true
    let chosen = KernelPath.selected
    for path in KernelPath.allCases.reversed() where path.isSupported {
        KernelPath.selected = path
        for c in cases {
            for algorithm in [SDPAAlgorithm.math, .flash] {
                let error = selfTestError(c.b, c.h, c.kv, c.nq, c.nk, c.d, causal: c.causal, masked: c.masked,
                                          algorithm: algorithm)
                let passed = error <= 2e-4
                allPassed = allPassed && passed
                print(pad(path.name, 10, right: true) + pad(algorithm == .math ? "math" : "flash", 6, right: true)
                      + " B=\(c.b) H=\(c.h)/\(c.kv) Nq=\(c.nq) Nk=\(c.nk) D=\(c.d)"
                      + (c.causal ? " causal" : "") + (c.masked ? " masked" : "")
                      + "  rel.err \(error)  " + (passed ? "ok" : "MISMATCH"))
            }
        }
    }
    KernelPath.selected = chosen
    print(allPassed ? "selftest passed" : "selftest FAILED")
    return allPassed
}

/// Max |kernel − reference| / max |reference| for one random problem.
func selfTestError(_ b: Int, _ h: Int, _ kv: Int, _ nq: Int, _ nk: Int, _ d: Int, causal: Bool, masked: Bool,
                   algorithm: SDPAAlgorithm) -> Double {
    let q = randomBuffer(b * h * nq * d, seed: 1), k = randomBuffer(b * kv * nk * d, seed: 2)
    let v = randomBuffer(b * kv * nk * d, seed: 3), mask = randomBuffer(b * nk, seed: 4)
    let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: b * h * nq * d)
    defer { [q, k, v, mask, out].forEach { $0.deallocate() } }
    let maskStrides = Strides4(batch: nk, head: 0, token: 0, channel: 1)
    let problem = SDPAProblem(
        batch: b, queryHeads: h, keyValueHeads: kv, queryLength: nq, keyLength: nk, headDim: d, valueDim: d,
        query: SDPAOperand(data: q.baseAddress!, strides: .contiguous(heads: h, tokens: nq, channels: d)),
        key: SDPAOperand(data: k.baseAddress!, strides: .contiguous(heads: kv, tokens: nk, channels: d)),
        value: SDPAOperand(data: v.baseAddress!, strides: .contiguous(heads: kv, tokens: nk, channels: d)),
        output: out.baseAddress!, outputStrides: .contiguous(heads: h, tokens: nq, channels: d),
        mask: masked ? .additive(UnsafePointer(mask.baseAddress!), maskStrides) : .none,
        scale: 1 / Float(d).squareRoot(), isCausal: causal)
    scaledDotProductAttention(problem, algorithm: algorithm)
    var maxError = 0.0, maxRef = 1e-9
    for bi in 0..<b { for hi in 0..<h { for i in 0..<nq {
        let kh = hi / (h / kv)
        var scores = [Double](repeating: -.infinity, count: nk)
        for j in 0..<nk where !(causal && j > i) {
            var dot = 0.0
            for c in 0..<d { dot += Double(q[((bi * h + hi) * nq + i) * d + c]) * Double(k[((bi * kv + kh) * nk + j) * d + c]) }
            scores[j] = dot / Double(d).squareRoot() + (masked ? Double(mask[bi * nk + j]) : 0)
        }
        let top = scores.max()!
        let weights = scores.map { exp($0 - top) }
        let total = weights.reduce(0, +)
        for c in 0..<d {
            var acc = 0.0
            for j in 0..<nk { acc += weights[j] * Double(v[((bi * kv + kh) * nk + j) * d + c]) }
            let want: Double = acc / total
            let got = Double(out[((bi * h + hi) * nq + i) * d + c])
            maxError = max(maxError, abs(got - want)); maxRef = max(maxRef, abs(want))
        }
    } } }
    return maxError / maxRef
}
