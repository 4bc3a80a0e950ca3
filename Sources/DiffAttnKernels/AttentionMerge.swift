// Partial attention results over disjoint key sets, merged by their log-sum-exps: the exact
// softmax re-normalisation that ring attention needs (docs/parallel.md, "Merging partials").
import Glibc

/// Where `scaledDotProductAttention` writes the per-row log-sum-exp: float32 (batch, head, token).
public struct LogSumExpOutput {
    public var data: UnsafeMutablePointer<Float>
    public var batchStride: Int, headStride: Int, tokenStride: Int
    public init(data: UnsafeMutablePointer<Float>, batchStride: Int, headStride: Int, tokenStride: Int) {
        self.data = data; self.batchStride = batchStride; self.headStride = headStride; self.tokenStride = tokenStride
    }
    /// Dense (batch, heads, tokens).
    public init(data: UnsafeMutablePointer<Float>, heads: Int, tokens: Int) {
        self.init(data: data, batchStride: heads * tokens, headStride: tokens, tokenStride: 1)
    }
}

/// Accumulates one partial result `(partialOut, partialLSE)` into the running `(out, lse)` in place,
/// per (batch, head, row), in fp32:
///
///     m = max(L, Lᵢ);  w = e^{L−m}, wᵢ = e^{Lᵢ−m};  O ← (w·O + wᵢ·Oᵢ) / (w + wᵢ);  L ← m + ln(w + wᵢ)
///
/// the max-shifted form of diffusers' sigmoid update (attention_dispatch.py:TemplatedRingAttention),
/// equal in the finite case, and well defined when both sides are -inf (a row with no key yet):
/// the row stays zero with L = -inf instead of NaN. The order of accumulation fixes the rounding,
/// so a fixed order of partials gives bitwise identical results.
/// Preconditions: sizes ≥ 0; pointers valid for every element the strides reach.
public func mergeAttentionPartial(batch: Int, heads: Int, rows: Int, valueDim: Int,
                                  out: UnsafeMutablePointer<Float>, outStrides: Strides4, lse: LogSumExpOutput,
                                  partialOut: UnsafePointer<Float>, partialOutStrides: Strides4,
                                  partialLSE: UnsafePointer<Float>, partialLSEStrides: (batch: Int, head: Int, token: Int)) {
    precondition(batch >= 0 && heads >= 0 && rows >= 0 && valueDim >= 0, "negative merge size")
    guard batch > 0, heads > 0, rows > 0 else { return }
    let o = outStrides, po = partialOutStrides, pl = partialLSEStrides
    let work = batch * heads * rows * max(valueDim, 1)
    let tasks = work < 1 << 15 ? 1 : batch * heads
    Parallel.forEach(tasks) { task in
        let pairs = tasks == 1 ? 0..<(batch * heads) : task..<(task + 1)
        for bh in pairs {
            let b = bh / heads, h = bh % heads
            let outBase = out + b * o.batch + h * o.head
            let partBase = partialOut + b * po.batch + h * po.head
            let lseBase = lse.data + b * lse.batchStride + h * lse.headStride
            let partLSE = partialLSE + b * pl.batch + h * pl.head
            for r in 0..<rows {
                let running = lseBase[r * lse.tokenStride], incoming = partLSE[r * pl.token]
                let m = max(running, incoming)
                let row = outBase + r * o.token, part = partBase + r * po.token
                if m == -.infinity {
                    // Neither side has seen a key: zeros, as SDPA gives a fully masked row.
                    for c in 0..<valueDim { row[c * o.channel] = 0 }
                    lseBase[r * lse.tokenStride] = -.infinity
                    continue
                }
                let w = expf(running - m), wi = expf(incoming - m), total = w + wi
                let a = w / total, ai = wi / total
                for c in 0..<valueDim {
                    let x = ai == 0 ? row[c * o.channel] : a * row[c * o.channel] + ai * part[c * po.channel]
                    row[c * o.channel] = a == 0 ? part[c * po.channel] : x
                }
                lseBase[r * lse.tokenStride] = m + logf(total)
            }
        }
    }
}
