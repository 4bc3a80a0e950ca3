import DiffAttnKernels

// State dicts of the module classes other than `Attention`, in diffusers' registration order,
// (transformer_flux.py:FluxAttention, transformer_mochi.py:MochiAttention, attention_processor.py:SanaMultiscaleLinearAttention); `fuse_projections` is DiffAttnProcessors/Fusion.swift's.
extension Attention {
    /// The arguments as the module class stores them: Flux and Mochi always carry RMS qk-norms.
    static func normalized(_ c: AttentionConfig) -> AttentionConfig {
        var c = c
        switch c.moduleClass {
        case .fluxAttention, .mochiAttention: c.qkNorm = .rmsNorm
        case .attention, .sanaMultiscaleLinearAttention: break
        }
        return c
    }

    /// The processor a module of this class starts with (what DA_PROCESSOR_DEFAULT stands for).
    public static func defaultProcessor(_ c: AttentionConfig) -> ProcessorConfig {
        switch c.moduleClass {
        case .attention: return defaultProcessor(scaleQK: c.scaleQK)
        case .fluxAttention: return ProcessorConfig(kind: .fluxAttnProcessor)
        case .mochiAttention: return ProcessorConfig(kind: .mochiAttnProcessor2_0)
        case .sanaMultiscaleLinearAttention: return ProcessorConfig(kind: .sanaMultiscaleAttnProcessor2_0)
        }
    }

    static func validateModule(_ c: AttentionConfig) throws {
        guard c.moduleClass == .sanaMultiscaleLinearAttention else { return }
        let m = c.multiscale
        guard m.outChannels > 0, m.outChannels <= 1 << 24 else {
            throw DiffAttnError.argument("out_channels must be in 1...\(1 << 24), got \(m.outChannels)")
        }
        // kernel_sizes=() is allowed, as diffusers: no multi-scale branch, only the linear attention
        guard m.kernelSizes.count <= 16, m.kernelSizes.allSatisfy({ $0 > 0 && $0 <= 63 }) else {
            throw DiffAttnError.argument("kernel_sizes must hold 0...16 sizes in 1...63, got \(m.kernelSizes)")
        }
    }

    static func makeModuleParameters(_ c: AttentionConfig, _ d: DerivedAttributes) -> ParameterTable {
        var t = ParameterTable(seed: 0x5EED_A77E)
        let head = c.dimHead
        switch c.moduleClass {
        case .attention: break
        case .fluxAttention:
            t.addNorm("norm_q", width: head, weight: c.elementwiseAffine, bias: false)
            t.addNorm("norm_k", width: head, weight: c.elementwiseAffine, bias: false)
            for n in ["to_q", "to_k", "to_v"] { t.addLinear(n, in: c.queryDim, out: d.innerDim, bias: c.bias) }
            if !c.preOnly { t.addLinear("to_out.0", in: d.innerDim, out: d.outDim, bias: c.outBias) }
            if let a = c.addedKVProjDim {
                t.addNorm("norm_added_q", width: head, weight: true, bias: false)
                t.addNorm("norm_added_k", width: head, weight: true, bias: false)
                for n in ["add_q_proj", "add_k_proj", "add_v_proj"] {
                    t.addLinear(n, in: a, out: d.innerDim, bias: c.addedProjBias ?? false)
                }
                t.addLinear("to_add_out", in: d.innerDim, out: c.queryDim, bias: c.outBias)
            }
        case .mochiAttention:
            for n in ["norm_q", "norm_k", "norm_added_q", "norm_added_k"] { t.addNorm(n, width: head, weight: true, bias: false) }
            for n in ["to_q", "to_k", "to_v"] { t.addLinear(n, in: c.queryDim, out: d.innerDim, bias: c.bias) }
            let a = c.addedKVProjDim ?? c.queryDim, addedBias = c.addedProjBias ?? false
            t.addLinear("add_k_proj", in: a, out: d.innerDim, bias: addedBias)
            t.addLinear("add_v_proj", in: a, out: d.innerDim, bias: addedBias)
            if c.contextPreOnly != nil { t.addLinear("add_q_proj", in: a, out: d.innerDim, bias: addedBias) }
            t.addLinear("to_out.0", in: d.innerDim, out: d.outDim, bias: c.outBias)
            if c.contextPreOnly != true {
                t.addLinear("to_add_out", in: d.innerDim, out: d.outContextDim, bias: c.outBias)
            }
        case .sanaMultiscaleLinearAttention:
            let inner = d.innerDim, m = c.multiscale
            for n in ["to_q", "to_k", "to_v"] { t.addLinear(n, in: c.queryDim, out: inner, bias: false) }
            for (i, k) in m.kernelSizes.enumerated() {
                t.add("to_qkv_multiscale.\(i).proj_in.weight", [3 * inner, 1, k, k], .uniform(fanIn: k * k))
                t.add("to_qkv_multiscale.\(i).proj_out.weight", [3 * inner, head, 1, 1], .uniform(fanIn: head))
            }
            t.addLinear("to_out", in: inner * (1 + m.kernelSizes.count), out: m.outChannels, bias: false)
            t.addNorm("norm_out", width: m.outChannels, weight: true, bias: true)
            if m.normType == .batchNorm {
                t.add("norm_out.running_mean", [m.outChannels], .zeros)
                t.add("norm_out.running_var", [m.outChannels], .ones)
                t.add("norm_out.num_batches_tracked", [], .zeros)
            }
        }
        return t
    }
}
