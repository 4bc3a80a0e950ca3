/// What a DiT or joint-attention processor does, as data (docs/design.md, docs/quirks.md).
/// Every kind of one pipeline runs the same code; the fields select the steps.
package struct DiTRecipe: Sendable {
    package enum Pipeline: Sendable {
        /// Image tokens from `to_q/k/v`, text tokens from `add_*_proj`, one joint sequence
        /// (SD3, AuraFlow, Flux, Mochi).
        case joint
        /// The AttnProcessor2_0 prelude/epilogue with K/V from the encoder states or the input
        /// (Hunyuan, Allegro, Stable Audio, Mochi VAE, PAG identity-self, CogVideoX).
        case standard
        case lumina
        case sanaLinear
        case sanaMultiscale
        /// Raises on every call, as diffusers does (FusedFluxAttnProcessor2_0_NPU).
        case failing(String)
    }
    package enum Fusion: Sendable { case never, always, moduleFlag }
    package enum Order: Sendable { case imageFirst, textFirst }
    package enum Scale: Sendable { case inverseSqrtHeadDim, module }
    package enum Mask: Sendable {
        case ignored
        /// `prepare_attention_mask` with the key length, viewed as (B, H, −1, Lk) (attention_processor.py:Attention.prepare_attention_mask).
        case prepared
        /// Used raw as an additive bias over (B·H, L, L) (xFormers).
        case raw
        /// (B, Lk) masks become (B, 1, 1, Lk); others broadcast as SDPA does (Flux).
        case flux
        case rejected(String)
        /// Non-zero entries of a (B, T) mask select the text tokens (Mochi).
        case selectText
    }
    package enum TextOut: Sendable { case addOutUnlessContextPreOnly, addOut, addOutIfPresent, sharedOut }
    package enum Rotary: Sendable {
        case none
        /// Interleaved tables (L, D) over the whole joint sequence (Flux).
        case interleavedJoint
        /// Interleaved tables over the image tokens only (CogVideoX, Hunyuan).
        case interleavedImage
        /// Per-head pair angles (S, H, D/2) on image tokens (Mochi).
        case mochi
        case allegro
        /// Rotate-half over the first `cos.shape[-1]` lanes (Stable Audio).
        case partialRotateHalf
    }

    /// The IP-Adapter branch of a joint processor with weights of its own (`processor.*`).
    package enum IPAdapter: Sendable {
        case none
        /// attention_processor.py:SD3IPAdapterJointAttnProcessor2_0: own-normed image queries attend [image keys ; AdaLN-normed IP keys]; the scaled
        /// result joins the image stream before `to_out`.
        case sd3
        /// transformer_flux.py:FluxIPAdapterAttnProcessor.__call__: per adapter, the normed un-rotated image queries attend its tokens (the classic
        /// IP-Adapter step); the scaled sum is returned as a third output, outside `to_out`.
        case flux
    }

    package var pipeline: Pipeline
    package var fusion = Fusion.never
    package var appliesQKNorm = true
    package var order = Order.imageFirst
    package var scale = Scale.inverseSqrtHeadDim
    package var mask = Mask.ignored
    package var textOut = TextOut.addOutUnlessContextPreOnly
    /// Joint: without encoder states, return the attention output without `to_out` (Flux).
    package var projectsWithoutEncoder = true
    package var encoderRequired = false
    /// PAG: 2 = `[org | ptb]`, 3 = `[uncond | cond | ptb]`; 0 = no chunking.
    package var pagChunks = 0
    /// Whether the encoder states are chunked with the batch (SD3 PAG) or used as-is (Hunyuan PAG),
    /// or ignored (identity-self PAG, Sana PAG).
    var pagChunksEncoder = false
    package var ignoresEncoder = false
    package var rotary = Rotary.none
    /// The key is rotated only for self-attention modules (Hunyuan, CogVideoX, Stable Audio); Allegro
    /// rotates neither for cross-attention.
    package var rotaryNeedsSelfAttention = false
    package var appliesSpatialNorm = true
    package var appliesGroupNorm = true
    package var appliesNormCross = true
    package var acceptsImageInput = true
    /// Key/value heads from the key width (Stable Audio's GQA).
    package var groupedKeyValues = false
    package var usesModuleCausal = false
    /// CogVideoX: text tokens are prepended to the input and share every projection.
    package var prependsEncoder = false
    /// FusedCogVideoX prepares the mask with the text length as target (attention_processor.py:FusedCogVideoXAttnProcessor2_0.__call__).
    package var maskTargetIsEncoderLength = false
    package var ipAdapter = IPAdapter.none
    /// Flux (transformer_flux.py:FluxAttnProcessor.__call__) reads the text projections whenever the module has added projections,
    /// so it fails without encoder states there; its IP-Adapter guards the join by `E` instead.
    package var addedProjectionsNeedEncoder = false

    static func recipe(for kind: ProcessorKind) -> DiTRecipe? {
        let joint = DiTRecipe(pipeline: .joint)
        let flux = DiTRecipe(pipeline: .joint, fusion: .moduleFlag, order: .textFirst, mask: .flux, textOut: .addOut,
                             projectsWithoutEncoder: false, rotary: .interleavedJoint, addedProjectionsNeedEncoder: true)
        let aura = DiTRecipe(pipeline: .joint, order: .textFirst, scale: .module, textOut: .addOut)
        let pagJoint = DiTRecipe(pipeline: .joint, appliesQKNorm: false, encoderRequired: true, pagChunks: 2,
                                 pagChunksEncoder: true)
        let hunyuan = DiTRecipe(pipeline: .standard, mask: .prepared, rotary: .interleavedImage, rotaryNeedsSelfAttention: true)
        let cog = DiTRecipe(pipeline: .standard, mask: .prepared, textOut: .sharedOut, encoderRequired: true,
                            rotary: .interleavedImage, rotaryNeedsSelfAttention: true, appliesSpatialNorm: false,
                            appliesGroupNorm: false, appliesNormCross: false, acceptsImageInput: false, prependsEncoder: true)
        let pagSelf = DiTRecipe(pipeline: .standard, appliesQKNorm: false, mask: .prepared, pagChunks: 2, ignoresEncoder: true)
        let sana = DiTRecipe(pipeline: .sanaLinear)
        let sanaPAG = DiTRecipe(pipeline: .sanaLinear, appliesQKNorm: false, pagChunks: 2, ignoresEncoder: true)
        func with(_ r: DiTRecipe, _ change: (inout DiTRecipe) -> Void) -> DiTRecipe { var r = r; change(&r); return r }
        switch kind {
        case .jointAttnProcessor2_0: return joint
        case .fusedJointAttnProcessor2_0:
            return with(joint) { $0.fusion = .always; $0.appliesQKNorm = false; $0.encoderRequired = true }
        case .xformersJointAttnProcessor: return with(joint) { $0.scale = .module; $0.mask = .raw }
        case .pagJointAttnProcessor2_0: return pagJoint
        case .pagCFGJointAttnProcessor2_0: return with(pagJoint) { $0.pagChunks = 3 }
        case .fluxAttnProcessor2_0, .fusedFluxAttnProcessor2_0, .fluxAttnProcessor2_0_NPU, .fluxSingleAttnProcessor2_0,
             .fluxAttnProcessor:
            return flux
        case .fluxIPAdapterJointAttnProcessor2_0, .fluxIPAdapterAttnProcessor:
            return with(flux) { $0.ipAdapter = .flux; $0.addedProjectionsNeedEncoder = false }
        case .sd3IPAdapterJointAttnProcessor2_0: return with(joint) { $0.ipAdapter = .sd3 }
        case .xlaFluxFlashAttnProcessor2_0:
            return with(flux) { $0.mask = .rejected("`attn_mask` is not supported for XLA attention") }
        case .fusedFluxAttnProcessor2_0_NPU:
            return DiTRecipe(pipeline: .failing("'_fused_npu' is not a valid AttentionBackendName"))
        case .auraFlowAttnProcessor2_0: return aura
        case .fusedAuraFlowAttnProcessor2_0: return with(aura) { $0.fusion = .always }
        case .mochiAttnProcessor2_0:
            return DiTRecipe(pipeline: .joint, mask: .selectText, textOut: .addOutIfPresent, encoderRequired: true, rotary: .mochi)
        case .cogVideoXAttnProcessor2_0: return cog
        case .fusedCogVideoXAttnProcessor2_0: return with(cog) { $0.fusion = .always; $0.maskTargetIsEncoderLength = true }
        case .hunyuanAttnProcessor2_0: return hunyuan
        case .fusedHunyuanAttnProcessor2_0: return with(hunyuan) { $0.fusion = .always }
        case .pagHunyuanAttnProcessor2_0: return with(hunyuan) { $0.pagChunks = 2 }
        case .pagCFGHunyuanAttnProcessor2_0: return with(hunyuan) { $0.pagChunks = 3 }
        case .allegroAttnProcessor2_0:
            return DiTRecipe(pipeline: .standard, appliesQKNorm: false, mask: .prepared, rotary: .allegro,
                             rotaryNeedsSelfAttention: true)
        case .stableAudioAttnProcessor2_0:
            return DiTRecipe(pipeline: .standard, mask: .prepared, rotary: .partialRotateHalf, rotaryNeedsSelfAttention: true,
                             appliesSpatialNorm: false, appliesGroupNorm: false, groupedKeyValues: true)
        case .mochiVaeAttnProcessor2_0:
            return DiTRecipe(pipeline: .standard, mask: .prepared, appliesSpatialNorm: false, appliesGroupNorm: false,
                             appliesNormCross: false, acceptsImageInput: false, usesModuleCausal: true)
        case .pagIdentitySelfAttnProcessor2_0: return pagSelf
        case .pagCFGIdentitySelfAttnProcessor2_0: return with(pagSelf) { $0.pagChunks = 3 }
        case .luminaAttnProcessor2_0: return DiTRecipe(pipeline: .lumina, scale: .module, encoderRequired: true)
        case .sanaLinearAttnProcessor2_0: return sana
        case .pagCFGSanaLinearAttnProcessor2_0: return with(sanaPAG) { $0.pagChunks = 3 }
        case .pagIdentitySanaLinearAttnProcessor2_0: return sanaPAG
        case .sanaMultiscaleAttnProcessor2_0: return DiTRecipe(pipeline: .sanaMultiscale)
        default: return nil
        }
    }
}
