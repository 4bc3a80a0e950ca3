import DiffAttnKernels
import DiffAttnModule

// The standard pipeline's computation (its input check is StandardPlan.swift): family A, steps
// A1–A17 (attention_processor.py:AttnProcessor.__call__), and the AttnProcessor2_0-style DiT processors with their quirks as recipe
// fields — PAG chunks, text prepended to the input (CogVideoX), rotary tables, grouped
// key/value heads, the module's causal flag (the processors listed in StandardPlan.swift).
extension Attention {
    func runStandard(_ inputs: AttentionInputs, _ plan: StandardPlan) throws -> [Tensor] {
        let r = plan.recipe, residual = inputs.hiddenStates
        let x = standardInput(inputs, r)
        let e = r.ignoresEncoder ? nil : inputs.encoderHiddenStates
        var outputs: [Tensor]
        if r.pagChunks > 0 {
            let ranges = try pagChunkRanges(batch: x.shape[0], chunks: r.pagChunks)
            let original = try standardCore(sliceBatch(x, ranges.original), e, inputs.dit, plan)[0]
            var perturbed = sliceBatch(x, ranges.perturbed)
            applyGroupNorm(&perturbed, r)
            outputs = [concatBatch([original, try identityAttention(perturbed)])]
        } else {
            outputs = try standardCore(x, e, inputs.dit, plan)
        }
        restoreAndFinish(&outputs[0], residual: residual)
        return outputs
    }

    /// Steps A1–A13: everything up to the output projection. Returns the (per-head normed)
    /// queries too, which the IP-Adapter processors attend with again.
    func standardAttention(_ inputs: AttentionInputs, _ plan: StandardPlan) throws -> (query: Tensor, attended: Tensor) {
        var x = standardInput(inputs, plan.recipe)
        applyGroupNorm(&x, plan.recipe)
        return try attention(x, inputs.encoderHiddenStates, inputs.dit, plan, image: 0..<x.shape[1])
    }

    /// Steps A14–A17: output projection (dropout is the identity at inference), 4-D restore,
    /// residual, rescale.
    func standardOutput(_ attended: Tensor, residual: Tensor) throws -> Tensor {
        var out = try project(attended, "to_out.0")
        restoreAndFinish(&out, residual: residual)
        return out
    }

    /// Steps A1–A2: spatial norm, then (B, C, H, W) → (B, H·W, C).
    private func standardInput(_ inputs: AttentionInputs, _ r: ProcessorRecipe) -> Tensor {
        var x = inputs.hiddenStates
        if r.appliesSpatialNorm && config.spatialNormDim != nil { x = spatialNorm(x, inputs.temb!) }
        return x.rank == 4 ? tokensFromImage(x) : x
    }

    private func applyGroupNorm(_ x: inout Tensor, _ r: ProcessorRecipe) {
        if r.appliesGroupNorm, let groups = config.normNumGroups { groupNormTokens(&x, "group_norm", groups: groups, eps: Float(config.eps)) }
    }

    private func restoreAndFinish(_ out: inout Tensor, residual: Tensor) {
        if residual.rank == 4 { out = imageFromTokens(out, imageShape: residual.shape) }
        finishOutput(&out, residual: residual, addResidual: config.residualConnection,
                     rescale: Float(config.rescaleOutputFactor))
    }

    /// One attention over token-form input: text joined in front (CogVideoX), group norm, the
    /// Mochi VAE single-frame shortcut, attention, `to_out`, and the text split off again.
    private func standardCore(_ input: Tensor, _ encoder: Tensor?, _ dit: DiTInputs, _ plan: StandardPlan) throws -> [Tensor] {
        let r = plan.recipe
        var x = input, e = encoder
        let text = r.prependsEncoder ? e?.shape[1] ?? 0 : 0
        if r.prependsEncoder, let enc = e { x = concatTokens([enc, x]); e = nil }
        applyGroupNorm(&x, r)
        // Mochi VAE's single-frame shortcut (attention_processor.py:MochiVaeAttnProcessor2_0.__call__), equal to attention over one key.
        if r.usesModuleCausal && x.shape[1] == 1 { return [try identityAttention(x)] }
        let out = try project(try attention(x, e, dit, plan, image: text..<x.shape[1]).attended, "to_out.0")
        guard r.prependsEncoder else { return [out] }
        return [sliceTokens(out, text..<out.shape[1]), sliceTokens(out, 0..<text)]
    }

