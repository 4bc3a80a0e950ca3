import DiffAttnModule
import DiffAttnProcessors

/// UNet2DConditionModel (unets/unet_2d_condition.py) and UNetMotionModel (unets/unet_motion_model.py): the attention-bearing parts of
/// their blocks, in diffusers' registration order (`down_blocks`, `up_blocks`, then `mid_block`:
/// both lists are registered, empty, before the mid block is built).
enum UNet2DBuilder {
    static let crossDown: Set<String> = ["CrossAttnDownBlock2D"]
    static let crossUp: Set<String> = ["CrossAttnUpBlock2D"]
    static let plain: Set<String> = ["DownBlock2D", "UpBlock2D", "ResnetDownsampleBlock2D", "ResnetUpsampleBlock2D"]

    /// Shared by UNet2D and UNetMotion: the per-block lists diffusers derives from the config.
    struct Common {
        var down: [String], up: [String], channels: [Int], layers: [Int], cross: [Int]
        var transformerLayers: [Int], reverseTransformerLayers: [Int]
        var n: Int { down.count }
    }

    static func common(_ c: ModelConfig, down defDown: [String], up defUp: [String], cross defCross: Int) throws -> Common {
        let down = try c.strings("down_block_types", defDown)
        let up = try c.strings("up_block_types", defUp)
        let channels = try c.ints("block_out_channels", [320, 640, 1280, 1280])
        guard down.count == up.count else {
            throw DiffAttnError.value("Must provide the same number of `down_block_types` as `up_block_types`. `down_block_types`: \(down). `up_block_types`: \(up).")
        }
        guard channels.count == down.count else {
            throw DiffAttnError.value("Must provide the same number of `block_out_channels` as `down_block_types`. `block_out_channels`: \(channels). `down_block_types`: \(down).")
        }
        guard !down.isEmpty else { throw DiffAttnError.value("config field 'down_block_types' of \(c.className) is empty") }
        _ = try groupNormGroups(c, channels: channels)
        let n = down.count
        let t = try c.perBlock("transformer_layers_per_block", 1, count: n)
        let rt = c.has("reverse_transformer_layers_per_block")
            ? try c.perBlock("reverse_transformer_layers_per_block", nil, count: n) : Array(t.reversed())
        return Common(down: down, up: up, channels: channels, layers: try c.perBlock("layers_per_block", 2, count: n),
                      cross: try c.perBlock("cross_attention_dim", defCross, count: n),
                      transformerLayers: t, reverseTransformerLayers: rt)
    }

    /// `norm_num_groups` (default 32), checked against every block width: each block's resnets are
    /// GroupNorm(norm_num_groups, width), whose constructor refuses widths the groups do not divide
    /// (torch.nn.GroupNorm.__init__, ValueError), although this library builds no resnets.
    static func groupNormGroups(_ c: ModelConfig, channels: [Int]) throws -> Int {
        let groups = try c.int("norm_num_groups", 32)
        if let width = channels.first(where: { $0 % groups != 0 }) {
            throw DiffAttnError.value("num_channels (\(width)) must be divisible by num_groups (\(groups)): block_out_channels and norm_num_groups of \(c.className)")
        }
        return groups
    }

    /// `Transformer2DModel` (or `DualTransformer2DModel`) at `node`: `transformer_blocks.k`.
    static func transformer2D(_ node: ModuleNode, channels: Int, heads: Int, layers: Int, cross: Int,
                              onlyCross: Bool, dual: Bool, upcast: Bool, gated: Bool) throws {
        let dimHead = try AttentionRecipes.split(channels, heads: heads, "Transformer2DModel")
        for (prefix, count) in dual ? [("transformers.0.", 1), ("transformers.1.", 1)] : [("", layers)] {
            for k in 0..<count {
                try AttentionRecipes.basicTransformerBlock(node.path("\(prefix)transformer_blocks.\(k)"), dim: channels,
                                                           heads: heads, dimHead: dimHead, cross: cross,
                                                           onlyCross: onlyCross, upcast: upcast, gated: gated)
            }
        }
    }

