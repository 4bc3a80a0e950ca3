// `diffattn bench`, second half: whole Attention forwards (projections + attention + output) at the
// shapes of SD 1.5, SDXL, SD3 and Flux, the sliced, added-KV and linear (Sana) processors, the
// time split of a forward (the profile), and thread scaling 1 → 2.
import DiffAttn
import DiffAttnKernels

struct ForwardCase {
    var name: String
    var config: AttentionConfig
    var hidden: [Int]
    var encoder: [Int]?
    var flops: Double
    var rotaryRows = 0, rotaryWidth = 0
}

/// 2·rows·in·out per projection, plus 4·B·H·Lq·Lk·D for attention.
func projectionFlops(_ rows: Int, _ inF: Int, _ outF: Int) -> Double { 2 * Double(rows) * Double(inF) * Double(outF) }
func attentionFlops(_ b: Int, _ h: Int, _ lq: Int, _ lk: Int, _ d: Int) -> Double {
    4 * Double(b * h) * Double(lq) * Double(lk) * Double(d)
}

func forwardCases(quick: Bool) -> [ForwardCase] {
    var cases: [ForwardCase] = []
    func attention(_ c: Int, _ h: Int, _ d: Int) -> AttentionConfig {
        var config = AttentionConfig(queryDim: c); config.heads = h; config.dimHead = d; return config
    }
    let n15 = quick ? 1024 : 4096
    var sd15 = attention(320, 8, 40)
    cases.append(ForwardCase(name: "SD1.5 self (2,\(n15),320) h8", config: sd15, hidden: [2, n15, 320], encoder: nil,
                             flops: 4 * projectionFlops(2 * n15, 320, 320) + attentionFlops(2, 8, n15, n15, 40)))
    sd15.crossAttentionDim = 768
    cases.append(ForwardCase(name: "SD1.5 cross 77×768", config: sd15, hidden: [2, n15, 320], encoder: [2, 77, 768],
                             flops: 2 * projectionFlops(2 * n15, 320, 320) + 2 * projectionFlops(154, 768, 320)
                                 + attentionFlops(2, 8, n15, 77, 40)))
    cases.append(ForwardCase(name: "SDXL self (2,1024,640) h10", config: attention(640, 10, 64), hidden: [2, 1024, 640],
                             encoder: nil, flops: 4 * projectionFlops(2048, 640, 640) + attentionFlops(2, 10, 1024, 1024, 64)))
    var sd3 = attention(1536, 24, 64)
    sd3.addedKVProjDim = 1536; sd3.outDim = 1536; sd3.contextPreOnly = false; sd3.bias = true; sd3.eps = 1e-6
    sd3.qkNorm = .rmsNorm; sd3.processor = ProcessorConfig(kind: .jointAttnProcessor2_0)
    let n3 = quick ? 256 : 1024
    cases.append(ForwardCase(name: "SD3 joint (2,\(n3)+154,1536)", config: sd3, hidden: [2, n3, 1536], encoder: [2, 154, 1536],
                             flops: 4 * projectionFlops(2 * (n3 + 154), 1536, 1536)
                                 + attentionFlops(2, 24, n3 + 154, n3 + 154, 64)))
    var flux = attention(3072, 24, 128)
    flux.moduleClass = .fluxAttention; flux.addedKVProjDim = 3072; flux.outDim = 3072; flux.contextPreOnly = false
    flux.bias = true; flux.eps = 1e-6
    let nf = quick ? 256 : 1024, tf = quick ? 128 : 512
    cases.append(ForwardCase(name: "Flux double (1,\(nf)+\(tf),3072)", config: flux, hidden: [1, nf, 3072], encoder: [1, tf, 3072],
                             flops: 4 * projectionFlops(nf + tf, 3072, 3072) + attentionFlops(1, 24, nf + tf, nf + tf, 128),
                             rotaryRows: nf + tf, rotaryWidth: 128))
    var sliced = attention(320, 8, 40); sliced.processor = ProcessorConfig(kind: .slicedAttnProcessor, sliceSize: 4)
    cases.append(ForwardCase(name: "sliced(4) SD1.5 self", config: sliced, hidden: [2, n15, 320], encoder: nil,
                             flops: cases[0].flops))
    var added = attention(512, 8, 64)
    added.crossAttentionDim = 512; added.addedKVProjDim = 768; added.normNumGroups = 32
    added.processor = ProcessorConfig(kind: .attnAddedKVProcessor2_0)
    cases.append(ForwardCase(name: "added-KV (2,512,32,32)+77", config: added, hidden: [2, 512, 32, 32], encoder: [2, 77, 768],
                             flops: 3 * projectionFlops(2048, 512, 512) + 2 * projectionFlops(154, 768, 512)
                                 + projectionFlops(2048, 512, 512) + attentionFlops(2, 8, 1024, 1024 + 77, 64)))
    var sana = attention(2240, 70, 32)
    sana.kvHeads = 70; sana.qkNorm = .rmsNormAcrossHeads; sana.bias = true
    sana.processor = ProcessorConfig(kind: .sanaLinearAttnProcessor2_0)
    let ns = quick ? 1024 : 4096
    cases.append(ForwardCase(name: "Sana linear (2,\(ns),2240) h70", config: sana, hidden: [2, ns, 2240], encoder: nil,
                             flops: 4 * projectionFlops(2 * ns, 2240, 2240) + 4 * Double(2 * 70 * ns) * 33 * 32))
    return cases
}

