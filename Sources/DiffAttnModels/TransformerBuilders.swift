import DiffAttnModule
import DiffAttnProcessors

/// The DiT-style models (transformers/hunyuan_transformer_2d.py … transformers/pixart_transformer_2d.py): a list (or two) of blocks, each with its attention
/// configured as the model file does, with the processor the block passes.
enum TransformerBuilders {
    private static func attention(_ dim: Int, heads: Int, dimHead: Int, moduleClass: ModuleClass = .attention,
                                  _ edit: (inout AttentionConfig) -> Void, processor: ProcessorKind) -> AttentionSpec {
        var c = AttentionConfig(queryDim: dim)
        c.moduleClass = moduleClass
        c.heads = heads; c.dimHead = dimHead
        edit(&c)
        return AttentionSpec(config: c, processor: processor)
    }

    private static func inner(_ c: ModelConfig, heads: Int, dim: Int) throws -> (Int, Int, Int) {
        let h = try c.int("num_attention_heads", heads), d = try c.int("attention_head_dim", dim)
        guard h * d <= 1 << 24 else { throw DiffAttnError.value("\(c.className): num_attention_heads × attention_head_dim is too large") }
        return (h, d, h * d)
    }

    /// `blocks.{i}.attn1` (self) / `.attn2` (cross): layer-norm Q/K, biased, eps 1e-6.
    static func hunyuan(_ c: ModelConfig, _ root: ModuleNode) throws {
        let (h, d, dim) = try inner(c, heads: 16, dim: 88)
        let layers = try c.int("num_layers", 28, min: 0)
        let cross = try c.int("cross_attention_dim", 1024)
        let blocks = root.child("blocks")
        for i in 0..<layers {
            for (name, kv) in [("attn1", Int?.none), ("attn2", Int?.some(cross))] {
                try blocks.path("\(i)").addAttention(name, attention(dim, heads: h, dimHead: d, {
                    $0.crossAttentionDim = kv; $0.qkNorm = .layerNorm; $0.eps = 1e-6; $0.bias = true
                }, processor: .hunyuanAttnProcessor2_0))
            }
        }
    }

    /// `transformer_blocks.{i}.attn` (joint: added Q/K/V, the last block context-pre-only) and
    /// `.attn2` for dual-attention layers.
    static func sd3(_ c: ModelConfig, _ root: ModuleNode) throws {
        let (h, d, dim) = try inner(c, heads: 18, dim: 64)
        let layers = try c.int("num_layers", 18, min: 0)
        let dual = Set(try c.ints("dual_attention_layers", [], min: 0))
        let qk = try qkNorm(c, "qk_norm", try c.string("qk_norm", nil))
        let blocks = root.child("transformer_blocks")
        for i in 0..<layers {
            try blocks.path("\(i)").addAttention("attn", attention(dim, heads: h, dimHead: d, {
                $0.addedKVProjDim = dim; $0.outDim = dim; $0.contextPreOnly = i == layers - 1; $0.bias = true
                $0.qkNorm = qk; $0.eps = 1e-6
            }, processor: .jointAttnProcessor2_0))
            if dual.contains(i) {
                try blocks.path("\(i)").addAttention("attn2", attention(dim, heads: h, dimHead: d, {
                    $0.outDim = dim; $0.bias = true; $0.qkNorm = qk; $0.eps = 1e-6
                }, processor: .jointAttnProcessor2_0))
            }
        }
    }

    /// `FluxAttention` modules (transformer_flux.py:FluxAttention): dual stream with added projections
    /// (`FluxTransformerBlock`), single stream `pre_only` (`FluxSingleTransformerBlock`); RMS Q/K
    /// norms come with the class.
    static func flux(_ c: ModelConfig, _ root: ModuleNode) throws {
        let (h, d, dim) = try inner(c, heads: 24, dim: 128)
        let layers = try c.int("num_layers", 19, min: 0), single = try c.int("num_single_layers", 38, min: 0)
        for i in 0..<layers {
            try root.path("transformer_blocks.\(i)").addAttention("attn", attention(dim, heads: h, dimHead: d, moduleClass: .fluxAttention, {
                $0.addedKVProjDim = dim; $0.outDim = dim; $0.contextPreOnly = false; $0.bias = true; $0.eps = 1e-6
            }, processor: .fluxAttnProcessor))
        }
        for i in 0..<single {
            try root.path("single_transformer_blocks.\(i)").addAttention("attn", attention(dim, heads: h, dimHead: d, moduleClass: .fluxAttention, {
                $0.outDim = dim; $0.bias = true; $0.eps = 1e-6; $0.preOnly = true
            }, processor: .fluxAttnProcessor))
        }
    }

