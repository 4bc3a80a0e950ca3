import DiffAttnKernels
import DiffAttnModule

/// Family B (attention_processor.py:AttnAddedKVProcessor.__call__): UnCLIP-style attention whose keys/values are the added-context
/// projections followed by the module's own, on channels-first input (steps K1–K12).
struct AddedKVPlan {
    var recipe: ProcessorRecipe
    var batch: Int, queryLength: Int, contextLength: Int, heads: Int
    var mask: KernelMask?
    var outputShape: [Int]
}

extension Attention {
    func planAddedKV(_ inputs: AttentionInputs, _ recipe: ProcessorRecipe) throws -> AddedKVPlan {
        let x = inputs.hiddenStates, c = config
        guard x.rank >= 3 else {
            throw DiffAttnError.shape("\(processor.kind.name) reads hidden_states channels-first (batch, channels, …), got shape \(describe(x.shape))")
        }
        if recipe.appliesSpatialNorm && c.spatialNormDim != nil { try checkSpatialNormInputs(x, inputs.temb) }
        if recipe.sliced { try checkSliceSize() }
        let (batch, channels) = (x.shape[0], x.shape[1])
        let queryLength = x.shape.dropFirst(2).reduce(1, *)
        guard channels == c.queryDim else {
            throw DiffAttnError.shape("hidden_states must have \(c.queryDim) channels (query_dim) on axis 1, got shape \(describe(x.shape))")
        }
        guard c.normNumGroups != nil else {
            throw DiffAttnError.type("'NoneType' object is not callable: \(processor.kind.name) applies group_norm, which this Attention lacks (norm_num_groups=None)")
        }
        guard let added = c.addedKVProjDim else {
            throw DiffAttnError.state("'NoneType' object is not callable: \(processor.kind.name) needs add_k_proj/add_v_proj (added_kv_proj_dim)")
        }
        let context = inputs.encoderHiddenStates
        var contextLength = queryLength
        if let e = context {
            guard e.rank == 3, e.shape[0] == batch else {
                throw DiffAttnError.shape("encoder_hidden_states must be (\(batch), tokens, \(added)), got shape \(describe(e.shape))")
            }
            contextLength = e.shape[1]
            let width = c.crossAttentionNorm == .none ? added : parameters.spec(named: "norm_cross.weight")!.shape[0]
            guard e.shape[2] == width, width == added else {
                throw DiffAttnError.shape("encoder_hidden_states must have \(added) channels (added_kv_proj_dim), got shape \(describe(e.shape))")
            }
        } else if added != channels {
            throw DiffAttnError.shape("without encoder_hidden_states \(processor.kind.name) feeds the raw hidden_states (\(channels) channels) to add_k_proj, which expects \(added) (added_kv_proj_dim)")
        }
        guard batch > 0, queryLength > 0, contextLength > 0 else {
            throw DiffAttnError.shape("empty inputs are not supported: batch \(batch), query tokens \(queryLength), context tokens \(contextLength)")
        }
        guard derived.innerKVDim == derived.innerDim, derived.innerDim % derived.heads == 0 else {
            throw DiffAttnError.shape("\(processor.kind.name) needs key/value heads equal to query heads and inner_dim (\(derived.innerDim)) divisible by heads (\(derived.heads))")
        }
        if recipe.kernel.masks == .broadcast && derived.innerDim != channels {
            // AttnAddedKVProcessor2_0 merges heads with the residual's channel count (attention_processor.py:AttnAddedKVProcessor2_0.__call__).
            throw DiffAttnError.shape("\(processor.kind.name) reshapes the attention output to \(channels) channels (the input's) but inner_dim is \(derived.innerDim); it needs heads·dim_head == query_dim")
        }
        guard !c.preOnly else { throw DiffAttnError.state("this Attention has no to_out (pre_only=True), which \(processor.kind.name) needs") }
        guard derived.outDim == channels else {
            throw DiffAttnError.shape("\(processor.kind.name) adds the residual, so out_dim (\(derived.outDim)) must equal the input's \(channels) channels")
        }
        let heads = derived.heads
        let keyLength = contextLength + (c.onlyCrossAttention ? 0 : queryLength)
        _ = try checkedElementCount([batch, keyLength, derived.innerDim], "the key projection")
        var kernelMask: KernelMask?
        if let m = inputs.attentionMask {
            // Target = the query length: a mask over the context gets L zeros — the self tokens.
            let prepared = try prepareAttentionMask(m, targetLength: queryLength, batchSize: batch, heads: heads,
                                                    outDim: recipe.kernel.masks == .broadcast ? 4 : 3)
            if recipe.sliced { try checkSlicedMaskRows(prepared, rows: batch * heads) }
            kernelMask = try self.kernelMask(prepared, recipe.kernel, batch: batch, heads: heads,
                                             queryLength: queryLength, keyLength: keyLength)
        }
        return AddedKVPlan(recipe: recipe, batch: batch, queryLength: queryLength, contextLength: contextLength,
                           heads: heads, mask: kernelMask, outputShape: x.shape)
    }

    func runAddedKV(_ inputs: AttentionInputs, _ plan: AddedKVPlan) throws -> Tensor {
        let residual = inputs.hiddenStates
        var x = residual
        if plan.recipe.appliesSpatialNorm && config.spatialNormDim != nil { x = spatialNorm(x, inputs.temb!) }
        let (b, c) = (x.shape[0], x.shape[1])
        let raw = tokensFromImage(x.reshaped([b, c, plan.queryLength, 1]))
        var context = raw  // self-attention feeds the raw, un-normed tokens to add_k_proj (docs/quirks.md item 6)
        if let e = inputs.encoderHiddenStates {
            context = config.crossAttentionNorm != .none ? try normEncoderHiddenStates(e) : e
        }
        var normed = raw
        groupNormTokens(&normed, "group_norm", groups: config.normNumGroups!, eps: Float(config.eps))
        let query = try project(normed, "to_q")
        var key = try project(context, "add_k_proj"), value = try project(context, "add_v_proj")
        if !config.onlyCrossAttention {
            key = concatenateTokens(key, try project(normed, "to_k"))
            value = concatenateTokens(value, try project(normed, "to_v"))
        }
        let attended = attend(query: query, key: key, value: value, heads: plan.heads, mask: plan.mask,
                              kernel: plan.recipe.kernel, sliceSize: plan.recipe.sliced ? processor.sliceSize : nil)
        let projected = try project(attended, "to_out.0")
        var out = imageFromTokens(projected, imageShape: [b, c, plan.queryLength, 1]).reshaped(residual.shape)
        finishOutput(&out, residual: residual, addResidual: true, rescale: 1)  // always, never rescaled (attention_processor.py:AttnAddedKVProcessor.__call__)
        return out
    }
}

/// Concatenates two (B, N, W) sequences along the token axis: `a` first.
func concatenateTokens(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (batch, na, nb, w) = (a.shape[0], a.shape[1], b.shape[1], a.shape[2])
    var out = Tensor(shape: [batch, na + nb, w], repeating: 0)
    for bi in 0..<batch {
        out.storage.replaceSubrange(((bi * (na + nb)) * w)..<((bi * (na + nb) + na) * w), with: a.storage[(bi * na * w)..<((bi + 1) * na * w)])
        out.storage.replaceSubrange(((bi * (na + nb) + na) * w)..<((bi + 1) * (na + nb) * w), with: b.storage[(bi * nb * w)..<((bi + 1) * nb * w)])
    }
    return out
}
