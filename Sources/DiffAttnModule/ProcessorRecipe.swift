import DiffAttnKernels

/// Which shared steps a processor kind runs and which of diffusers' quirks it carries — data,
/// not code: every kind of one family runs the same pipeline (docs/design.md (processor families), docs/quirks.md).
package struct ProcessorRecipe: Sendable {
    package enum Family: Sendable {
        /// Family A: Q from `to_q`, K/V from `to_k`/`to_v` (AttnProcessor and its kin).
        case standard
        /// Family B: K/V = [added-context projections ; self projections], channels-first input.
        case addedKV
        /// Family C: Custom Diffusion's replacement projections.
        case customDiffusion
        /// Family D: standard attention plus one attention per IP-Adapter over image tokens.
        case ipAdapter
        /// The deprecated LoRA classes: constructible, never callable.
        case deprecatedLoRA
        /// DiT and joint-attention processors (`DiT/`), described by a `DiTRecipe`.
        case dit(DiTRecipe)
    }

    package var family: Family
    package var kernel: KernelChoice
    /// Applies `spatial_norm(x, temb)` when the module has one (docs/quirks.md item 5).
    package var appliesSpatialNorm = true
    /// Applies `norm_q`/`norm_k` per head (only the SDPA members of family A).
    package var appliesQKNorm = false
    /// Projects with the fused `to_qkv` / `to_kv` layers (FusedAttnProcessor2_0).
    package var fusedProjections = false
    /// Computes scores in slices of `slice_size` rows of the batch×heads axis.
    package var sliced = false

    package static func recipe(for kind: ProcessorKind) -> ProcessorRecipe? {
        classicRecipe(for: kind) ?? DiTRecipe.recipe(for: kind).map { .init(family: .dit($0), kernel: .sdpa) }
    }

    private static func classicRecipe(for kind: ProcessorKind) -> ProcessorRecipe? {
        switch kind {
        case .attnProcessor: return .init(family: .standard, kernel: .classic)
        case .attnProcessor2_0, .xlaFlashAttnProcessor2_0:
            // XLA: its Pallas branch needs a TPU; below 4096 tokens it is exactly AttnProcessor2_0 (attention_processor.py:XLAFlashAttnProcessor2_0.__call__).
            return .init(family: .standard, kernel: .sdpa, appliesQKNorm: true)
        case .attnProcessorInt8:   // ours: AttnProcessor2_0's steps, SDPA in int8
            return .init(family: .standard, kernel: .sdpaInt8, appliesQKNorm: true)
        case .fusedAttnProcessor2_0:
            return .init(family: .standard, kernel: .sdpa, appliesQKNorm: true, fusedProjections: true)
        case .slicedAttnProcessor:
            return .init(family: .standard, kernel: .classic, appliesSpatialNorm: false, sliced: true)
        case .xformersAttnProcessor: return .init(family: .standard, kernel: .xformers)
        case .attnProcessorNPU: return .init(family: .standard, kernel: .npu)
        case .attnAddedKVProcessor: return .init(family: .addedKV, kernel: .classic, appliesSpatialNorm: false)
        case .attnAddedKVProcessor2_0:
            return .init(family: .addedKV, kernel: .sdpaPrepared4D, appliesSpatialNorm: false)
        case .slicedAttnAddedKVProcessor: return .init(family: .addedKV, kernel: .classic, sliced: true)
        case .xformersAttnAddedKVProcessor:
            return .init(family: .addedKV, kernel: .xformersUnexpanded, appliesSpatialNorm: false)
        case .customDiffusionAttnProcessor: return .init(family: .customDiffusion, kernel: .classic)
        case .customDiffusionAttnProcessor2_0: return .init(family: .customDiffusion, kernel: .sdpaBroadcastPrepared)
        case .customDiffusionXFormersAttnProcessor: return .init(family: .customDiffusion, kernel: .xformersUnexpanded)
        case .ipAdapterAttnProcessor: return .init(family: .ipAdapter, kernel: .classic)
        case .ipAdapterAttnProcessor2_0: return .init(family: .ipAdapter, kernel: .sdpa)
        case .ipAdapterXFormersAttnProcessor: return .init(family: .ipAdapter, kernel: .xformersHeadDimScale)
        case .loraAttnProcessor, .loraAttnProcessor2_0, .loraXFormersAttnProcessor, .loraAttnAddedKVProcessor:
            return .init(family: .deprecatedLoRA, kernel: .classic)
        default: return nil
        }
    }
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