    /// `transformer_blocks.{i}.attn1`: layer-norm Q/K (when `qk_norm`, default true), biased.
    static func cogVideoX(_ c: ModelConfig, _ root: ModuleNode) throws {
        let (h, d, dim) = try inner(c, heads: 30, dim: 64)
        let layers = try c.int("num_layers", 30, min: 0)
        let bias = try c.bool("attention_bias", true), outBias = try c.bool("attention_out_bias", true)
        let qk = try c.bool("qk_norm", true)
        for i in 0..<layers {
            try root.path("transformer_blocks.\(i)").addAttention("attn1", attention(dim, heads: h, dimHead: d, {
                $0.qkNorm = qk ? .layerNorm : .none; $0.eps = 1e-6; $0.bias = bias; $0.outBias = outBias
            }, processor: .cogVideoXAttnProcessor2_0))
        }
    }

    /// Joint blocks (added Q/K/V without bias, fp32 layer-norm Q/K, no biases) and single blocks.
    static func auraFlow(_ c: ModelConfig, _ root: ModuleNode) throws {
        let (h, d, dim) = try inner(c, heads: 12, dim: 256)
        let joint = try c.int("num_mmdit_layers", 4, min: 0), single = try c.int("num_single_dit_layers", 32, min: 0)
        for i in 0..<joint {
            try root.path("joint_transformer_blocks.\(i)").addAttention("attn", attention(dim, heads: h, dimHead: d, {
                $0.addedKVProjDim = dim; $0.addedProjBias = false; $0.qkNorm = .fp32LayerNorm; $0.outDim = dim
                $0.bias = false; $0.outBias = false; $0.contextPreOnly = false
            }, processor: .auraFlowAttnProcessor2_0))
        }
        for i in 0..<single {
            try root.path("single_transformer_blocks.\(i)").addAttention("attn", attention(dim, heads: h, dimHead: d, {
                $0.qkNorm = .fp32LayerNorm; $0.outDim = dim; $0.bias = false; $0.outBias = false
            }, processor: .auraFlowAttnProcessor2_0))
        }
    }

    /// `transformer_blocks.{i}.attn1` / `.attn2` (+ `fuser.attn` when gated), `BasicTransformerBlock`.
    static func pixArt(_ c: ModelConfig, _ root: ModuleNode) throws {
        let (h, d, dim) = try inner(c, heads: 16, dim: 72)
        let normType = try c.string("norm_type", "ada_norm_single")
        guard normType == "ada_norm_single" else {
            throw DiffAttnError(.unsupported, "Forward pass is not implemented when `patch_size` is not None and `norm_type` is '\(normType ?? "None")'.")
        }
        guard try c.optionalInt("num_embeds_ada_norm", 1000) != nil else {
            throw DiffAttnError.value("When using a `patch_size` and this `norm_type` (ada_norm_single), `num_embeds_ada_norm` cannot be None.")
        }
        let layers = try c.int("num_layers", 28, min: 0)
        let cross = try c.optionalInt("cross_attention_dim", 1152)
        let bias = try c.bool("attention_bias", true), upcast = try c.bool("upcast_attention", false)
        let gated = try c.string("attention_type", "default") == "gated"
        for i in 0..<layers {
            try AttentionRecipes.basicTransformerBlock(root.path("transformer_blocks.\(i)"), dim: dim, heads: h, dimHead: d,
                                                       cross: cross, bias: bias, upcast: upcast, gated: gated)
        }
    }

    private static func qkNorm(_ c: ModelConfig, _ key: String, _ value: String?) throws -> QKNorm {
        switch value {
        case nil: return .none
        case "layer_norm": return .layerNorm
        case "fp32_layer_norm": return .fp32LayerNorm
        case "rms_norm": return .rmsNorm
        case let v?: throw DiffAttnError.value("config field '\(key)' of \(c.className): unknown qk_norm '\(v)'")
        }
    }
}
