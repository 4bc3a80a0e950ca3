import DiffAttnKernels
import DiffAttnModule

/// What the standard pipeline resolved while checking its inputs, before touching the weights.
struct StandardPlan {
    var recipe: ProcessorRecipe
    /// The batch one attention runs over (the original chunk under PAG).
    var batch: Int
    var queryLength: Int
    var keyLength: Int
    var heads: Int, keyValueHeads: Int, headDim: Int
    var mask: KernelMask?
    var rotatesKey: Bool
    var allegro: [RotaryLayoutSpec] = []
    var outputShapes: [[Int]]
    var outputShape: [Int] { outputShapes[0] }
}

// The one input check of the standard pipeline: family A (attention_processor.py:AttnProcessor.__call__,
// steps A1–A17) and the AttnProcessor2_0-style DiT processors (attention_processor.py: the
// __call__ of HunyuanAttnProcessor2_0, AllegroAttnProcessor2_0, CogVideoXAttnProcessor2_0,
// MochiVaeAttnProcessor2_0, StableAudioAttnProcessor2_0, PAGIdentitySelfAttnProcessor2_0).
// It checks everything diffusers would reject and resolves shapes and the mask.
extension Attention {
    func planStandard(_ inputs: AttentionInputs, _ r: ProcessorRecipe) throws -> StandardPlan {
        let x = inputs.hiddenStates, c = config, name = processor.kind.name
        guard x.rank == 3 || (x.rank == 4 && r.acceptsImageInput) else {
            throw DiffAttnError.shape("hidden_states must be 3-D (batch, tokens, channels)\(r.acceptsImageInput ? " or 4-D (batch, channels, height, width)" : ""), got shape \(describe(x.shape))")
        }
        if r.appliesSpatialNorm && c.spatialNormDim != nil { try checkSpatialNormInputs(x, inputs.temb) }
        let channels = x.rank == 4 ? x.shape[1] : x.shape[2]
        guard channels == c.queryDim else {
            throw DiffAttnError.shape("hidden_states must have \(c.queryDim) channels (query_dim), got shape \(describe(x.shape))")
        }
        let batchX = x.shape[0], s = x.rank == 4 ? x.shape[2] * x.shape[3] : x.shape[1]
        let batch = r.pagChunks > 0 ? try pagChunkRanges(batch: batchX, chunks: r.pagChunks).original.count : batchX
        let e = r.ignoresEncoder ? nil : inputs.encoderHiddenStates
        if r.encoderRequired && e == nil { throw DiffAttnError.state("\(name) needs encoder_hidden_states ('NoneType' object has no attribute 'size')") }
        var queryLength = s, keyLength = s, text = 0
        if let e {
            guard e.rank == 3 else {
                throw DiffAttnError.shape("encoder_hidden_states must be 3-D (batch, tokens, channels), got shape \(describe(e.shape))")
            }
            guard e.shape[0] == batch else {
                throw DiffAttnError.shape("encoder_hidden_states batch \(e.shape[0]) differs from the hidden_states batch \(batch) it attends with")
            }
            if r.prependsEncoder {
                guard e.shape[2] == channels else { throw DiffAttnError.shape("encoder_hidden_states must have \(channels) channels to be joined with hidden_states, got \(describe(e.shape))") }
                text = e.shape[1]; queryLength = s + text; keyLength = queryLength
            } else {
                // norm_cross as GroupNorm normalises added_kv_proj_dim channels before to_k sees them.
                let normed = r.appliesNormCross && c.crossAttentionNorm == .groupNorm
                let width = normed ? (c.addedKVProjDim ?? derived.crossAttentionDim) : derived.crossAttentionDim
                guard e.shape[2] == width, width == derived.crossAttentionDim else {
                    throw DiffAttnError.shape("encoder_hidden_states must have \(derived.crossAttentionDim) channels (cross_attention_dim), got shape \(describe(e.shape))")
                }
                keyLength = e.shape[1]
            }
        } else if derived.crossAttentionDim != c.queryDim && !c.onlyCrossAttention {
            throw DiffAttnError.shape("self-attention feeds hidden_states (\(c.queryDim) channels) to to_k, which expects \(derived.crossAttentionDim) (cross_attention_dim); pass encoder_hidden_states")
        }
        guard batch > 0, queryLength > 0, keyLength > 0 else {
            throw DiffAttnError.shape("empty inputs are not supported: batch \(batch), query tokens \(queryLength), key tokens \(keyLength)")
        }
        guard !c.onlyCrossAttention else {
            throw DiffAttnError.state("this Attention has no to_k/to_v (only_cross_attention=True), which \(name) needs")
        }
        guard !c.preOnly, hasLayer("to_out.0") else {
            throw DiffAttnError.state("this Attention has no to_out (pre_only=True), which \(name) needs")
        }
        let (heads, kvHeads, headDim) = try splitHeads(groupedKeyValues: r.groupedKeyValues)
        _ = try checkedElementCount([batch, queryLength, max(derived.innerDim, derived.outDim, channels)], "the query projection")
        _ = try checkedElementCount([batch, keyLength, derived.innerKVDim], "the key projection")
        if r.kernel.algorithm == .math { _ = try checkedElementCount([queryLength, keyLength], "one head's score matrix") }
        if r.appliesQKNorm { try checkQKNorm(headDim: headDim) }
        let crossCall = e != nil && !r.prependsEncoder
        if usesFusedProjections(r) { try checkFusedLayer(crossCall ? "to_kv" : "to_qkv") }
        if r.sliced { try checkSliceSize() }
        var mask: KernelMask?
        if let m = inputs.attentionMask, case .prepared = r.mask {
            let target = r.maskTargetIsEncoderLength ? text : keyLength
            let prepared = try prepareAttentionMask(m, targetLength: target, batchSize: batch, heads: heads)
            if r.sliced { try checkSlicedMaskRows(prepared, rows: batch * heads) }
            mask = try kernelMask(prepared, r.kernel, batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength)
            if r.usesModuleCausal && c.isCausal && queryLength > 1 {
                throw DiffAttnError.value("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
            }
        }
        let rotatesKey = !(r.rotaryNeedsSelfAttention && derived.isCrossAttention)
        var plan = StandardPlan(recipe: r, batch: batch, queryLength: queryLength, keyLength: keyLength, heads: heads,
                                keyValueHeads: kvHeads, headDim: headDim, mask: mask, rotatesKey: rotatesKey, outputShapes: [])
        try checkStandardRotary(inputs.dit, &plan, imageTokens: s, crossCall: crossCall)
        let outDim = derived.outDim
        if (x.rank == 4 || c.residualConnection) && outDim != channels {
            throw DiffAttnError.shape("the output has \(outDim) channels (out_dim) but \(x.rank == 4 ? "4-D input is restored to" : "residual_connection adds") \(channels) channels")
        }
        plan.outputShapes = x.rank == 4 ? [x.shape] : [[batchX, s, outDim]]
        if r.prependsEncoder { plan.outputShapes.append([batchX, text, outDim]) }
        return plan
    }

    /// Query heads, key/value heads and the head width; key/value heads differ from query
    /// heads only for grouped-query attention (Stable Audio), whose head width the query sets.
    private func splitHeads(groupedKeyValues: Bool) throws -> (heads: Int, keyValueHeads: Int, headDim: Int) {
        let heads = derived.heads
        let headDim = (groupedKeyValues ? derived.innerDim : derived.innerKVDim) / heads
        let kvHeads = derived.innerKVDim / max(headDim, 1)
        guard headDim > 0, heads * headDim == derived.innerDim, kvHeads * headDim == derived.innerKVDim,
              kvHeads == heads || (groupedKeyValues && kvHeads <= heads && heads % kvHeads == 0) else {
            throw DiffAttnError.shape("\(processor.kind.name): query width \(derived.innerDim) (inner_dim) and key/value width \(derived.innerKVDim) (inner_kv_dim) do not split into \(heads) heads")
        }
        return (heads, kvHeads, headDim)
    }

    private func checkStandardRotary(_ dit: DiTInputs, _ plan: inout StandardPlan, imageTokens s: Int, crossCall: Bool) throws {
        let d = plan.headDim, r = plan.recipe, keyLength = plan.keyLength
        switch r.rotary {
        case .interleavedImage:
            guard let pair = dit.rotary else { return }
            try checkRotaryPair(pair, [s, d], "image_rotary_emb")
            if plan.rotatesKey && crossCall && keyLength != s {
                throw DiffAttnError.shape("image_rotary_emb has \(s) rows but the key has \(keyLength) tokens")
            }
        case .partialRotateHalf:
            guard let pair = dit.rotary else { return }
            let width = pair.cos.shape.last ?? 0
            guard pair.cos.rank == 2, width % 2 == 0, width <= d else {
                throw DiffAttnError.shape("rotary_emb tables must be (\(s), R) with even R ≤ head_dim \(d), got \(describe(pair.cos.shape))")
            }
            try checkRotaryPair(pair, [s, width], "rotary_emb")
            if plan.rotatesKey && keyLength != s { throw DiffAttnError.shape("rotary_emb has \(s) rows but the key has \(keyLength) tokens") }
        case .allegro:
            guard !dit.allegroTables.isEmpty, plan.rotatesKey else { return }
            guard keyLength == s else { throw DiffAttnError.shape("Allegro rotary positions cover \(s) tokens but the key has \(keyLength)") }
            plan.allegro = try allegroLayouts(dit, batch: plan.batch, tokens: s, headDim: d)
        default: break
        }
    }

    /// Whether the recipe projects with the fused layers (attention_processor.py:FusedAttnProcessor2_0.__call__;
    /// Flux follows the module).
    func usesFusedProjections(_ r: ProcessorRecipe) -> Bool {
        r.fusion == .always || (r.fusion == .moduleFlag && fusedProjections)
    }

    func checkFusedLayer(_ layer: String) throws {
        guard hasLayer(layer) else {
            throw DiffAttnError.state("'\(config.moduleClass.name)' object has no attribute '\(layer)': \(processor.kind.name) needs fused projections; call fuse_projections() first")
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
}
