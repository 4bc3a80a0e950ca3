import DiffAttnKernels
import DiffAttnModule

// The public helper methods of diffusers' `Attention` (attention_processor.py:Attention.prepare_attention_mask … Attention.get_attention_scores).
extension Attention {
    /// `head_to_batch_dim`: (B, N, W) or (B, E, N, W) → (B·H, N', W/H) for `outDim` 3, else
    /// (B, H, N', W/H); a 4-D input's images are concatenated image-major (N' = E·N).
    public func headToBatchDim(_ t: Tensor, outDim: Int = 3) throws -> Tensor {
        let h = derived.heads
        guard t.rank == 3 || t.rank == 4 else {
            throw DiffAttnError.shape("head_to_batch_dim expects a 3-D or 4-D tensor, got shape \(describe(t.shape))")
        }
        let b = t.shape[0], n = t.rank == 3 ? t.shape[1] : t.shape[1] * t.shape[2], w = t.shape.last!
        guard w % h == 0 else {
            throw DiffAttnError.shape("head_to_batch_dim: last axis \(w) is not divisible by heads \(h)")
        }
        let d = w / h
        var out = Tensor(shape: outDim == 3 ? [b * h, n, d] : [b, h, n, d], repeating: 0)
        for bi in 0..<b { for t0 in 0..<n { for hi in 0..<h { for j in 0..<d {
            out.storage[((bi * h + hi) * n + t0) * d + j] = t.storage[(bi * n + t0) * w + hi * d + j]
        } } } }
        return out
    }

    /// `batch_to_head_dim`: (B·H, N, d) → (B, N, H·d).
    public func batchToHeadDim(_ t: Tensor) throws -> Tensor {
        let h = derived.heads
        guard t.rank == 3, t.shape[0] % h == 0 else {
            throw DiffAttnError.shape("batch_to_head_dim expects (batch·heads, tokens, head_dim) with the first axis divisible by heads \(h), got shape \(describe(t.shape))")
        }
        let (bh, n, d) = (t.shape[0], t.shape[1], t.shape[2]), b = bh / h
        var out = Tensor(shape: [b, n, h * d], repeating: 0)
        for bi in 0..<b { for hi in 0..<h { for t0 in 0..<n { for j in 0..<d {
            out.storage[(bi * n + t0) * h * d + hi * d + j] = t.storage[((bi * h + hi) * n + t0) * d + j]
        } } } }
        return out
    }

    /// `get_attention_scores`: softmax(mask + scale·Q·Kᵀ) on batch-flattened heads.
    public func getAttentionScores(query: Tensor, key: Tensor, mask: AttentionMask?) throws -> Tensor {
        guard query.rank == 3, key.rank == 3, query.shape[0] == key.shape[0], query.shape[2] == key.shape[2] else {
            throw DiffAttnError.shape("get_attention_scores expects query (N, Lq, d) and key (N, Lk, d), got \(describe(query.shape)) and \(describe(key.shape))")
        }
        let (n, lq, d) = (query.shape[0], query.shape[1], query.shape[2]), lk = key.shape[1]
        var maskStrides = Strides4(batch: 0, head: 0, token: 0, channel: 0)
        if let mask {
            guard case .additive = mask else {
                throw DiffAttnError.dtype("get_attention_scores adds attention_mask with baddbmm, so it must be float32 like the query, got bool")
            }
            let target = [n, lq, lk]
            guard mask.shape.count <= 3,
                  let s = broadcastStrides(shape: mask.shape, strides: contiguousStrides(mask.shape), to: target) else {
                throw DiffAttnError.shape("attention_mask of shape \(describe(mask.shape)) does not broadcast to \(describe(target))")
            }
            maskStrides = Strides4(batch: 0, head: s[0], token: s[1], channel: s[2])
        }
        _ = try checkedElementCount([n, lq, lk], "the attention scores")
        var probs = Tensor(shape: [n, lq, lk], repeating: 0)
        guard n > 0, lq > 0, lk > 0 else { return probs }
        let scale = derived.scale
        query.withUnsafeElements { qp in
        key.withUnsafeElements { kp in
        probs.storage.withUnsafeMutableBufferPointer { pp in
            withKernelMask(mask.map { KernelMask(mask: $0, strides: maskStrides) }) { kernelMask in
                attentionProbabilities(
                    query: SDPAOperand(data: qp.baseAddress!, strides: Strides4(batch: 0, head: lq * d, token: d, channel: 1)),
                    key: SDPAOperand(data: kp.baseAddress!, strides: Strides4(batch: 0, head: lk * d, token: d, channel: 1)),
                    batch: 1, heads: n, queryLength: lq, keyLength: lk, headDim: d, mask: kernelMask,
                    scale: scale, output: pp.baseAddress!,
                    outputStrides: Strides4(batch: 0, head: lq * lk, token: lk, channel: 1))
            }
        }}}
        return probs
    }
}
