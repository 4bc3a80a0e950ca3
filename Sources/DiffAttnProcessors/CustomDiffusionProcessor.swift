import DiffAttnKernels
import DiffAttnModule

/// Family C (attention_processor.py:CustomDiffusionAttnProcessor): Custom Diffusion's optional replacement projections. 3-D input only, no
/// norms but `norm_cross`, no residual or rescale; the first-token detach (C5) changes only
/// gradients, so inference skips it.
struct CustomDiffusionPlan {
    var recipe: ProcessorRecipe
    var heads: Int
    var mask: KernelMask?
    var outputShape: [Int]
}

extension Attention {
    func planCustomDiffusion(_ inputs: AttentionInputs, _ recipe: ProcessorRecipe) throws -> CustomDiffusionPlan {
        let x = inputs.hiddenStates, p = processor
        guard x.rank == 3 else {
            throw DiffAttnError.shape("\(p.kind.name) takes 3-D hidden_states (batch, tokens, channels) only, got shape \(describe(x.shape))")
        }
        let (batch, queryLength, channels) = (x.shape[0], x.shape[1], x.shape[2])
        let qLayer = p.trainQOut ? "processor.to_q_custom_diffusion" : "to_q"
        let kvLayer = p.trainKV ? "processor.to_k_custom_diffusion" : "to_k"
        let outLayer = p.trainQOut ? "processor.to_out_custom_diffusion.0" : "to_out.0"
        for layer in [qLayer, kvLayer, outLayer] where !parameters.contains(layer + ".weight") {
            throw DiffAttnError.state("'NoneType' object is not callable: \(p.kind.name) needs \(layer), which this Attention lacks")
        }
        let qWidth = parameters.spec(named: qLayer + ".weight")!.shape
        guard qWidth[1] == channels else {
            throw DiffAttnError.shape("\(qLayer) expects \(qWidth[1]) input channels, hidden_states has \(channels)")
        }
        var keyLength = queryLength
        let kvSpec = parameters.spec(named: kvLayer + ".weight")!.shape
        if let e = inputs.encoderHiddenStates {
            guard e.rank == 3, e.shape[0] == batch, e.shape[2] == kvSpec[1] else {
                throw DiffAttnError.shape("encoder_hidden_states must be (\(batch), tokens, \(kvSpec[1])) for \(kvLayer), got shape \(describe(e.shape))")
            }
            keyLength = e.shape[1]
        } else if kvSpec[1] != channels {
            throw DiffAttnError.shape("self-attention feeds hidden_states (\(channels) channels) to \(kvLayer), which expects \(kvSpec[1])")
        }
        guard batch > 0, queryLength > 0, keyLength > 0 else { throw DiffAttnError.shape("empty inputs are not supported") }
        let heads = derived.heads, width = qWidth[0]
        guard kvSpec[0] == width, width % heads == 0 else {
            throw DiffAttnError.shape("\(p.kind.name): query width \(width) and key width \(kvSpec[0]) must match and divide into \(heads) heads")
        }
        if recipe.kernel.masks == .broadcast && width != channels {
            // The 2_0 variant splits heads with D = C // H, C the input width (attention_processor.py:CustomDiffusionAttnProcessor2_0.__call__).
            throw DiffAttnError.shape("\(p.kind.name) splits heads by the input width (\(channels)) but the projections are \(width) wide; it needs hidden_size == query_dim")
        }
        let outIn = parameters.spec(named: outLayer + ".weight")!.shape[1]
        guard outIn == width else { throw DiffAttnError.shape("\(outLayer) expects \(outIn) features, attention gives \(width)") }
        var kernelMask: KernelMask?
        if let m = inputs.attentionMask {
            // Target: the query length for the classic and 2_0 variants (a defect, attention_processor.py:CustomDiffusionAttnProcessor.__call__), the
            // key length for the xFormers one (attention_processor.py:CustomDiffusionXFormersAttnProcessor.__call__).
            let target = p.kind == .customDiffusionXFormersAttnProcessor ? keyLength : queryLength
            let prepared = try prepareAttentionMask(m, targetLength: target, batchSize: batch, heads: heads)
            kernelMask = try self.kernelMask(prepared, recipe.kernel, batch: batch, heads: heads,
                                             queryLength: queryLength, keyLength: keyLength)
        }
        let outWidth = parameters.spec(named: outLayer + ".weight")!.shape[0]
        return CustomDiffusionPlan(recipe: recipe, heads: heads, mask: kernelMask,
                                   outputShape: [batch, queryLength, outWidth])
    }

    func runCustomDiffusion(_ inputs: AttentionInputs, _ plan: CustomDiffusionPlan) throws -> Tensor {
        let x = inputs.hiddenStates, p = processor
        let query = try project(x, p.trainQOut ? "processor.to_q_custom_diffusion" : "to_q")
        var context = x
        if let e = inputs.encoderHiddenStates {
            context = config.crossAttentionNorm != .none ? try normEncoderHiddenStates(e) : e
        }
        let key = try project(context, p.trainKV ? "processor.to_k_custom_diffusion" : "to_k")
        let value = try project(context, p.trainKV ? "processor.to_v_custom_diffusion" : "to_v")
        let attended = attend(query: query, key: key, value: value, heads: plan.heads, mask: plan.mask, kernel: plan.recipe.kernel)
        return try project(attended, p.trainQOut ? "processor.to_out_custom_diffusion.0" : "to_out.0")
    }
}
