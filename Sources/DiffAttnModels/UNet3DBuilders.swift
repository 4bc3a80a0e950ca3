import DiffAttnModule
import DiffAttnProcessors

/// UNet3DConditionModel (unets/unet_3d_condition.py) and I2VGenXLUNet (unets/unet_i2vgen_xl.py): `transformer_in` (8 temporal
/// heads of size `attention_head_dim`), I2VGenXL's `image_latents_temporal_encoder`, then the
/// blocks with spatial `attentions` and temporal `temp_attentions` (all temporal attention is self).
enum UNet3DBuilder {
    static func build(_ c: ModelConfig, _ root: ModuleNode, imageEncoder: Bool) throws {
        if !imageEncoder && c.has("num_attention_heads") {
            throw DiffAttnError(.unsupported, "At the moment it is not possible to define the number of attention heads via `num_attention_heads` because of a naming issue as described in https://github.com/huggingface/diffusers/issues/2011#issuecomment-1547958131. Passing `num_attention_heads` will only be supported in diffusers v0.19.")
        }
        let b = try UNet2DBuilder.common(c, down: ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
                                         up: ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
                                         cross: 1024)
        let n = b.n
        // Here attention_head_dim is the head size: heads = channels ÷ value.
        let headSize = try c.perBlock("attention_head_dim", 64, count: n)
        let inChannels = try c.int("in_channels", 4)

        func temporal(_ node: ModuleNode, dim: Int, heads: Int, dimHead: Int) throws {
            try AttentionRecipes.basicTransformerBlock(node.path("transformer_blocks.0"), dim: dim, heads: heads,
                                                       dimHead: dimHead, cross: nil, doubleSelf: true)
        }
        try temporal(root.child("transformer_in"), dim: 8 * headSize[0], heads: 8, dimHead: headSize[0])
        if imageEncoder {
            var a = AttentionConfig(queryDim: inChannels)
            a.heads = 2; a.dimHead = inChannels
            try root.path("image_latents_temporal_encoder").addAttention("attn1", AttentionSpec(config: a))
        }
        func block(_ node: ModuleNode, _ type: String, channels: Int, size: Int, layers: Int, cross: Int) throws {
            switch type {
            case "CrossAttnDownBlock3D", "CrossAttnUpBlock3D":
                let heads = try AttentionRecipes.split(channels, heads: size, "\(type) (attention_head_dim)")
                for j in 0..<layers {
                    try AttentionRecipes.basicTransformerBlock(node.path("attentions.\(j).transformer_blocks.0"), dim: channels,
                                                               heads: heads, dimHead: size, cross: cross)
                }
                for j in 0..<layers { try temporal(node.path("temp_attentions.\(j)"), dim: channels, heads: heads, dimHead: size) }
            case "DownBlock3D", "UpBlock3D": break
            default: throw DiffAttnError.value("\(c.className): unsupported block type '\(type)'")
            }
        }
        let downs = root.child("down_blocks"), ups = root.child("up_blocks")
        for i in 0..<n {
            try block(downs.child("\(i)"), b.down[i], channels: b.channels[i], size: headSize[i], layers: b.layers[i], cross: b.cross[i])
        }
        let rc = Array(b.channels.reversed()), rs = Array(headSize.reversed()), rl = Array(b.layers.reversed())
        let rx = Array(b.cross.reversed())
        for i in 0..<n {
            try block(ups.child("\(i)"), b.up[i], channels: rc[i], size: rs[i], layers: rl[i] + 1, cross: rx[i])
        }
        try block(root.child("mid_block"), "CrossAttnDownBlock3D", channels: b.channels[n - 1], size: headSize[n - 1],
                  layers: 1, cross: b.cross[n - 1])
    }
}

/// AutoencoderKL (autoencoders/autoencoder_kl.py): encoder down blocks, encoder mid, decoder up blocks, decoder
/// mid; every attention is one head as wide as its block, with group norm and a residual.
enum AutoencoderKLBuilder {
    static func build(_ c: ModelConfig, _ root: ModuleNode) throws {
        let channels = try c.ints("block_out_channels", [64])
        let down = try c.strings("down_block_types", ["DownEncoderBlock2D"])
        let up = try c.strings("up_block_types", ["UpDecoderBlock2D"])
        guard !channels.isEmpty, down.count == channels.count, up.count == channels.count else {
            throw DiffAttnError.value("config of AutoencoderKL: block_out_channels (\(channels.count)), down_block_types (\(down.count)) and up_block_types (\(up.count)) must have the same, non-zero length")
        }
        let layers = try c.int("layers_per_block", 1)
        let groups = try UNet2DBuilder.groupNormGroups(c, channels: channels)
        let midAttention = try c.bool("mid_block_add_attention", true)
        func attention(_ width: Int) throws -> AttentionSpec {
            try AttentionRecipes.spatialSelfAttention(channels: width, headDim: width, groups: groups, eps: 1e-6)
        }
        func blocks(_ list: ModuleNode, _ types: [String], _ widths: [Int], layers: Int, prefix: String) throws {
            for (i, t) in types.enumerated() {
                let node = list.child("\(i)")
                switch t {
                case "Attn\(prefix)Block2D":
                    for j in 0..<layers { try node.addAttention("attentions.\(j)", attention(widths[i])) }
                case "\(prefix)Block2D": break
                default: throw DiffAttnError.value("AutoencoderKL: unsupported block type '\(t)'")
                }
            }
        }
        let encoder = root.child("encoder")
        try blocks(encoder.child("down_blocks"), down, channels, layers: layers, prefix: "DownEncoder")
        if midAttention { try encoder.path("mid_block").addAttention("attentions.0", attention(channels.last!)) }
        let decoder = root.child("decoder")
        try blocks(decoder.child("up_blocks"), up, Array(channels.reversed()), layers: layers + 1, prefix: "UpDecoder")
        if midAttention { try decoder.path("mid_block").addAttention("attentions.0", attention(channels.last!)) }
    }
}
