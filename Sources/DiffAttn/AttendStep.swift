import DiffAttnKernels

/// A prepared mask and the strides that read it as (batch, heads, query, key).
struct KernelMask {
    var mask: AttentionMask
    var strides: Strides4
}

// The attention step shared by every processor: heads are read in place from (B, N, H·D)
// projections through strides, so no head split or merge is ever copied.
extension Attention {
    /// Classic kernels: the prepared mask must broadcast to (B·H, L, S) (torch's baddbmm rule),
    /// and it must be additive.
    func classicKernelMask(_ prepared: AttentionMask, batch: Int, heads: Int, queryLength: Int,
                           keyLength: Int) throws -> KernelMask {
        guard case .additive = prepared else {
            throw DiffAttnError.dtype("\(processor.kind.name) adds attention_mask to the scores (baddbmm), so it must be float32 like the query, got bool")
        }
        let target = [batch * heads, queryLength, keyLength]
        guard prepared.shape.count <= 3,
              let s = broadcastStrides(shape: prepared.shape, strides: contiguousStrides(prepared.shape), to: target) else {
            throw DiffAttnError.shape("the prepared attention_mask of shape \(describe(prepared.shape)) does not broadcast to the scores' shape \(describe(target)) (batch·heads, query tokens, key tokens)")
        }
        return KernelMask(mask: prepared, strides: Strides4(batch: heads * s[0], head: s[0], token: s[1], channel: s[2]))
    }

    /// SDPA kernels: the prepared mask is viewed as (B, H, −1, Sm) and must then broadcast to
    /// (B, H, L, S).
    func sdpaKernelMask(_ prepared: AttentionMask, batch: Int, heads: Int, queryLength: Int,
                        keyLength: Int) throws -> KernelMask {
        let count = prepared.shape.reduce(1, *), sm = prepared.shape.last!
        let block = batch * heads * sm
        guard block > 0, count % block == 0 else {
            throw DiffAttnError.shape("shape '[\(batch), \(heads), -1, \(sm)]' is invalid for the prepared attention_mask of shape \(describe(prepared.shape)) (\(count) elements)")
        }
        let rows = count / block
        guard sm == keyLength, rows == 1 || rows == queryLength else {
            throw DiffAttnError.shape("the attention_mask viewed as (\(batch), \(heads), \(rows), \(sm)) does not broadcast to the scores' shape (\(batch), \(heads), \(queryLength), \(keyLength))")
        }
        return KernelMask(mask: prepared, strides: Strides4(batch: heads * rows * sm, head: rows * sm,
                                                            token: rows == 1 ? 0 : sm, channel: 1))
    }

    /// `softmax(scale·Q·Kᵀ + mask)·V` for (B, L, H·D) queries and (B, S, H·D) keys/values,
    /// giving (B, L, H·D) with heads merged as diffusers' `batch_to_head_dim` does.
    /// `scale` overrides the kernel's convention; `keyValueHeads` (default `heads`) enables GQA.
    func attend(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int, mask: KernelMask?,
                kernel: ProcessorRecipe.Kernel, scale customScale: Float? = nil, keyValueHeads: Int? = nil,
                isCausal: Bool = false) -> Tensor {
        let (b, l, width) = (q.shape[0], q.shape[1], q.shape[2])
        let kvHeads = keyValueHeads ?? heads
        let s = k.shape[1], d = width / heads, dv = v.shape[2] / kvHeads
        var out = Tensor(shape: [b, l, heads * dv], repeating: 0)
        let scale: Float = customScale ?? (kernel == .classic ? derived.scale : Float(1 / Double(d).squareRoot()))
        func operand(_ p: UnsafePointer<Float>, tokens: Int, width: Int, headWidth: Int) -> SDPAOperand {
            SDPAOperand(data: p, strides: Strides4(batch: tokens * width, head: headWidth, token: width, channel: 1))
        }
        q.storage.withUnsafeBufferPointer { qp in
        k.storage.withUnsafeBufferPointer { kp in
        v.storage.withUnsafeBufferPointer { vp in
        out.storage.withUnsafeMutableBufferPointer { op in
            withKernelMask(mask) { kernelMask in
                let problem = SDPAProblem(
                    batch: b, queryHeads: heads, keyValueHeads: kvHeads, queryLength: l, keyLength: s,
                    headDim: d, valueDim: dv,
                    query: operand(qp.baseAddress!, tokens: l, width: width, headWidth: d),
                    key: operand(kp.baseAddress!, tokens: s, width: k.shape[2], headWidth: d),
                    value: operand(vp.baseAddress!, tokens: s, width: v.shape[2], headWidth: dv),
                    output: op.baseAddress!,
                    outputStrides: Strides4(batch: l * heads * dv, head: dv, token: heads * dv, channel: 1),
                    mask: kernelMask, scale: scale, isCausal: isCausal,
                    fullyMaskedRows: kernel == .classic ? .nan : .zero)
                scaledDotProductAttention(problem, algorithm: kernel == .classic ? .math : .flash)
            }
        }}}}
        return out
    }
}

/// Runs `body` with the kernel's view of an optional prepared mask (its storage pinned).
func withKernelMask<R>(_ m: KernelMask?, _ body: (SDPAMask) -> R) -> R {
    guard let m else { return body(.none) }
    switch m.mask {
    case .additive(let t):
        return t.storage.withUnsafeBufferPointer { body(.additive($0.baseAddress!, m.strides)) }
    case .boolean(let t):
        return t.storage.withUnsafeBufferPointer { body(.boolean($0.baseAddress!, m.strides)) }
    }
}
