import DiffAttnKernels
import DiffAttnModule

/// What the standard DiT pipeline resolved while checking its inputs.
struct StandardDiTPlan {
    var heads: Int, keyValueHeads: Int, headDim: Int
    var mask: KernelMask?
    var rotatesKey: Bool
    var allegro: [RotaryLayoutSpec] = []
    var outputShapes: [[Int]]
}

// The AttnProcessor2_0-style DiT processors: Hunyuan (+fused, +PAG), Allegro, Stable Audio,
// Mochi VAE, the PAG identity-self pair and CogVideoX (text prepended to the input)
// (attention_processor.py:AttnProcessor2_0.__call__, attention_processor.py:AllegroAttnProcessor2_0.__call__, attention_processor.py:CogVideoXAttnProcessor2_0.__call__, attention_processor.py:HunyuanAttnProcessor2_0.__call__, attention_processor.py:MochiVaeAttnProcessor2_0.__call__, attention_processor.py:StableAudioAttnProcessor2_0.__call__, attention_processor.py:PAGIdentitySelfAttnProcessor2_0.__call__).
extension Attention {
    func planStandardDiT(_ inputs: AttentionInputs, _ r: DiTRecipe) throws -> StandardDiTPlan {
        let x = inputs.hiddenStates, name = processor.kind.name
        guard x.rank == 3 || (x.rank == 4 && r.acceptsImageInput) else {
            throw DiffAttnError.shape("\(name) expects hidden_states (batch, tokens, channels)\(r.acceptsImageInput ? " or (batch, channels, height, width)" : ""), got \(describe(x.shape))")
        }
        let channels = x.rank == 4 ? x.shape[1] : x.shape[2]
        guard channels == config.queryDim else {
            throw DiffAttnError.shape("hidden_states must have \(config.queryDim) channels (query_dim), got shape \(describe(x.shape))")
        }
        if r.appliesSpatialNorm && config.spatialNormDim != nil { try checkSpatialNormInputs(x, inputs.temb) }
        let batch = x.shape[0], s = x.rank == 4 ? x.shape[2] * x.shape[3] : x.shape[1]
        let ranges = r.pagChunks > 0 ? try pagChunkRanges(batch: batch, chunks: r.pagChunks) : (0..<batch, batch..<batch)
        let pathBatch = ranges.0.count
        let e = r.ignoresEncoder ? nil : inputs.encoderHiddenStates
        if r.encoderRequired && e == nil { throw DiffAttnError.state("\(name) needs encoder_hidden_states ('NoneType' object has no attribute 'size')") }
        var queryLength = s, keyLength = s, text = 0
        if let e {
            guard e.rank == 3, e.shape[0] == pathBatch else {
                throw DiffAttnError.shape("encoder_hidden_states must be (\(pathBatch), tokens, channels), got \(describe(e.shape))")
            }
            if r.prependsEncoder {
                guard e.shape[2] == channels else { throw DiffAttnError.shape("encoder_hidden_states must have \(channels) channels to be joined with hidden_states, got \(describe(e.shape))") }
                text = e.shape[1]; queryLength = s + text; keyLength = queryLength
            } else {
                guard e.shape[2] == derived.crossAttentionDim else {
                    throw DiffAttnError.shape("encoder_hidden_states must have \(derived.crossAttentionDim) channels (cross_attention_dim), got shape \(describe(e.shape))")
                }
                keyLength = e.shape[1]
            }
        } else if derived.crossAttentionDim != config.queryDim {
            throw DiffAttnError.shape("self-attention feeds hidden_states (\(config.queryDim) channels) to to_k, which expects \(derived.crossAttentionDim) (cross_attention_dim); pass encoder_hidden_states")
        }
        let crossCall = e != nil && !r.prependsEncoder
        if r.fusion == .always {
            let layer = crossCall ? "to_kv" : "to_qkv"
            if !hasLayer(layer) { throw DiffAttnError.state("'\(config.moduleClass.name)' object has no attribute '\(layer)'") }
        }
        guard hasLayer("to_out.0"), !config.onlyCrossAttention else { throw DiffAttnError.state("this module lacks to_out or to_k/to_v, which \(name) needs") }
        let heads = derived.heads
        let headDim = (r.groupedKeyValues ? derived.innerDim : derived.innerKVDim) / heads
        let kvHeads = derived.innerKVDim / max(headDim, 1)
        guard headDim > 0, heads * headDim == derived.innerDim, kvHeads * headDim == derived.innerKVDim,
              kvHeads == heads || (r.groupedKeyValues && kvHeads <= heads && heads % kvHeads == 0) else {
            throw DiffAttnError.shape("\(name): query width \(derived.innerDim) and key width \(derived.innerKVDim) do not split into \(heads) heads")
        }
        if r.appliesQKNorm { try checkQKNorm(headDim: headDim) }
        var mask: KernelMask?
        let causal = r.usesModuleCausal && config.isCausal
        if let m = inputs.attentionMask, case .prepared = r.mask {
            let target = r.maskTargetIsEncoderLength ? text : keyLength
            let prepared = try prepareAttentionMask(m, targetLength: target, batchSize: pathBatch, heads: heads)
            mask = try kernelMask(prepared, .sdpa, batch: pathBatch, heads: heads, queryLength: queryLength, keyLength: keyLength)
            if causal && queryLength > 1 { throw DiffAttnError.value("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True") }
        }
        let rotatesKey = !(r.rotaryNeedsSelfAttention && derived.isCrossAttention)
        var plan = StandardDiTPlan(heads: heads, keyValueHeads: kvHeads, headDim: headDim, mask: mask, rotatesKey: rotatesKey,
                                   outputShapes: [])
        try checkStandardRotary(inputs.dit, r, &plan, batch: pathBatch, imageTokens: s, keyLength: keyLength, crossCall: crossCall)
        let outDim = derived.outDim
        if (x.rank == 4 || config.residualConnection) && outDim != channels {
            throw DiffAttnError.shape("the output has \(outDim) channels (out_dim) but the input has \(channels)")
        }
        plan.outputShapes = x.rank == 4 ? [x.shape] : [[batch, s, outDim]]
        if r.prependsEncoder { plan.outputShapes.append([batch, text, outDim]) }
        return plan
    }

