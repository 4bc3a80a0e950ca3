// `diffattn bench-dit`: throughput of the DiT kernels — the rotary step of each family at one
// realistic shape, and the ReLU linear attention of Sana.
import DiffAttnKernels
import Glibc

func runDiTBenchmark(quick: Bool) {
    print("diffattn bench-dit — \(Parallel.threadCount) thread(s), kernel path \(KernelPath.selected.name)")
    print("")
    benchRotary(quick: quick, all: true)
    benchSana(quick: quick, fmaPeak: nil)
}

/// `bench`'s kernel-level rows: rotary, Sana's linear attention, and the layerwise-cast GEMM.
func runKernelPathsBenchmark(quick: Bool, fmaPeak: Double) {
    benchRotary(quick: quick, all: false)
    benchSana(quick: quick, fmaPeak: fmaPeak)
    benchLayerwiseCasting(quick: quick, fmaPeak: fmaPeak)
}

func benchRotary(quick: Bool, all: Bool) {
    print(pad("rotary (family: B,L,H,D,span)", 44, right: true) + pad("ms", 9) + pad("GB/s", 8) + pad("Mrows/s", 10))
    // (name, batch, tokens, heads, headDim, rotated span, rule, per-head tables, lane stride)
    let cases: [(String, Int, Int, Int, Int, Int, RotaryRule, Bool, Int)] = [
        ("Flux interleaved", 1, 4608, 24, 128, 128, .interleaved, false, 1),
        ("CogVideoX interleaved", 2, 4096, 30, 64, 64, .interleaved, false, 1),
        ("Hunyuan-DiT interleaved", 2, 4096, 16, 88, 88, .interleaved, false, 1),
        ("Mochi per-head pairs", 1, 4096, 24, 128, 128, .pairAngles, true, 1),
        ("Lumina complex", 2, 4096, 32, 72, 72, .pairAngles, false, 2),
        ("Stable Audio partial", 2, 1024, 24, 64, 32, .rotateHalf, false, 1),
        ("Allegro axis (rotate-half)", 2, 4096, 24, 96, 32, .rotateHalf, false, 1),
    ]
    for (name, b, l, h, d, span, rule, perHead, laneStride) in all ? cases : Array(cases.prefix(2)) {
        let x = randomBuffer(b * l * h * d, seed: 1)
        let tableWidth = rule == .pairAngles ? span / 2 * laneStride : span
        let tableRows = perHead ? l * h : l
        let c = randomBuffer(tableRows * tableWidth, seed: 2), s = randomBuffer(tableRows * tableWidth, seed: 3)
        let target = RotaryTarget(data: x.baseAddress!, batch: b, tokens: l, heads: h, batchStride: l * h * d,
                                  tokenStride: h * d, headStride: d)
        let table = RotaryTable(cos: c.baseAddress!, sin: s.baseAddress!, rowStride: perHead ? h * tableWidth : tableWidth,
                                headStride: perHead ? tableWidth : 0, laneStride: laneStride)
        let seconds = bestTime(repeats: quick ? 3 : 10) {
            applyRotary(target, laneOffset: 0, width: span, rule: rule, table: table)
        }
        // Bytes: activations read and written over the span, tables read once per token.
        let bytes = Double(b * l * h * span * 8 + b * l * (perHead ? h : 1) * tableWidth * 8)
        print(pad("\(name): \(b),\(l),\(h),\(d),\(span)", 44, right: true) + pad(fixed(seconds * 1e3, 2), 9)
              + pad(fixed(bytes / seconds / 1e9, 1), 8) + pad(fixed(Double(b * l * h) / seconds / 1e6, 0), 10))
        [x, c, s].forEach { $0.deallocate() }
    }
    print("")
}

func benchSana(quick: Bool, fmaPeak: Double?) {
    print(pad("Sana linear attention (B,H,N,D)", 44, right: true) + pad("ms", 9) + pad("GFLOP/s", 9) + pad("GB/s", 8)
          + (fmaPeak == nil ? "" : pad("/FMA", 7)))
    for (b, h, n, d) in [(2, 70, 1024, 32), (2, 70, 4096, 32), (1, 16, 1024, 32)] {
        let w = h * d
        let q = randomBuffer(b * n * w, seed: 4), k = randomBuffer(b * n * w, seed: 5), v = randomBuffer(b * n * w, seed: 6)
        let out = randomBuffer(b * n * w, seed: 7)
        let strides = Strides4(batch: n * w, head: d, token: w, channel: 1)
        let problem = LinearAttentionProblem(batch: b, heads: h, queryLength: n, keyLength: n, headDim: d, valueDim: d,
                                             query: SDPAOperand(data: q.baseAddress!, strides: strides),
                                             key: SDPAOperand(data: k.baseAddress!, strides: strides),
                                             value: SDPAOperand(data: v.baseAddress!, strides: strides),
                                             output: out.baseAddress!, outputStrides: strides, eps: 1e-15)
        let seconds = bestTime(repeats: quick ? 3 : 10) { reluLinearAttention(problem) }
        // (D+1)×D summary over the keys plus (D+1)×D products per query, 2 flops each.
        let flops = 2.0 * Double(b * h) * Double(2 * n) * Double((d + 1) * d)
        let gflops = flops / seconds / 1e9, bytes = 4.0 * 4 * Double(b * n * w)   // q, k, v read, out written
        print(pad("(\(b),\(h),\(n),\(d))", 44, right: true) + pad(fixed(seconds * 1e3, 2), 9) + pad(fixed(gflops, 1), 9)
              + pad(fixed(bytes / seconds / 1e9, 1), 8) + (fmaPeak.map { pad(fixed(100 * gflops / $0, 0) + "%", 7) } ?? ""))
        [q, k, v, out].forEach { $0.deallocate() }
    }
    print("")
}
