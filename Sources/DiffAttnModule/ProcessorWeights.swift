import DiffAttnKernels

// The IP-Adapter processors' constructor checks and state-dict entries: part of installing a
// processor on the module (ProcessorConfig.swift), not of running it.
extension ProcessorConfig {
    /// `to_k_ip` then `to_v_ip`, one Linear per adapter each (`nn.ModuleList` order).
    func registerImageProjections(in table: inout ParameterTable, input: Int, hidden: Int, bias: Bool) {
        for prefix in ["processor.to_k_ip", "processor.to_v_ip"] {
            for k in numTokens.indices { table.addLinear("\(prefix).\(k)", in: input, out: hidden, bias: bias) }
        }
    }
}

extension ProcessorConfig {
    /// The constructor checks of the DiT IP-Adapter processors (attention_processor.py:SD3IPAdapterJointAttnProcessor2_0, transformer_flux.py:FluxIPAdapterAttnProcessor.__call__).
    func validateDiTIPAdapter() throws {
        let name = kind.name
        switch ditIPAdapter {
        case .none: return
        case .sd3:
            for (value, arg) in [(hiddenSize, "hidden_size"), (ipHiddenStatesDim, "ip_hidden_states_dim"), (headDim, "head_dim")]
            where value == nil {
                throw DiffAttnError.type("\(name).__init__() missing 1 required positional argument: '\(arg)'")
            }
            guard scale.count == 1, case .uniform(let s) = scale[0], s.isFinite else {
                throw DiffAttnError.value("\(name) takes one finite scale")
            }
        case .flux:
            for (value, arg) in [(hiddenSize, "hidden_size"), (crossAttentionDim, "cross_attention_dim")] where value == nil {
                throw DiffAttnError.type("\(name).__init__() missing 1 required positional argument: '\(arg)'")
            }
            guard !numTokens.isEmpty, numTokens.allSatisfy({ $0 > 0 }) else {
                throw DiffAttnError.value("num_tokens must be a non-empty list of positive token counts, got \(numTokens)")
            }
            guard scale.count == numTokens.count else {
                throw DiffAttnError.value("`scale` should be a list of integers with the same length as `num_tokens`.")
            }
        }
    }

    /// `processor.*` entries in diffusers' registration order.
    func registerDiTIPAdapterWeights(in table: inout ParameterTable) {
        switch ditIPAdapter {
        case .none: return
        case .sd3:
            guard let hidden = hiddenSize, let dim = ipHiddenStatesDim, let head = headDim else { return }
            table.addLinear("processor.norm_ip.linear", in: timestepsEmbDim, out: 2 * dim, bias: true)
            table.addLinear("processor.to_k_ip", in: dim, out: hidden, bias: false)
            table.addLinear("processor.to_v_ip", in: dim, out: hidden, bias: false)
            for n in ["norm_q", "norm_k", "norm_ip_k"] { table.addNorm("processor." + n, width: head, weight: true, bias: false) }
        case .flux:
            guard let hidden = hiddenSize, let input = crossAttentionDim else { return }
            registerImageProjections(in: &table, input: input, hidden: hidden, bias: true)
        }
    }
}