func randomTensor(_ shape: [Int], _ rng: inout SeededStream) -> Tensor {
    Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in rng.next() })
}

/// Best time of one forward of `c` (nil when the module cannot be built).
func timeForward(_ c: ForwardCase, repeats: Int) -> Double? {
    guard let attention = try? Attention(c.config) else { return nil }
    var rng = SeededStream(state: 7)
    var inputs = AttentionInputs(hiddenStates: randomTensor(c.hidden, &rng),
                                 encoderHiddenStates: c.encoder.map { randomTensor($0, &rng) })
    if c.rotaryRows > 0 {
        let t = rotaryTables(dim: c.rotaryWidth, positions: (0..<c.rotaryRows).map(Double.init), theta: 10000,
                             linearFactor: 1, ntkFactor: 1, layout: .repeatInterleaved, float64: true)
        inputs.dit.rotary = RotaryPair(cos: Tensor(shape: [c.rotaryRows, c.rotaryWidth], storage: t.cos),
                                       sin: Tensor(shape: [c.rotaryRows, c.rotaryWidth], storage: t.sin))
    }
    do { _ = try attention.forward(inputs) } catch { print("  \(c.name): \(error)"); return nil }
    return bestTime(repeats: repeats, warmUp: false) { _ = try? attention.forward(inputs) }
}

func runForwardBenchmark(quick: Bool, fmaPeak: Double) {
    print(pad("Attention forward (fp32)", 32, right: true) + pad("ms", 9) + pad("GFLOP/s", 10) + pad("/FMA", 7))
    for c in forwardCases(quick: quick) {
        guard let seconds = timeForward(c, repeats: quick ? 2 : 4) else {
            print(pad(c.name, 32, right: true) + "  (not available)"); continue
        }
        let gflops = c.flops / seconds / 1e9
        print(pad(c.name, 32, right: true) + pad(fixed(seconds * 1e3, 1), 9) + pad(fixed(gflops, 1), 10)
              + pad(fixed(100 * gflops / fmaPeak, 0) + "%", 7))
    }
    print("")
    // The profile: the same forward's parts alone at its shapes.
    print(pad("where a forward's time goes", 32, right: true) + pad("total ms", 10) + pad("proj", 8) + pad("SDPA", 8)
          + pad("other", 8))
    let n15 = quick ? 1024 : 4096
    for (name, c, h, d, n, keys, cd) in [("SD1.5 self", 320, 8, 40, n15, nil, nil), ("SD1.5 cross", 320, 8, 40, n15, 77, 768),
                                          ("SDXL self", 640, 10, 64, 1024, nil, nil)] as [(String, Int, Int, Int, Int, Int?, Int?)] {
        guard let r = forwardBreakdown(channels: c, heads: h, dimHead: d, tokens: n, keys: keys, contextDim: cd,
                                       repeats: quick ? 2 : 4) else { continue }
        func share(_ x: Double) -> String { fixed(100 * x / r.total, 0) + "%" }
        print(pad(name, 32, right: true) + pad(fixed(r.total * 1e3, 1), 10) + pad(share(r.projections), 8)
              + pad(share(r.attention), 8) + pad(share(max(0, r.total - r.projections - r.attention)), 8))
    }
    print("")
}

/// Thread scaling: the same work at 1 and at the configured thread count.
func runScalingBenchmark(quick: Bool) {
    let threads = Parallel.threadCount
    guard threads > 1 else { return }
    print(pad("thread scaling", 32, right: true) + pad("1 thr ms", 10) + pad("\(threads) thr ms", 10) + pad("speed-up", 10))
    let n = 2048, k = 640
    let x = randomBuffer(n * k, seed: 1), w = randomBuffer(k * k, seed: 2), y = randomBuffer(n * k, seed: 3)
    defer { [x, w, y].forEach { $0.deallocate() } }
    let cases = forwardCases(quick: quick)
    let repeats = quick ? 2 : 4
    let items: [(String, () -> Double)] = [
        ("linear 2048×640×640", { bestTime(repeats: repeats) {
            linear(x.baseAddress!, rows: n, inFeatures: k, weight: w.baseAddress!, bias: nil, outFeatures: k, into: y.baseAddress!)
        } }),
        ("flash SDPA (2,10,1024,64)", { timeAttention(batch: 2, heads: 10, length: 1024, depth: 64, algorithm: .flash,
                                                      repeats: repeats, warmUp: true) }),
        ("forward " + cases[2].name, { timeForward(cases[2], repeats: repeats) ?? .nan }),
    ]
    for (name, measure) in items {
        Parallel.threadCount = 1
        let one = measure()
        Parallel.threadCount = threads
        let many = measure()
        print(pad(name, 32, right: true) + pad(fixed(one * 1e3, 1), 10) + pad(fixed(many * 1e3, 1), 10)
              + pad(fixed(one / many, 2) + "×", 10))
    }
    print("")
}
