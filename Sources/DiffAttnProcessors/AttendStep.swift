import DiffAttnKernels
import DiffAttnModule

/// A prepared mask and the strides that read it as (batch, heads, query, key).
struct KernelMask {
    var mask: AttentionMask
    var strides: Strides4
}

// The attention step shared by every processor: heads are read in place from (B, N, H·D)
// projections through strides, so no head split or merge is ever copied.
extension Attention {
    /// Resolves a prepared mask (attention_processor.py:Attention.prepare_attention_mask) to the kernel's (B, H, L, S) view, with the errors
    /// diffusers' tensor operations would raise for it.
    func kernelMask(_ prepared: AttentionMask, _ kernel: KernelChoice, batch: Int, heads: Int,
                    queryLength: Int, keyLength: Int) throws -> KernelMask {
        if case .boolean = prepared, !kernel.acceptsBooleanMasks {
            throw DiffAttnError.dtype("\(processor.kind.name) adds attention_mask to the scores, so it must be float32 like the query, got bool")
        }
        let shape = prepared.shape
        let scores = "(\(batch), \(heads), \(queryLength), \(keyLength))"
        switch kernel.masks {
        case .batchFlattened, .batchFlattenedExpanded:
            let target = [batch * heads, queryLength, keyLength]
            if kernel.masks == .batchFlattenedExpanded && shape.count != 3 {
                throw DiffAttnError.shape("\(processor.kind.name) expands the prepared attention_mask to (batch·heads, \(queryLength), \(keyLength)), which needs a 3-D mask; got shape \(describe(shape))")
            }
            guard shape.count <= 3, let s = broadcastStrides(shape: shape, strides: contiguousStrides(shape), to: target) else {
                throw DiffAttnError.shape("the prepared attention_mask of shape \(describe(shape)) does not broadcast to the scores' shape \(describe(target)) (batch·heads, query tokens, key tokens)")
            }
            return KernelMask(mask: prepared, strides: Strides4(batch: heads * s[0], head: s[0], token: s[1], channel: s[2]))
        case .headsView, .npuDiscard:
            let count = shape.reduce(1, *), sm = shape.last!
            let block = batch * heads * sm
            guard block > 0, count % block == 0 else {
                throw DiffAttnError.shape("shape '[\(batch), \(heads), -1, \(sm)]' is invalid for the prepared attention_mask of shape \(describe(shape)) (\(count) elements)")
            }
            let rows = count / block
            if kernel.masks == .npuDiscard {
                guard rows == 1, sm == keyLength else {
                    throw DiffAttnError.shape("AttnProcessorNPU tiles the mask viewed as (\(batch), \(heads), \(rows), \(sm)) by the query length; only a (\(batch), \(heads), 1, \(keyLength)) view gives the scores' shape \(scores)")
                }
                return KernelMask(mask: .boolean(npuDiscardMask(prepared)),
                                  strides: Strides4(batch: heads * sm, head: sm, token: 0, channel: 1))
            }
            guard sm == keyLength, rows == 1 || rows == queryLength else {
                throw DiffAttnError.shape("the attention_mask viewed as (\(batch), \(heads), \(rows), \(sm)) does not broadcast to the scores' shape \(scores)")
            }
            return KernelMask(mask: prepared, strides: Strides4(batch: heads * rows * sm, head: rows * sm,
                                                                token: rows == 1 ? 0 : sm, channel: 1))
        case .broadcast:
            let target = [batch, heads, queryLength, keyLength]
            guard shape.count <= 4, let s = broadcastStrides(shape: shape, strides: contiguousStrides(shape), to: target) else {
                throw DiffAttnError.shape("the prepared attention_mask of shape \(describe(shape)) does not broadcast to the scores' shape \(scores)")
            }
            return KernelMask(mask: prepared, strides: Strides4(batch: s[0], head: s[1], token: s[2], channel: s[3]))
        }
    }

    /// NPU's float32 branch: True where a key should be discarded (non-zero bias, or a false
    /// boolean), handed to SDPA as if True meant "attend" (attention_processor.py:AttnProcessorNPU.__call__ — reproduced on purpose).
    private func npuDiscardMask(_ prepared: AttentionMask) -> BoolTensor {
        switch prepared {
        case .additive(let t): return BoolTensor(shape: t.shape, storage: t.storage.map { $0 != 0 ? 1 : 0 })
        case .boolean(let t): return BoolTensor(shape: t.shape, storage: t.storage.map { $0 == 0 ? 1 : 0 })
        }
    }