    static func build(_ c: ModelConfig, _ root: ModuleNode) throws {
        if c.has("num_attention_heads") {
            throw DiffAttnError.value("At the moment it is not possible to define the number of attention heads via `num_attention_heads` because of a naming issue as described in https://github.com/huggingface/diffusers/issues/2011#issuecomment-1547958131. Passing `num_attention_heads` will only be supported in diffusers v0.19.")
        }
        let b = try common(c, down: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                           up: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], cross: 1280)
        let n = b.n
        let headDims = try c.perBlock("attention_head_dim", 8, count: n)  // = heads for transformer blocks
        let onlyCross = try c.perBlockBool("only_cross_attention", false, count: n)
        let midOnlyCross = try c.bool("mid_block_only_cross_attention", (try? c.bool("only_cross_attention", false)) ?? false)
        let dual = try c.bool("dual_cross_attention", false)
        let upcast = try c.bool("upcast_attention", false)
        let gated = try (c.string("attention_type", "default") ?? "default").hasPrefix("gated")
        let groups = try groupNormGroups(c, channels: b.channels)
        let eps = 1e-5
        let downs = root.child("down_blocks"), ups = root.child("up_blocks")

        func block(_ node: ModuleNode, _ type: String, i: Int, channels: Int, heads: Int, layers: Int, tLayers: Int,
                   cross: Int, onlyCross: Bool) throws {
            switch type {
            case "CrossAttnDownBlock2D", "CrossAttnUpBlock2D":
                for j in 0..<layers {
                    try transformer2D(node.path("attentions.\(j)"), channels: channels, heads: heads, layers: tLayers,
                                      cross: cross, onlyCross: onlyCross, dual: dual, upcast: upcast, gated: gated)
                }
            case "AttnDownBlock2D", "AttnUpBlock2D":
                for j in 0..<layers {
                    try node.addAttention("attentions.\(j)", AttentionRecipes.spatialSelfAttention(
                        channels: channels, headDim: headDims[i], groups: groups, eps: eps))
                }
            case "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnUpBlock2D":
                for j in 0..<layers { try node.addAttention("attentions.\(j)", simpleCross(channels, headDims[i], cross, groups, onlyCross)) }
            default:
                guard plain.contains(type) else {
                    throw DiffAttnError.value("config field '\(type.hasSuffix("UpBlock2D") ? "up" : "down")_block_types' of \(c.className): unsupported block type '\(type)'")
                }
            }
        }
        for i in 0..<n {
            try block(downs.child("\(i)"), b.down[i], i: i, channels: b.channels[i], heads: headDims[i], layers: b.layers[i],
                      tLayers: b.transformerLayers[i], cross: b.cross[i], onlyCross: onlyCross[i])
        }
        let rChannels = Array(b.channels.reversed()), rHeads = Array(headDims.reversed())
        let rLayers = Array(b.layers.reversed()), rCross = Array(b.cross.reversed()), rOnly = Array(onlyCross.reversed())
        for i in 0..<n {
            // diffusers passes the un-reversed attention_head_dim[i] here (it only matters for Attn*/SimpleCross blocks).
            try block(ups.child("\(i)"), b.up[i], i: i, channels: rChannels[i], heads: rHeads[i], layers: rLayers[i] + 1,
                      tLayers: b.reverseTransformerLayers[i], cross: rCross[i], onlyCross: rOnly[i])
        }
        switch try c.string("mid_block_type", "UNetMidBlock2DCrossAttn") {
        case "UNetMidBlock2DCrossAttn":
            try transformer2D(root.path("mid_block.attentions.0"), channels: b.channels[n - 1], heads: headDims[n - 1],
                              layers: b.transformerLayers[n - 1], cross: b.cross[n - 1], onlyCross: false, dual: dual,
                              upcast: upcast, gated: gated)
        case "UNetMidBlock2DSimpleCrossAttn":
            try root.path("mid_block").addAttention("attentions.0", simpleCross(b.channels[n - 1], headDims[n - 1],
                                                                                b.cross[n - 1], groups, midOnlyCross))
        case "UNetMidBlock2D", nil: break  // built without attention by this UNet (unets/unet_2d_condition.py)
        case let other?: throw DiffAttnError.value("config field 'mid_block_type' of \(c.className): unsupported '\(other)'")
        }
    }

    /// `SimpleCrossAttn*Block2D`: self/cross with added K/V from the encoder states.
    static func simpleCross(_ channels: Int, _ headDim: Int, _ cross: Int, _ groups: Int, _ onlyCross: Bool) throws -> AttentionSpec {
        let heads = try AttentionRecipes.split(channels, heads: headDim, "SimpleCrossAttn block (attention_head_dim)")
        var a = AttentionConfig(queryDim: channels)
        a.crossAttentionDim = channels; a.heads = heads; a.dimHead = headDim
        a.addedKVProjDim = cross; a.normNumGroups = groups; a.bias = true; a.upcastSoftmax = true
        a.onlyCrossAttention = onlyCross
        return AttentionSpec(config: a, processor: .attnAddedKVProcessor2_0)
    }
}

