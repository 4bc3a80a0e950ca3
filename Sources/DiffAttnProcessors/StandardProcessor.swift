import DiffAttnKernels
import DiffAttnModule

/// Family A (attention_processor.py:AttnProcessor.__call__): AttnProcessor, AttnProcessor2_0 and their kin, steps A1–A17.
/// `plan` checks everything diffusers would reject and resolves shapes and the mask without
/// touching the weights; `run` computes.
struct StandardPlan {
    var recipe: ProcessorRecipe
    var batch: Int
    var queryLength: Int
    var keyLength: Int
    var heads: Int
    var headDim: Int
    var mask: KernelMask?
    var outputShape: [Int]
}

extension Attention {
    func planStandard(_ inputs: AttentionInputs, _ recipe: ProcessorRecipe) throws -> StandardPlan {
        let x = inputs.hiddenStates, c = config
        guard x.rank == 3 || x.rank == 4 else {
            throw DiffAttnError.shape("hidden_states must be 3-D (batch, tokens, channels) or 4-D (batch, channels, height, width), got shape \(describe(x.shape))")
        }
        let usesSpatialNorm = recipe.appliesSpatialNorm && c.spatialNormDim != nil
        if usesSpatialNorm { try checkSpatialNormInputs(x, inputs.temb) }
        let channels = x.rank == 4 ? x.shape[1] : x.shape[2]
        let batchX = x.shape[0], queryLength = x.rank == 4 ? x.shape[2] * x.shape[3] : x.shape[1]
        guard channels == c.queryDim else {
            throw DiffAttnError.shape("hidden_states must have \(c.queryDim) channels (query_dim), got shape \(describe(x.shape))")
        }
        var batch = batchX, keyLength = queryLength
        if let e = inputs.encoderHiddenStates {
            guard e.rank == 3 else {
                throw DiffAttnError.shape("encoder_hidden_states must be 3-D (batch, tokens, channels), got shape \(describe(e.shape))")
            }
            (batch, keyLength) = (e.shape[0], e.shape[1])
            guard batch == batchX else {
                throw DiffAttnError.shape("encoder_hidden_states batch \(batch) differs from hidden_states batch \(batchX)")
            }
            let width = c.crossAttentionNorm == .groupNorm ? (c.addedKVProjDim ?? derived.crossAttentionDim) : derived.crossAttentionDim
            guard e.shape[2] == width, width == derived.crossAttentionDim else {
                throw DiffAttnError.shape("encoder_hidden_states must have \(derived.crossAttentionDim) channels (cross_attention_dim), got shape \(describe(e.shape))")
            }
        } else if derived.crossAttentionDim != c.queryDim && !c.onlyCrossAttention {
            throw DiffAttnError.shape("self-attention feeds hidden_states (\(c.queryDim) channels) to to_k, which expects \(derived.crossAttentionDim) (cross_attention_dim); pass encoder_hidden_states")
        }
        guard batch > 0, queryLength > 0, keyLength > 0 else {
            throw DiffAttnError.shape("empty inputs are not supported: batch \(batch), query tokens \(queryLength), key tokens \(keyLength)")
        }
        guard !c.onlyCrossAttention else {
            throw DiffAttnError.state("this Attention has no to_k/to_v (only_cross_attention=True), which \(processor.kind.name) needs")
        }
        guard !c.preOnly else {
            throw DiffAttnError.state("this Attention has no to_out (pre_only=True), which \(processor.kind.name) needs")
        }
        let heads = derived.heads
        guard derived.innerKVDim == derived.innerDim else {
            throw DiffAttnError.shape("\(processor.kind.name) needs key/value heads equal to query heads: inner_kv_dim \(derived.innerKVDim) (kv_heads \(c.kvHeads ?? heads)) differs from inner_dim \(derived.innerDim)")
        }
        guard derived.innerDim % heads == 0 else {
            throw DiffAttnError.shape("inner_dim \(derived.innerDim) is not divisible by heads \(heads)")
        }
        let headDim = derived.innerDim / heads
        _ = try checkedElementCount([batch, queryLength, max(derived.innerDim, derived.outDim, channels)], "the query projection")
        _ = try checkedElementCount([batch, keyLength, derived.innerDim], "the key projection")
        if recipe.kernel.algorithm == .math { _ = try checkedElementCount([queryLength, keyLength], "one head's score matrix") }
        if recipe.appliesQKNorm { try checkQKNorm(headDim: headDim) }

        if recipe.fusedProjections { try checkFusedLayers(crossAttention: inputs.encoderHiddenStates != nil) }
        if recipe.sliced { try checkSliceSize() }
        var kernelMask: KernelMask?
        if let m = inputs.attentionMask {
            let prepared = try prepareAttentionMask(m, targetLength: keyLength, batchSize: batch, heads: heads)
            if recipe.sliced { try checkSlicedMaskRows(prepared, rows: batch * heads) }
            kernelMask = try self.kernelMask(prepared, recipe.kernel, batch: batch, heads: heads,
                                             queryLength: queryLength, keyLength: keyLength)
        }
        let outDim = derived.outDim
        let outputShape = x.rank == 4 ? x.shape : [batchX, queryLength, outDim]
        if (x.rank == 4 || c.residualConnection) && outDim != channels {
            throw DiffAttnError.shape("the output has \(outDim) channels (out_dim) but \(x.rank == 4 ? "4-D input is restored to" : "residual_connection adds") \(channels) channels")
        }
        return StandardPlan(recipe: recipe, batch: batch, queryLength: queryLength, keyLength: keyLength,
                            heads: heads, headDim: headDim, mask: kernelMask, outputShape: outputShape)
    }