    /// `softmax(scale·Q·Kᵀ + mask)·V` for (B, L, H·D) queries and (B, S, H·D) keys/values,
    /// giving (B, L, H·Dv) with heads merged as diffusers' `batch_to_head_dim` does. With
    /// `sliceSize`, the batch×heads rows are computed `sliceSize` at a time (SlicedAttnProcessor),
    /// which bounds how many score tiles are alive at once.
    /// `scale` overrides the kernel's convention; `keyValueHeads` (default `heads`, not with
    /// slicing) lets query heads share key/value heads (GQA); `isCausal` as torch's SDPA.
    func attend(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int, mask: KernelMask?,
                kernel: KernelChoice, sliceSize: Int? = nil, scale customScale: Float? = nil,
                keyValueHeads: Int? = nil, isCausal: Bool = false) -> Tensor {
        let (b, l, width) = (q.shape[0], q.shape[1], q.shape[2])
        let group = heads / (keyValueHeads ?? heads)
        let s = k.shape[1], d = width / heads, dv = v.shape[2] / (heads / group)
        // skip_attention_scores: torch's SDPA is replaced by V when Sq == Skv (layer_skip.py); the
        // bmm-softmax kernels (legacy AttnProcessor) are not affected in diffusers either.
        if identityAttentionScores, l == v.shape[1], kernel.masks != .batchFlattened, kernel.masks != .batchFlattenedExpanded {
            return v
        }
        let scale: Float = customScale ?? (kernel.scale == .module ? derived.scale : Float(1 / Double(d).squareRoot()))
        return q.withUnsafeElements { qp in
        k.withUnsafeElements { kp in
        v.withUnsafeElements { vp in
        Tensor(shape: [b, l, heads * dv]) { op in
            withKernelMask(mask) { kernelMask in
                // One problem for `batches` batch elements from `bi`, heads h0 ..< h0 + count.
                func solve(batch bi: Int, batches: Int = 1, heads h0: Int, count: Int) {
                    let mo = mask.map { bi * $0.strides.batch + h0 * $0.strides.head } ?? 0
                    var problem = SDPAProblem(
                        batch: batches, queryHeads: count, keyValueHeads: count / group, queryLength: l, keyLength: s,
                        headDim: d, valueDim: dv,
                        query: SDPAOperand(data: qp.baseAddress! + bi * l * width + h0 * d,
                                           strides: Strides4(batch: l * width, head: d, token: width, channel: 1)),
                        key: SDPAOperand(data: kp.baseAddress! + bi * s * k.shape[2] + h0 / group * d,
                                         strides: Strides4(batch: s * k.shape[2], head: d, token: k.shape[2], channel: 1)),
                        value: SDPAOperand(data: vp.baseAddress! + bi * s * v.shape[2] + h0 / group * dv,
                                           strides: Strides4(batch: s * v.shape[2], head: dv, token: v.shape[2], channel: 1)),
                        output: op + bi * l * heads * dv + h0 * dv,
                        outputStrides: Strides4(batch: l * heads * dv, head: dv, token: heads * dv, channel: 1),
                        mask: kernelMask.offset(by: mo), scale: scale, isCausal: isCausal,
                        fullyMaskedRows: kernel.fullyMaskedRowsAreNaN ? .nan : .zero)
                    problem.precision = kernel.precision
                    scaledDotProductAttention(problem, algorithm: kernel.algorithm == .math ? .math : .flash)
                }
                guard let sliceSize else { return solve(batch: 0, batches: b, heads: 0, count: heads) }
                var row = 0
                while row < b * heads {
                    let end = min(row + sliceSize, b * heads)
                    var r = row
                    while r < end {
                        let bi = r / heads, h0 = r % heads, count = min(end - r, heads - h0)
                        solve(batch: bi, heads: h0, count: count)
                        r += count
                    }
                    row = end
                }
            }
        }}}}
    }
}

extension SDPAMask {
    /// The same mask with its base moved by `elements` (to start at another batch/head).
    func offset(by elements: Int) -> SDPAMask {
        switch self {
        case .none: return .none
        case .additive(let p, let s): return .additive(p + elements, s)
        case .boolean(let p, let s): return .boolean(p + elements, s)
        }
    }
}

/// Runs `body` with the kernel's view of an optional prepared mask (its storage pinned).
func withKernelMask<R>(_ m: KernelMask?, _ body: (SDPAMask) -> R) -> R {
    guard let m else { return body(.none) }
    switch m.mask {
    case .additive(let t):
        return t.withUnsafeElements { body(.additive($0.baseAddress!, m.strides)) }
    case .boolean(let t):
        return t.withUnsafeElements { body(.boolean($0.baseAddress!, m.strides)) }
    }
}