enum UNetMotionBuilder {
    static func build(_ c: ModelConfig, _ root: ModuleNode) throws {
        let b = try UNet2DBuilder.common(c, down: ["CrossAttnDownBlockMotion", "CrossAttnDownBlockMotion", "CrossAttnDownBlockMotion", "DownBlockMotion"],
                                         up: ["UpBlockMotion", "CrossAttnUpBlockMotion", "CrossAttnUpBlockMotion", "CrossAttnUpBlockMotion"], cross: 1280)
        let n = b.n
        let heads = try c.perBlock("num_attention_heads", 8, count: n)
        let motion = try c.perBlock("motion_num_attention_heads", 8, count: n)
        let rMotion = c.has("reverse_motion_num_attention_heads")
            ? try c.perBlock("reverse_motion_num_attention_heads", nil, count: n) : Array(motion.reversed())
        let temporal = try c.perBlock("temporal_transformer_layers_per_block", 1, count: n)
        let rTemporal = c.has("reverse_temporal_transformer_layers_per_block")
            ? try c.perBlock("reverse_temporal_transformer_layers_per_block", nil, count: n) : Array(temporal.reversed())
        let midLayers = try c.int("mid_block_layers", 1)
        let midT = try c.int("transformer_layers_per_mid_block", b.transformerLayers[n - 1])
        let midTemporal = try c.int("temporal_transformer_layers_per_mid_block", 1)
        let useMotionMid = try c.bool("use_motion_mid_block", true)
        let dual = try c.bool("dual_cross_attention", false)

        /// `AnimateDiffTransformer3D`: self-attention twice per layer (double_self_attention).
        func motionModule(_ node: ModuleNode, channels: Int, heads: Int, layers: Int) throws {
            let dimHead = try AttentionRecipes.split(channels, heads: heads, "motion module")
            for k in 0..<layers {
                try AttentionRecipes.basicTransformerBlock(node.path("transformer_blocks.\(k)"), dim: channels, heads: heads,
                                                           dimHead: dimHead, cross: nil, doubleSelf: true)
            }
        }
        func block(_ node: ModuleNode, _ type: String, channels: Int, heads: Int, motionHeads: Int, layers: Int,
                   tLayers: Int, temporalLayers: Int, cross: Int) throws {
            guard ["CrossAttnDownBlockMotion", "DownBlockMotion", "CrossAttnUpBlockMotion", "UpBlockMotion"].contains(type) else {
                throw DiffAttnError.value("\(c.className): unsupported block type '\(type)'")
            }
            if type.hasPrefix("CrossAttn") {
                for j in 0..<layers {
                    try UNet2DBuilder.transformer2D(node.path("attentions.\(j)"), channels: channels, heads: heads, layers: tLayers,
                                                    cross: cross, onlyCross: false, dual: dual, upcast: false, gated: false)
                }
            }
            for j in 0..<layers { try motionModule(node.path("motion_modules.\(j)"), channels: channels, heads: motionHeads, layers: temporalLayers) }
        }
        let downs = root.child("down_blocks"), ups = root.child("up_blocks")
        for i in 0..<n {
            try block(downs.child("\(i)"), b.down[i], channels: b.channels[i], heads: heads[i], motionHeads: motion[i],
                      layers: b.layers[i], tLayers: b.transformerLayers[i], temporalLayers: temporal[i], cross: b.cross[i])
        }
        let rc = Array(b.channels.reversed()), rh = Array(heads.reversed()), rl = Array(b.layers.reversed()), rx = Array(b.cross.reversed())
        for i in 0..<n {
            try block(ups.child("\(i)"), b.up[i], channels: rc[i], heads: rh[i], motionHeads: rMotion[i], layers: rl[i] + 1,
                      tLayers: b.reverseTransformerLayers[i], temporalLayers: rTemporal[i], cross: rx[i])
        }
        let mid = root.child("mid_block")
        for j in 0..<midLayers {
            try UNet2DBuilder.transformer2D(mid.path("attentions.\(j)"), channels: b.channels[n - 1], heads: heads[n - 1],
                                            layers: midT, cross: b.cross[n - 1], onlyCross: false, dual: dual, upcast: false, gated: false)
        }
        if useMotionMid {
            for j in 0..<midLayers {
                try motionModule(mid.path("motion_modules.\(j)"), channels: b.channels[n - 1], heads: motion[n - 1], layers: midTemporal)
            }
        }
    }
}
