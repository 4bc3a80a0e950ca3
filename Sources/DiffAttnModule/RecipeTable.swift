/// Every implemented processor class as a `ProcessorRecipe` (docs/quirks.md,
/// docs/design.md); nil for the classes this version does not compute.
extension ProcessorRecipe {
    package static func recipe(for kind: ProcessorKind) -> ProcessorRecipe? {
        classicRecipe(for: kind) ?? ditRecipe(for: kind)
    }

    private static func classicRecipe(for kind: ProcessorKind) -> ProcessorRecipe? {
        switch kind {
        case .attnProcessor: return .init(family: .standard, kernel: .classic)
        case .attnProcessor2_0, .xlaFlashAttnProcessor2_0:
            // XLA: its Pallas branch needs a TPU; below 4096 tokens it is exactly AttnProcessor2_0
            // (attention_processor.py:XLAFlashAttnProcessor2_0.__call__).
            return .init(family: .standard, kernel: .sdpa, appliesQKNorm: true)
        case .attnProcessorInt8:   // ours: AttnProcessor2_0's steps, SDPA in int8
            return .init(family: .standard, kernel: .sdpaInt8, appliesQKNorm: true)
        case .fusedAttnProcessor2_0:
            return .init(family: .standard, kernel: .sdpa, appliesQKNorm: true, fusion: .always)
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

    /// The DiT processors all call SDPA with 1/√D unless a recipe passes attn.scale, and apply
    /// `norm_q`/`norm_k` unless it says otherwise.
    private static func dit(_ family: Family, _ change: (inout ProcessorRecipe) -> Void = { _ in }) -> ProcessorRecipe {
        var r = ProcessorRecipe(family: family, isDiT: true, kernel: .sdpa, appliesQKNorm: true)
        change(&r)
        return r
    }

    private static func ditRecipe(for kind: ProcessorKind) -> ProcessorRecipe? {
        func with(_ r: ProcessorRecipe, _ change: (inout ProcessorRecipe) -> Void) -> ProcessorRecipe { var r = r; change(&r); return r }
        let joint = dit(.joint)
        let flux = dit(.joint) {
            $0.fusion = .moduleFlag; $0.order = .textFirst; $0.mask = .flux; $0.textOut = .addOut
            $0.projectsWithoutEncoder = false; $0.rotary = .interleavedJoint; $0.addedProjectionsNeedEncoder = true
        }
        let aura = dit(.joint) { $0.order = .textFirst; $0.kernel = .sdpaModuleScale; $0.textOut = .addOut }
        let pagJoint = dit(.joint) { $0.appliesQKNorm = false; $0.encoderRequired = true; $0.pagChunks = 2; $0.pagChunksEncoder = true }
        let hunyuan = dit(.standard) { $0.rotary = .interleavedImage; $0.rotaryNeedsSelfAttention = true }
        let cog = dit(.standard) {
            $0.textOut = .sharedOut; $0.encoderRequired = true; $0.rotary = .interleavedImage; $0.rotaryNeedsSelfAttention = true
            $0.appliesSpatialNorm = false; $0.appliesGroupNorm = false; $0.appliesNormCross = false
            $0.acceptsImageInput = false; $0.prependsEncoder = true
        }
        let pagSelf = dit(.standard) { $0.appliesQKNorm = false; $0.pagChunks = 2; $0.ignoresEncoder = true }
        let sana = dit(.sanaLinear)
        let sanaPAG = dit(.sanaLinear) { $0.appliesQKNorm = false; $0.pagChunks = 2; $0.ignoresEncoder = true }
        switch kind {
        case .jointAttnProcessor2_0: return joint
        case .fusedJointAttnProcessor2_0:
            return with(joint) { $0.fusion = .always; $0.appliesQKNorm = false; $0.encoderRequired = true }
        case .xformersJointAttnProcessor: return with(joint) { $0.kernel = .sdpaModuleScale; $0.mask = .raw }
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
        case .fusedFluxAttnProcessor2_0_NPU: return dit(.failing("'_fused_npu' is not a valid AttentionBackendName"))
        case .auraFlowAttnProcessor2_0: return aura
        case .fusedAuraFlowAttnProcessor2_0: return with(aura) { $0.fusion = .always }
        case .mochiAttnProcessor2_0:
            return dit(.joint) { $0.mask = .selectText; $0.textOut = .addOutIfPresent; $0.encoderRequired = true; $0.rotary = .mochi }
        case .cogVideoXAttnProcessor2_0: return cog
        case .fusedCogVideoXAttnProcessor2_0: return with(cog) { $0.fusion = .always; $0.maskTargetIsEncoderLength = true }
        case .hunyuanAttnProcessor2_0: return hunyuan
        case .fusedHunyuanAttnProcessor2_0: return with(hunyuan) { $0.fusion = .always }
        case .pagHunyuanAttnProcessor2_0: return with(hunyuan) { $0.pagChunks = 2 }
        case .pagCFGHunyuanAttnProcessor2_0: return with(hunyuan) { $0.pagChunks = 3 }
        case .allegroAttnProcessor2_0:
            return dit(.standard) { $0.appliesQKNorm = false; $0.rotary = .allegro; $0.rotaryNeedsSelfAttention = true }
        case .stableAudioAttnProcessor2_0:
            return dit(.standard) {
                $0.rotary = .partialRotateHalf; $0.rotaryNeedsSelfAttention = true; $0.appliesSpatialNorm = false
                $0.appliesGroupNorm = false; $0.groupedKeyValues = true
            }
        case .mochiVaeAttnProcessor2_0:
            return dit(.standard) {
                $0.appliesSpatialNorm = false; $0.appliesGroupNorm = false; $0.appliesNormCross = false
                $0.acceptsImageInput = false; $0.usesModuleCausal = true
            }
        case .pagIdentitySelfAttnProcessor2_0: return pagSelf
        case .pagCFGIdentitySelfAttnProcessor2_0: return with(pagSelf) { $0.pagChunks = 3 }
        case .luminaAttnProcessor2_0: return dit(.lumina) { $0.kernel = .sdpaModuleScale; $0.encoderRequired = true }
        case .sanaLinearAttnProcessor2_0: return sana
        case .pagCFGSanaLinearAttnProcessor2_0: return with(sanaPAG) { $0.pagChunks = 3 }
        case .pagIdentitySanaLinearAttnProcessor2_0: return sanaPAG
        case .sanaMultiscaleAttnProcessor2_0: return dit(.sanaMultiscale)
        default: return nil
        }
    }
}