    /// Steps A7–A13: norm_cross, the QKV projection, per-head norms, rotary embedding over the
    /// image tokens, attention.
    private func attention(_ x: Tensor, _ e: Tensor?, _ dit: DiTInputs, _ plan: StandardPlan,
                           image: Range<Int>) throws -> (query: Tensor, attended: Tensor) {
        let r = plan.recipe, (h, d) = (plan.heads, plan.headDim)
        var context = x
        if let e { context = r.appliesNormCross && config.crossAttentionNorm != .none ? try normEncoderHiddenStates(e) : e }
        var (q, k, v) = try projectQKV(x, context: context, crossAttention: e != nil, fused: usesFusedProjections(r))
        if r.appliesQKNorm && config.qkNorm != .none {
            applyQKNorm(&q, "norm_q", headDim: d)
            applyQKNorm(&k, "norm_k", headDim: d)
        }
        switch r.rotary {
        case .interleavedImage, .partialRotateHalf:
            if let pair = dit.rotary {
                let width = pair.cos.shape[1]
                let spec = RotaryLayoutSpec(rule: r.rotary == .interleavedImage ? .interleaved : .rotateHalf, width: width, rowStride: width)
                rotate(&q, heads: h, headDim: d, tokens: image, cos: pair.cos, sin: pair.sin, spec)
                if plan.rotatesKey { rotate(&k, heads: plan.keyValueHeads, headDim: d, tokens: image, cos: pair.cos, sin: pair.sin, spec) }
            }
        case .allegro:
            for (axis, spec) in plan.allegro.enumerated() {
                let pair = dit.allegroTables[axis]
                rotate(&q, heads: h, headDim: d, tokens: image, cos: pair.cos, sin: pair.sin, spec)
                rotate(&k, heads: h, headDim: d, tokens: image, cos: pair.cos, sin: pair.sin, spec)
            }
        default: break
        }
        let attended = attend(query: q, key: k, value: v, heads: h, mask: plan.mask, kernel: r.kernel,
                              sliceSize: r.sliced ? processor.sliceSize : nil, keyValueHeads: plan.keyValueHeads,
                              isCausal: r.usesModuleCausal && config.isCausal)
        return (q, attended)
    }

    /// Q, K, V from the separate projections, or from the fused ones: `to_qkv` over the input,
    /// or `to_q` + `to_kv` when encoder states were passed
    /// (attention_processor.py:FusedAttnProcessor2_0.__call__).
    func projectQKV(_ x: Tensor, context: Tensor, crossAttention: Bool, fused: Bool) throws -> (Tensor, Tensor, Tensor) {
        guard fused else { return (try project(x, "to_q"), try project(context, "to_k"), try project(context, "to_v")) }
        if crossAttention {
            let kv = splitLastAxis(try project(context, "to_kv"), parts: 2)
            return (try project(x, "to_q"), kv[0], kv[1])
        }
        let qkv = splitLastAxis(try project(x, "to_qkv"), parts: 3)
        return (qkv[0], qkv[1], qkv[2])
    }

    /// Steps A16–A17: optional residual, then division by `rescale_output_factor`.
    func finishOutput(_ out: inout Tensor, residual: Tensor, addResidual: Bool, rescale: Float) {
        if addResidual {
            residual.withUnsafeElements { r in out.storage.withUnsafeMutableBufferPointer { o in for i in o.indices { o[i] += r[i] } } }
        }
        if rescale != 1 { for i in 0..<out.count { out.storage[i] /= rescale } }
    }
}
