// Where an Attention forward's time goes: the same forward, then its parts alone at the same
// shapes — the four projections through `linear`, and SDPA on the (B, N, H·D) layout the
// processor hands it. "other" is the rest (copies, allocations, mask preparation).
import DiffAttn
import DiffAttnKernels

struct ForwardBreakdown { var total, projections, attention: Double }

func forwardBreakdown(channels: Int, heads: Int, dimHead: Int, tokens: Int, keys: Int?, contextDim: Int?,
                      repeats: Int) -> ForwardBreakdown? {
    var config = AttentionConfig(queryDim: channels)
    config.heads = heads; config.dimHead = dimHead; config.crossAttentionDim = contextDim
    guard let attention = try? Attention(config) else { return nil }
    var rng = SeededStream(state: 7)
    let b = 2, inner = heads * dimHead, s = keys ?? tokens, cw = contextDim ?? channels
    let x = Tensor(shape: [b, tokens, channels], storage: (0..<(b * tokens * channels)).map { _ in rng.next() })
    let e = contextDim.map { c in Tensor(shape: [b, s, c], storage: (0..<(b * s * c)).map { _ in rng.next() }) }
    let inputs = AttentionInputs(hiddenStates: x, encoderHiddenStates: e)
    let total = bestTime(repeats: repeats) { _ = try? attention.forward(inputs) }
    let xin = randomBuffer(b * max(tokens, s) * max(channels, cw, inner), seed: 1)
    let w = randomBuffer(max(inner, channels) * max(channels, cw, inner), seed: 2)
    let bias = randomBuffer(max(inner, channels), seed: 3)
    let y = randomBuffer(b * max(tokens, s) * max(inner, channels), seed: 4)
    let projections = bestTime(repeats: repeats) {
        for (rows, inF, outF, hasBias) in [(b * tokens, channels, inner, false), (b * s, cw, inner, false),
                                           (b * s, cw, inner, false), (b * tokens, inner, channels, true)] {
            linear(xin.baseAddress!, rows: rows, inFeatures: inF, weight: w.baseAddress!,
                   bias: hasBias ? UnsafePointer(bias.baseAddress!) : nil, outFeatures: outF, into: y.baseAddress!)
        }
    }
    let q = randomBuffer(b * tokens * inner, seed: 5), k = randomBuffer(b * s * inner, seed: 6)
    let v = randomBuffer(b * s * inner, seed: 7), o = randomBuffer(b * tokens * inner, seed: 8)
    let qs = Strides4(batch: tokens * inner, head: dimHead, token: inner, channel: 1)
    let ks = Strides4(batch: s * inner, head: dimHead, token: inner, channel: 1)
    let problem = SDPAProblem(batch: b, queryHeads: heads, keyValueHeads: heads, queryLength: tokens, keyLength: s,
                              headDim: dimHead, valueDim: dimHead,
                              query: SDPAOperand(data: q.baseAddress!, strides: qs),
                              key: SDPAOperand(data: k.baseAddress!, strides: ks),
                              value: SDPAOperand(data: v.baseAddress!, strides: ks),
                              output: o.baseAddress!, outputStrides: qs, mask: .none,
                              scale: 1 / Float(dimHead).squareRoot(), isCausal: false)
    let sdpa = bestTime(repeats: repeats) { scaledDotProductAttention(problem, algorithm: .flash) }
    [xin, w, bias, y, q, k, v, o].forEach { $0.deallocate() }
    return ForwardBreakdown(total: total, projections: projections, attention: sdpa)
}
