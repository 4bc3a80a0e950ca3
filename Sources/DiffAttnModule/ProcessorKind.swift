/// One case per diffusers processor class; raw values are the C API's DA_PROCESSOR_* values
/// (stable forever). `name` is diffusers' class name.
public enum ProcessorKind: Int32, CaseIterable, Sendable {
    case attnProcessor = 1
    case attnProcessor2_0 = 2
    case fusedAttnProcessor2_0 = 3
    case slicedAttnProcessor = 4
    case xformersAttnProcessor = 5
    case attnProcessorNPU = 6
    case xlaFlashAttnProcessor2_0 = 7
    case attnAddedKVProcessor = 10
    case attnAddedKVProcessor2_0 = 11
    case slicedAttnAddedKVProcessor = 12
    case xformersAttnAddedKVProcessor = 13
    case customDiffusionAttnProcessor = 20
    case customDiffusionAttnProcessor2_0 = 21
    case customDiffusionXFormersAttnProcessor = 22
    case ipAdapterAttnProcessor = 30
    case ipAdapterAttnProcessor2_0 = 31
    case ipAdapterXFormersAttnProcessor = 32
    case loraAttnProcessor = 40
    case loraAttnProcessor2_0 = 41
    case loraXFormersAttnProcessor = 42
    case loraAttnAddedKVProcessor = 43
    case jointAttnProcessor2_0 = 100
    case fusedJointAttnProcessor2_0 = 101
    case xformersJointAttnProcessor = 102
    case pagJointAttnProcessor2_0 = 103
    case pagCFGJointAttnProcessor2_0 = 104
    case sd3IPAdapterJointAttnProcessor2_0 = 105
    case fluxAttnProcessor2_0 = 110
    case fusedFluxAttnProcessor2_0 = 111
    case fluxAttnProcessor2_0_NPU = 112
    case fusedFluxAttnProcessor2_0_NPU = 113
    case fluxSingleAttnProcessor2_0 = 114
    case xlaFluxFlashAttnProcessor2_0 = 115
    case fluxIPAdapterJointAttnProcessor2_0 = 116
    case fluxAttnProcessor = 117
    case fluxIPAdapterAttnProcessor = 118
    case auraFlowAttnProcessor2_0 = 120
    case fusedAuraFlowAttnProcessor2_0 = 121
    case cogVideoXAttnProcessor2_0 = 130
    case fusedCogVideoXAttnProcessor2_0 = 131
    case hunyuanAttnProcessor2_0 = 140
    case fusedHunyuanAttnProcessor2_0 = 141
    case pagHunyuanAttnProcessor2_0 = 142
    case pagCFGHunyuanAttnProcessor2_0 = 143
    case luminaAttnProcessor2_0 = 150
    case allegroAttnProcessor2_0 = 151
    case stableAudioAttnProcessor2_0 = 152
    case mochiAttnProcessor2_0 = 160
    case mochiVaeAttnProcessor2_0 = 161
    case sanaLinearAttnProcessor2_0 = 170
    case pagCFGSanaLinearAttnProcessor2_0 = 171
    case pagIdentitySanaLinearAttnProcessor2_0 = 172
    case sanaMultiscaleAttnProcessor2_0 = 173
    case pagIdentitySelfAttnProcessor2_0 = 180
    case pagCFGIdentitySelfAttnProcessor2_0 = 181
    /// Not a diffusers class: AttnProcessor2_0 with int8 attention (docs/performance.md).
    case attnProcessorInt8 = 190

