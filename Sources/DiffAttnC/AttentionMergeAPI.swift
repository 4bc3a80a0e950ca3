import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// da_merge_attention_partials: one partial attention result folded into a running one by their
// log-sum-exps (the ring-attention step, usable alone).

@_cdecl("da_merge_attention_partials")
public func da_merge_attention_partials(_ out: UnsafeMutablePointer<DLTensor>?, _ lse: UnsafeMutablePointer<DLTensor>?,
                                        _ partialOut: UnsafePointer<DLTensor>?,
                                        _ partialLSE: UnsafePointer<DLTensor>?) -> da_status {
    guarded {
        let o = try geometry(UnsafePointer(out), "out")
        guard o.shape.count == 3 || o.shape.count == 4 else {
            throw DiffAttnError.shape("out must be 4-D (batch, heads, tokens, head_dim) or 3-D, got shape \(o.shape)")
        }
        let sizes = o.shape.count == 4 ? o.shape : [1] + o.shape
        let (b, h, n, dv) = (sizes[0], sizes[1], sizes[2], sizes[3])
        let po = try geometry(partialOut, "partial_out")
        guard po.shape == o.shape else { throw DiffAttnError.shape("partial_out must have out's shape \(o.shape), got \(po.shape)") }
        let running = try lseGeometry(lse, "lse", rank: o.shape.count - 1, batch: b, heads: h, rows: n)
        let incoming = try lseGeometry(UnsafeMutablePointer(mutating: partialLSE), "partial_lse",
                                       rank: o.shape.count - 1, batch: b, heads: h, rows: n)
        guard let running, let incoming, let outBase = o.base, let partBase = po.base else { return }
        let os = o.shape.count == 4 ? o.strides : [0] + o.strides
        let ps = po.shape.count == 4 ? po.strides : [0] + po.strides
        mergeAttentionPartial(
            batch: b, heads: h, rows: n, valueDim: dv,
            out: outBase.assumingMemoryBound(to: Float.self),
            outStrides: Strides4(batch: os[0], head: os[1], token: os[2], channel: os[3]), lse: running,
            partialOut: UnsafePointer(partBase.assumingMemoryBound(to: Float.self)),
            partialOutStrides: Strides4(batch: ps[0], head: ps[1], token: ps[2], channel: ps[3]),
            partialLSE: UnsafePointer(incoming.data),
            partialLSEStrides: (incoming.batchStride, incoming.headStride, incoming.tokenStride))
    }
}