    private func checkStandardRotary(_ dit: DiTInputs, _ r: DiTRecipe, _ plan: inout StandardDiTPlan, batch: Int,
                                     imageTokens s: Int, keyLength: Int, crossCall: Bool) throws {
        let d = plan.headDim
        switch r.rotary {
        case .interleavedImage:
            guard let pair = dit.rotary else { return }
            try checkRotaryPair(pair, [s, d], "image_rotary_emb")
            if plan.rotatesKey && crossCall && keyLength != s && !r.prependsEncoder {
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
            plan.allegro = try allegroLayouts(dit, batch: batch, tokens: s, headDim: d)
        default: break
        }
    }

    func runStandardDiT(_ inputs: AttentionInputs, _ r: DiTRecipe, _ plan: StandardDiTPlan) throws -> [Tensor] {
        let residual = inputs.hiddenStates
        var x = residual
        if r.appliesSpatialNorm && config.spatialNormDim != nil { x = spatialNorm(x, inputs.temb!) }
        if x.rank == 4 { x = tokensFromImage(x) }
        let e = r.ignoresEncoder ? nil : inputs.encoderHiddenStates
        var outputs: [Tensor]
        if r.pagChunks > 0 {
            let ranges = try pagChunkRanges(batch: x.shape[0], chunks: r.pagChunks)
            let original = try standardCore(sliceBatch(x, ranges.original), e, inputs, r, plan)[0]
            var perturbed = sliceBatch(x, ranges.perturbed)
            if r.appliesGroupNorm, let groups = config.normNumGroups { groupNormTokens(&perturbed, "group_norm", groups: groups, eps: Float(config.eps)) }
            outputs = [concatBatch([original, try identityAttention(perturbed)])]
        } else {
            outputs = try standardCore(x, e, inputs, r, plan)
        }
        if residual.rank == 4 { outputs[0] = imageFromTokens(outputs[0], imageShape: residual.shape) }
        finishOutput(&outputs[0], residual: residual, addResidual: config.residualConnection,
                     rescale: Float(config.rescaleOutputFactor))
        return outputs
    }

    private func standardCore(_ input: Tensor, _ encoder: Tensor?, _ inputs: AttentionInputs, _ r: DiTRecipe,
                              _ plan: StandardDiTPlan) throws -> [Tensor] {
        var x = input, e = encoder
        let text = r.prependsEncoder ? e?.shape[1] ?? 0 : 0
        if r.prependsEncoder, let enc = e { x = concatTokens([enc, x]); e = nil }
        if r.appliesGroupNorm, let groups = config.normNumGroups { groupNormTokens(&x, "group_norm", groups: groups, eps: Float(config.eps)) }
        // Mochi VAE's single-frame shortcut (attention_processor.py:MochiVaeAttnProcessor2_0.__call__), equal to attention over one key.
        if r.usesModuleCausal && x.shape[1] == 1 { return [try identityAttention(x)] }
        var context = x
        if let e { context = r.appliesNormCross && config.crossAttentionNorm != .none ? try normEncoderHiddenStates(e) : e }
        let fused = r.fusion == .always
        var q: Tensor, k: Tensor, v: Tensor
        if fused && e != nil {
            q = try project(x, "to_q")
            let kv = try projectParts(context, fused: true, separate: ["to_k", "to_v"], fusedName: "to_kv")
            (k, v) = (kv[0], kv[1])
        } else {
            let p = fused ? try projectParts(x, fused: true, separate: ["to_q", "to_k", "to_v"], fusedName: "to_qkv")
                : [try project(x, "to_q"), try project(context, "to_k"), try project(context, "to_v")]
            (q, k, v) = (p[0], p[1], p[2])
        }
        let (h, d) = (plan.heads, plan.headDim)
        if r.appliesQKNorm && config.qkNorm != .none {
            applyQKNorm(&q, "norm_q", headDim: d)
            applyQKNorm(&k, "norm_k", headDim: d)
        }
        let image = text..<q.shape[1]
        switch r.rotary {
        case .interleavedImage, .partialRotateHalf:
            if let pair = inputs.dit.rotary {
                let width = pair.cos.shape[1]
                let spec = RotaryLayoutSpec(rule: r.rotary == .interleavedImage ? .interleaved : .rotateHalf, width: width, rowStride: width)
                rotate(&q, heads: h, headDim: d, tokens: image, cos: pair.cos, sin: pair.sin, spec)
                if plan.rotatesKey { rotate(&k, heads: plan.keyValueHeads, headDim: d, tokens: image, cos: pair.cos, sin: pair.sin, spec) }
            }
        case .allegro:
            for (axis, spec) in plan.allegro.enumerated() {
                let pair = inputs.dit.allegroTables[axis]
                rotate(&q, heads: h, headDim: d, tokens: image, cos: pair.cos, sin: pair.sin, spec)
                rotate(&k, heads: h, headDim: d, tokens: image, cos: pair.cos, sin: pair.sin, spec)
            }
        default: break
        }
        let y = attend(query: q, key: k, value: v, heads: h, mask: plan.mask, kernel: .sdpa,
                       keyValueHeads: plan.keyValueHeads, isCausal: r.usesModuleCausal && config.isCausal)
        let out = try project(y, "to_out.0")
        guard r.prependsEncoder else { return [out] }
        return [sliceTokens(out, text..<out.shape[1]), sliceTokens(out, 0..<text)]
    }
}