    func runStandard(_ inputs: AttentionInputs, _ plan: StandardPlan) throws -> Tensor {
        try standardOutput(try standardAttention(inputs, plan).attended, residual: inputs.hiddenStates)
    }

    /// Steps A1–A13: everything up to the output projection. Returns the (per-head normed)
    /// queries too, which the IP-Adapter processors attend with again.
    func standardAttention(_ inputs: AttentionInputs, _ plan: StandardPlan) throws -> (query: Tensor, attended: Tensor) {
        var x = inputs.hiddenStates
        if plan.recipe.appliesSpatialNorm && config.spatialNormDim != nil { x = spatialNorm(x, inputs.temb!) }
        if x.rank == 4 { x = tokensFromImage(x) }
        if let groups = config.normNumGroups { groupNormTokens(&x, "group_norm", groups: groups, eps: Float(config.eps)) }
        var context = x
        if let e = inputs.encoderHiddenStates {
            context = config.crossAttentionNorm != .none ? try normEncoderHiddenStates(e) : e
        }
        var (query, key, value) = try projectQKV(x, context: context, crossAttention: inputs.encoderHiddenStates != nil,
                                                 fused: plan.recipe.fusedProjections)
        if plan.recipe.appliesQKNorm && config.qkNorm != .none {
            applyQKNorm(&query, "norm_q", headDim: plan.headDim)
            applyQKNorm(&key, "norm_k", headDim: plan.headDim)
        }
        let attended = attend(query: query, key: key, value: value, heads: plan.heads, mask: plan.mask,
                              kernel: plan.recipe.kernel, sliceSize: plan.recipe.sliced ? processor.sliceSize : nil)
        return (query, attended)
    }

    /// Steps A14–A17: output projection (dropout is the identity at inference), 4-D restore,
    /// residual, rescale.
    func standardOutput(_ attended: Tensor, residual: Tensor) throws -> Tensor {
        var out = try project(attended, "to_out.0")
        if residual.rank == 4 { out = imageFromTokens(out, imageShape: residual.shape) }
        finishOutput(&out, residual: residual, addResidual: config.residualConnection,
                     rescale: Float(config.rescaleOutputFactor))
        return out
    }

    /// Q, K, V from the separate projections, or from the fused ones (FusedAttnProcessor2_0
    /// picks `to_qkv` or `to_q` + `to_kv` by whether encoder states were passed — attention_processor.py:FusedAttnProcessor2_0.__call__).
    func projectQKV(_ x: Tensor, context: Tensor, crossAttention: Bool, fused: Bool) throws -> (Tensor, Tensor, Tensor) {
        guard fused else { return (try project(x, "to_q"), try project(context, "to_k"), try project(context, "to_v")) }
        if crossAttention {
            let kv = splitLastAxis(try project(context, "to_kv"), parts: 2)
            return (try project(x, "to_q"), kv[0], kv[1])
        }
        let qkv = splitLastAxis(try project(x, "to_qkv"), parts: 3)
        return (qkv[0], qkv[1], qkv[2])
    }

    func checkFusedLayers(crossAttention: Bool) throws {
        let layer = crossAttention ? "to_kv" : "to_qkv"
        guard parameters.contains(layer + ".weight") else {
            throw DiffAttnError.state("'Attention' object has no attribute '\(layer)': \(processor.kind.name) needs fused projections; call fuse_projections() first")
        }
    }

    func checkSliceSize() throws {
        guard let s = processor.sliceSize, s >= 1 else {
            throw DiffAttnError.value("\(processor.kind.name) with slice_size \(processor.sliceSize ?? 0) cannot run: diffusers divides by it (ZeroDivisionError)")
        }
    }

    /// SlicedAttnProcessor slices the prepared mask along its first axis, so each slice needs
    /// its own rows: a mask with fewer rows than batch×heads works only in a single slice.
    func checkSlicedMaskRows(_ prepared: AttentionMask, rows: Int) throws {
        let size = processor.sliceSize ?? rows
        guard prepared.shape[0] == rows || rows <= size else {
            throw DiffAttnError.shape("\(processor.kind.name) slices the prepared attention_mask of shape \(describe(prepared.shape)) along its first axis in slices of \(size); it needs \(rows) rows (batch·heads)")
        }
    }

    /// Steps A16–A17: optional residual, then division by `rescale_output_factor`.
    func finishOutput(_ out: inout Tensor, residual: Tensor, addResidual: Bool, rescale: Float) {
        if addResidual { for i in 0..<out.count { out.storage[i] += residual.storage[i] } }
        if rescale != 1 { for i in 0..<out.count { out.storage[i] /= rescale } }
    }
}
