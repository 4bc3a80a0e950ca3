// `bench-processors`: a whole Attention forward (projections + attention + output) per processor
// family at Stable Diffusion shapes, with the attention kernels' peak scratch memory — the figure
// that separates AttnProcessor, SlicedAttnProcessor and the memory-efficient kinds in diffusers.
import DiffAttn
import DiffAttnKernels

func runProcessorBenchmark(quick: Bool) {
    struct Shape { var name: String; var channels, heads, dimHead, tokens: Int; var context: Int? }
    let shapes = [
        Shape(name: "SD1.5 self (2,4096,320)", channels: 320, heads: 8, dimHead: 40, tokens: quick ? 1024 : 4096, context: nil),
        Shape(name: "SD1.5 cross 77×768", channels: 320, heads: 8, dimHead: 40, tokens: quick ? 1024 : 4096, context: 768),
        Shape(name: "SDXL self (2,1024,640)", channels: 640, heads: 10, dimHead: 64, tokens: 1024, context: nil),
    ]
    let processors: [(String, ProcessorConfig)] = [
        ("AttnProcessor", ProcessorConfig(kind: .attnProcessor)),
        ("AttnProcessor2_0", ProcessorConfig(kind: .attnProcessor2_0)),
        ("SlicedAttnProcessor(1)", ProcessorConfig(kind: .slicedAttnProcessor, sliceSize: 1)),
        ("SlicedAttnProcessor(4)", ProcessorConfig(kind: .slicedAttnProcessor, sliceSize: 4)),
        ("XFormersAttnProcessor", ProcessorConfig(kind: .xformersAttnProcessor)),
    ]
    print("Attention forward, batch 2, \(Parallel.threadCount) thread(s); scratch = the kernels' peak extra memory;")
    print("diffusers = the score memory diffusers' own processor would hold (B·H·L·S, slice·L·S, or O(L) for SDPA)\n")
    print(pad("shape", 26, right: true) + pad("processor", 24, right: true) + pad("ms", 9) + pad("GFLOP/s", 10)
          + pad("scratch", 13) + pad("diffusers", 13))
    for s in shapes {
        var config = AttentionConfig(queryDim: s.channels)
        config.heads = s.heads; config.dimHead = s.dimHead; config.crossAttentionDim = s.context
        guard let attention = try? Attention(config) else { continue }
        var rng = SeededStream(state: 7)
        let x = Tensor(shape: [2, s.tokens, s.channels], storage: (0..<(2 * s.tokens * s.channels)).map { _ in rng.next() })
        let e = s.context.map { c in Tensor(shape: [2, 77, c], storage: (0..<(2 * 77 * c)).map { _ in rng.next() }) }
        let keys = s.context == nil ? s.tokens : 77, inner = s.heads * s.dimHead
        let flops = 2.0 * 2 * Double(s.tokens) * Double(inner) * Double(2 * s.channels + 2 * (s.context ?? s.channels))
            + 4.0 * 2 * Double(s.heads) * Double(s.tokens) * Double(keys) * Double(s.dimHead)
        for (name, p) in processors {
            guard (try? attention.setProcessor(p)) != nil else { continue }
            let inputs = AttentionInputs(hiddenStates: x, encoderHiddenStates: e)
            KernelScratch.resetPeak()
            let base = KernelScratch.live
            let seconds = bestTime(repeats: quick ? 2 : 4) { _ = try? attention.forward(inputs) }
            let scratch = KernelScratch.peak - base
            let rows = p.kind == .slicedAttnProcessor ? min(p.sliceSize ?? 1, 2 * s.heads) : 2 * s.heads
            let theirs = p.kind == .attnProcessor || p.kind == .slicedAttnProcessor
                ? rows * s.tokens * keys * 4 : 2 * s.heads * s.tokens * 4 * 2
            print(pad(s.name, 26, right: true) + pad(name, 24, right: true) + pad(fixed(seconds * 1e3, 1), 9)
                  + pad(fixed(flops / seconds / 1e9, 1), 10) + pad(megabytes(scratch), 13) + pad(megabytes(theirs), 13))
        }
    }
}

/// A small deterministic generator for benchmark inputs in [-1, 1).
struct SeededStream {
    var state: UInt64
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 23) - 1
    }
}
