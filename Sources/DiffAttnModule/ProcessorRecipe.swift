import DiffAttnKernels

/// Which shared steps a processor kind runs and which of diffusers' quirks it carries — data,
/// not code: every kind of one family runs the same pipeline, and the fields select its steps
/// (docs/design.md (processor families), docs/quirks.md). One type for
/// the classic and the DiT processors; the table is `recipe(for:)` (RecipeTable.swift).
package struct ProcessorRecipe: Sendable {
    package enum Family: Sendable {
        /// Family A and the AttnProcessor2_0-style DiT processors: Q from `to_q`, K/V from
        /// `to_k`/`to_v` over the encoder states or the input (AttnProcessor and its kin; Hunyuan,
        /// Allegro, Stable Audio, Mochi VAE, PAG identity-self, CogVideoX).
        case standard
        /// Family B: K/V = [added-context projections ; self projections], channels-first input.
        case addedKV
        /// Family C: Custom Diffusion's replacement projections.
        case customDiffusion
        /// Family D: standard attention plus one attention per IP-Adapter over image tokens.
        case ipAdapter
        /// The deprecated LoRA classes: constructible, never callable.
        case deprecatedLoRA
        /// Image tokens from `to_q/k/v`, text tokens from `add_*_proj`, one joint sequence
        /// (SD3, AuraFlow, Flux, Mochi).
        case joint
        case lumina
        case sanaLinear
        case sanaMultiscale
        /// Raises on every call, as diffusers does (FusedFluxAttnProcessor2_0_NPU).
        case failing(String)
    }
    package enum Fusion: Sendable { case never, always, moduleFlag }
    package enum Order: Sendable { case imageFirst, textFirst }
    package enum Mask: Sendable {
        case ignored
        /// `prepare_attention_mask` with the key length, laid out as the kernel wants
        /// (attention_processor.py:Attention.prepare_attention_mask).
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

    package var family: Family
    /// A DiT or joint-attention class (the bindings' DiT families: its constructor takes no
    /// classic arguments), whichever pipeline runs it.
    package var isDiT = false
    /// The kernel and its conventions, among them the one `Scale` every family reads.
    package var kernel: KernelChoice
    /// Applies `spatial_norm(x, temb)` when the module has one (docs/quirks.md item 5).
    package var appliesSpatialNorm = true
    /// Applies `norm_q`/`norm_k` per head.
    package var appliesQKNorm = false
    /// Projects with the fused `to_qkv` / `to_kv` layers: never, always (FusedAttnProcessor2_0
    /// and the Fused* DiT kinds), or when the module's projections are fused (Flux).
    package var fusion = Fusion.never
    /// Computes scores in slices of `slice_size` rows of the batch×heads axis.
    package var sliced = false
    package var order = Order.imageFirst
    package var mask = Mask.prepared
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
    package var appliesGroupNorm = true
    package var appliesNormCross = true
    package var acceptsImageInput = true
    /// Key/value heads from the key width (Stable Audio's GQA).
    package var groupedKeyValues = false
    package var usesModuleCausal = false
    /// CogVideoX: text tokens are prepended to the input and share every projection.
    package var prependsEncoder = false
    /// FusedCogVideoX prepares the mask with the text length as target
    /// (attention_processor.py:FusedCogVideoXAttnProcessor2_0.__call__).
    package var maskTargetIsEncoderLength = false
    package var ipAdapter = IPAdapter.none
    /// Flux (transformer_flux.py:FluxAttnProcessor.__call__) reads the text projections whenever the module has added projections,
    /// so it fails without encoder states there; its IP-Adapter guards the join by `E` instead.
    package var addedProjectionsNeedEncoder = false
}

/// The attention kernel a processor calls and the conventions that come with it (torch.nn.functional.scaled_dot_product_attention,
/// attention_processor.py:AttnProcessor.__call__, docs/quirks.md items 2, 14, 16).
package struct KernelChoice: Sendable, Equatable {
    package enum Scale: Sendable { case module, headDim }
    package enum MaskLayout: Sendable {
        /// The prepared mask broadcasts to the batch-flattened scores (B·H, L, S) (baddbmm).
        case batchFlattened
        /// As `batchFlattened`, but the kernel first expands the query axis: the prepared mask
        /// must be 3-D (xFormers' `expand(-1, L, -1)`).
        case batchFlattenedExpanded
        /// Family A's SDPA: the prepared mask is viewed as (B, H, −1, S).
        case headsView
        /// The prepared mask goes to SDPA as it is and broadcasts by trailing axes to (B, H, L, S).
        case broadcast
        /// AttnProcessorNPU: view as (B, H, −1, S), tile the query axis by L, then the boolean
        /// "discard" mask is passed where SDPA expects a keep mask (its float32 branch, attention_processor.py:AttnProcessorNPU.__call__).
        case npuDiscard
    }

    package var scale: Scale
    package var masks: MaskLayout
    package var algorithm: SDPAAlgorithmChoice
    package var fullyMaskedRowsAreNaN: Bool
    package var acceptsBooleanMasks: Bool
    /// `.int8` only for AttnProcessorInt8.
    package var precision: SDPAPrecision = .standard

    /// `get_attention_scores` · V: attn.scale, NaN rows, additive masks only.
    static let classic = KernelChoice(scale: .module, masks: .batchFlattened, algorithm: .math,
                                      fullyMaskedRowsAreNaN: true, acceptsBooleanMasks: false)
    /// torch SDPA as the 2_0 processors call it; runs the tiled memory-efficient kernel.
    package static let sdpa = KernelChoice(scale: .headDim, masks: .headsView, algorithm: .flash,
                                   fullyMaskedRowsAreNaN: false, acceptsBooleanMasks: true)
    /// `sdpa` with int8 Q·Kᵀ and P·V (SageAttention's recipe; DiffAttnKernels/SDPAInt8.swift).
    package static let sdpaInt8 = KernelChoice(scale: .headDim, masks: .headsView, algorithm: .flash,
                                               fullyMaskedRowsAreNaN: false, acceptsBooleanMasks: true, precision: .int8)
    package static let sdpaPrepared4D = KernelChoice(scale: .headDim, masks: .broadcast, algorithm: .flash,
                                             fullyMaskedRowsAreNaN: false, acceptsBooleanMasks: true)
    static let sdpaBroadcastPrepared = sdpaPrepared4D
    /// AuraFlow, Lumina and xFormers' joint processor pass attn.scale to SDPA.
    static let sdpaModuleScale = KernelChoice(scale: .module, masks: .headsView, algorithm: .flash,
                                              fullyMaskedRowsAreNaN: false, acceptsBooleanMasks: true)
    /// xFormers' memory-efficient kernel (attn.scale, additive bias only); ours is the tiled one.
    /// Fully masked rows are kernel-defined in xFormers; we give the math's NaN, as AttnProcessor.
    static let xformers = KernelChoice(scale: .module, masks: .batchFlattenedExpanded, algorithm: .flash,
                                       fullyMaskedRowsAreNaN: true, acceptsBooleanMasks: false)
    package static let xformersUnexpanded = KernelChoice(scale: .module, masks: .batchFlattened, algorithm: .flash,
                                                 fullyMaskedRowsAreNaN: true, acceptsBooleanMasks: false)
    /// IPAdapterXFormersAttnProcessor does not pass attn.scale (attention_processor.py:IPAdapterAttnProcessor.__call__): 1/√D.
    static let xformersHeadDimScale = KernelChoice(scale: .headDim, masks: .batchFlattenedExpanded, algorithm: .flash,
                                                   fullyMaskedRowsAreNaN: true, acceptsBooleanMasks: false)
    static let npu = KernelChoice(scale: .headDim, masks: .npuDiscard, algorithm: .flash,
                                  fullyMaskedRowsAreNaN: false, acceptsBooleanMasks: true)
}

/// The kernel implementation (mirrors `SDPAAlgorithm`, kept Equatable for recipes).
package enum SDPAAlgorithmChoice: Sendable { case math, flash }