    /// diffusers' class name.
    public var name: String {
        switch self {
        case .attnProcessor: return "AttnProcessor"
        case .attnProcessor2_0: return "AttnProcessor2_0"
        case .fusedAttnProcessor2_0: return "FusedAttnProcessor2_0"
        case .slicedAttnProcessor: return "SlicedAttnProcessor"
        case .xformersAttnProcessor: return "XFormersAttnProcessor"
        case .attnProcessorNPU: return "AttnProcessorNPU"
        case .xlaFlashAttnProcessor2_0: return "XLAFlashAttnProcessor2_0"
        case .attnAddedKVProcessor: return "AttnAddedKVProcessor"
        case .attnAddedKVProcessor2_0: return "AttnAddedKVProcessor2_0"
        case .slicedAttnAddedKVProcessor: return "SlicedAttnAddedKVProcessor"
        case .xformersAttnAddedKVProcessor: return "XFormersAttnAddedKVProcessor"
        case .customDiffusionAttnProcessor: return "CustomDiffusionAttnProcessor"
        case .customDiffusionAttnProcessor2_0: return "CustomDiffusionAttnProcessor2_0"
        case .customDiffusionXFormersAttnProcessor: return "CustomDiffusionXFormersAttnProcessor"
        case .ipAdapterAttnProcessor: return "IPAdapterAttnProcessor"
        case .ipAdapterAttnProcessor2_0: return "IPAdapterAttnProcessor2_0"
        case .ipAdapterXFormersAttnProcessor: return "IPAdapterXFormersAttnProcessor"
        case .loraAttnProcessor: return "LoRAAttnProcessor"
        case .loraAttnProcessor2_0: return "LoRAAttnProcessor2_0"
        case .loraXFormersAttnProcessor: return "LoRAXFormersAttnProcessor"
        case .loraAttnAddedKVProcessor: return "LoRAAttnAddedKVProcessor"
        case .jointAttnProcessor2_0: return "JointAttnProcessor2_0"
        case .fusedJointAttnProcessor2_0: return "FusedJointAttnProcessor2_0"
        case .xformersJointAttnProcessor: return "XFormersJointAttnProcessor"
        case .pagJointAttnProcessor2_0: return "PAGJointAttnProcessor2_0"
        case .pagCFGJointAttnProcessor2_0: return "PAGCFGJointAttnProcessor2_0"
        case .sd3IPAdapterJointAttnProcessor2_0: return "SD3IPAdapterJointAttnProcessor2_0"
        case .fluxAttnProcessor2_0: return "FluxAttnProcessor2_0"
        case .fusedFluxAttnProcessor2_0: return "FusedFluxAttnProcessor2_0"
        case .fluxAttnProcessor2_0_NPU: return "FluxAttnProcessor2_0_NPU"
        case .fusedFluxAttnProcessor2_0_NPU: return "FusedFluxAttnProcessor2_0_NPU"
        case .fluxSingleAttnProcessor2_0: return "FluxSingleAttnProcessor2_0"
        case .xlaFluxFlashAttnProcessor2_0: return "XLAFluxFlashAttnProcessor2_0"
        case .fluxIPAdapterJointAttnProcessor2_0: return "FluxIPAdapterJointAttnProcessor2_0"
        case .fluxAttnProcessor: return "FluxAttnProcessor"
        case .fluxIPAdapterAttnProcessor: return "FluxIPAdapterAttnProcessor"
        case .auraFlowAttnProcessor2_0: return "AuraFlowAttnProcessor2_0"
        case .fusedAuraFlowAttnProcessor2_0: return "FusedAuraFlowAttnProcessor2_0"
        case .cogVideoXAttnProcessor2_0: return "CogVideoXAttnProcessor2_0"
        case .fusedCogVideoXAttnProcessor2_0: return "FusedCogVideoXAttnProcessor2_0"
        case .hunyuanAttnProcessor2_0: return "HunyuanAttnProcessor2_0"
        case .fusedHunyuanAttnProcessor2_0: return "FusedHunyuanAttnProcessor2_0"
        case .pagHunyuanAttnProcessor2_0: return "PAGHunyuanAttnProcessor2_0"
        case .pagCFGHunyuanAttnProcessor2_0: return "PAGCFGHunyuanAttnProcessor2_0"
        case .luminaAttnProcessor2_0: return "LuminaAttnProcessor2_0"
        case .allegroAttnProcessor2_0: return "AllegroAttnProcessor2_0"
        case .stableAudioAttnProcessor2_0: return "StableAudioAttnProcessor2_0"
        case .mochiAttnProcessor2_0: return "MochiAttnProcessor2_0"
        case .mochiVaeAttnProcessor2_0: return "MochiVaeAttnProcessor2_0"
        case .sanaLinearAttnProcessor2_0: return "SanaLinearAttnProcessor2_0"
        case .pagCFGSanaLinearAttnProcessor2_0: return "PAGCFGSanaLinearAttnProcessor2_0"
        case .pagIdentitySanaLinearAttnProcessor2_0: return "PAGIdentitySanaLinearAttnProcessor2_0"
        case .sanaMultiscaleAttnProcessor2_0: return "SanaMultiscaleAttnProcessor2_0"
        case .pagIdentitySelfAttnProcessor2_0: return "PAGIdentitySelfAttnProcessor2_0"
        case .pagCFGIdentitySelfAttnProcessor2_0: return "PAGCFGIdentitySelfAttnProcessor2_0"
        case .attnProcessorInt8: return "AttnProcessorInt8"
        }
    }

    public init?(name: String) {
        guard let kind = ProcessorKind.allCases.first(where: { $0.name == name }) else { return nil }
        self = kind
    }
}
