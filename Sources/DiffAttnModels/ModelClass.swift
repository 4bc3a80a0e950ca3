import DiffAttnModule
import DiffAttnProcessors

/// The eleven diffusers model classes, with what each offers at the model level
/// (models/modeling_utils.py:ModelMixin and each class's file; docs/deviations.md) — data, read by the switches in `ModelSwitches.swift`.
public enum ModelClass: Int32, CaseIterable, Sendable {
    case unet2DCondition = 1, unet3DCondition = 2, unetMotion = 3, i2vGenXL = 4, autoencoderKL = 5
    case sd3Transformer2D = 6, fluxTransformer2D = 7, pixArtTransformer2D = 8, hunyuanDiT2D = 9
    case cogVideoXTransformer3D = 10, auraFlowTransformer2D = 11
    /// A host's own module tree (no attention): `{"modules": ["linear_1", "blocks.0.proj_in", ...]}`,
    /// so that any host-run model can take hooks (issue 16; include/diffattn.h `da_model_call_module`).
    case moduleTree = 12

    public var name: String {
        switch self {
        case .unet2DCondition: return "UNet2DConditionModel"
        case .unet3DCondition: return "UNet3DConditionModel"
        case .unetMotion: return "UNetMotionModel"
        case .i2vGenXL: return "I2VGenXLUNet"
        case .autoencoderKL: return "AutoencoderKL"
        case .sd3Transformer2D: return "SD3Transformer2DModel"
        case .fluxTransformer2D: return "FluxTransformer2DModel"
        case .pixArtTransformer2D: return "PixArtTransformer2DModel"
        case .hunyuanDiT2D: return "HunyuanDiT2DModel"
        case .cogVideoXTransformer3D: return "CogVideoXTransformer3DModel"
        case .auraFlowTransformer2D: return "AuraFlowTransformer2DModel"
        case .moduleTree: return "ModuleTree"
        }
    }

    public init?(name: String) {
        guard let c = ModelClass.allCases.first(where: { $0.name == name }) else { return nil }
        self = c
    }

    /// How `set_default_attn_processor` behaves (unets/unet_2d_condition.py:UNet2DConditionModel.set_default_attn_processor).
    public enum DefaultRule: Sendable, Equatable {
        /// All added-KV → AttnAddedKVProcessor; all "cross" → AttnProcessor; else refuse.
        case processorSets
        /// Always this kind, no check.
        case always(ProcessorKind)
        /// The method does not exist (AttributeError).
        case absent
    }

    public var defaultRule: DefaultRule {
        switch self {
        case .unet2DCondition, .unet3DCondition, .unetMotion, .i2vGenXL, .autoencoderKL: return .processorSets
        case .hunyuanDiT2D: return .always(.hunyuanAttnProcessor2_0)
        case .pixArtTransformer2D: return .always(.attnProcessor)
        case .sd3Transformer2D, .fluxTransformer2D, .cogVideoXTransformer3D, .auraFlowTransformer2D, .moduleTree: return .absent
        }
    }

    /// `set_attention_slice` exists (UNet2D defaults its argument to "auto", UNet3D requires it).
    public var hasAttentionSlice: Bool { self == .unet2DCondition || self == .unet3DCondition }

    /// The processor the legacy model-level fuse installs; nil = the generic form (models/attention.py:AttentionMixin.fuse_qkv_projections, Flux).
    public var fusedProcessor: ProcessorKind? {
        switch self {
        case .hunyuanDiT2D: return .fusedHunyuanAttnProcessor2_0
        case .sd3Transformer2D: return .fusedJointAttnProcessor2_0
        case .cogVideoXTransformer3D: return .fusedCogVideoXAttnProcessor2_0
        case .auraFlowTransformer2D: return .fusedAuraFlowAttnProcessor2_0
        case .fluxTransformer2D: return nil
        default: return .fusedAttnProcessor2_0
        }
    }

    /// `_supports_group_offloading` (only HunyuanDiT refuses; models/modeling_utils.py:ModelMixin.enable_group_offload).
    public var supportsGroupOffload: Bool { self != .hunyuanDiT2D }

    /// `CacheMixin` models (models/modeling_utils.py:ModelMixin).
    public var cacheCapable: Bool { self == .fluxTransformer2D || self == .cogVideoXTransformer3D }

    /// Builds the module tree from a config (the family builders); with a budget, as a dry run
    /// whose modules count their weights (DiffAttnModule/WeightBudget.swift).
    func build(_ config: ModelConfig, budget: WeightBudget?) throws -> ModuleNode {
        let root = ModuleNode(name: "", moduleClass: name, budget: budget)
        switch self {
        case .unet2DCondition: try UNet2DBuilder.build(config, root)
        case .unet3DCondition: try UNet3DBuilder.build(config, root, imageEncoder: false)
        case .i2vGenXL: try UNet3DBuilder.build(config, root, imageEncoder: true)
        case .unetMotion: try UNetMotionBuilder.build(config, root)
        case .autoencoderKL: try AutoencoderKLBuilder.build(config, root)
        case .sd3Transformer2D: try TransformerBuilders.sd3(config, root)
        case .fluxTransformer2D: try TransformerBuilders.flux(config, root)
        case .pixArtTransformer2D: try TransformerBuilders.pixArt(config, root)
        case .hunyuanDiT2D: try TransformerBuilders.hunyuan(config, root)
        case .cogVideoXTransformer3D: try TransformerBuilders.cogVideoX(config, root)
        case .auraFlowTransformer2D: try TransformerBuilders.auraFlow(config, root)
        case .moduleTree: try ModuleTreeBuilder.build(config, root)
        }
        return root
    }
}

/// `ModuleTree`'s builder: one container node per listed dotted path (parents created as needed).
enum ModuleTreeBuilder {
    static func build(_ config: ModelConfig, _ root: ModuleNode) throws {
        guard case .array(let items)? = config.json["modules"] else {
            throw DiffAttnError.type("config field 'modules' of ModuleTree must be a list of dotted module paths")
        }
        for (i, item) in items.enumerated() {
            guard case .string(let path) = item, !path.isEmpty,
                  !path.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                throw DiffAttnError.value("ModuleTree: modules[\(i)] must be a non-empty dotted path, got \(item.serialized)")
            }
            root.path(path)
        }
    }
}
