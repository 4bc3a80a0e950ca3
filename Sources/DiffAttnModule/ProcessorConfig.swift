import DiffAttnKernels
/// One IP-Adapter's scale: a number, or one number per image (only valid with region masks).
public enum IPAdapterScale: Sendable, Equatable {
    case uniform(Float)
    case perImage([Float])

    var isFinite: Bool {
        switch self {
        case .uniform(let s): return s.isFinite
        case .perImage(let s): return s.allSatisfy(\.isFinite)
        }
    }

    package var isZero: Bool {
        switch self {
        case .uniform(let s): return s == 0
        case .perImage(let s): return s.allSatisfy { $0 == 0 }
        }
    }
}

/// A processor as diffusers constructs it: the class (kind) and its constructor arguments.
/// Processors hold no computation of their own; `ProcessorRecipe` says which shared steps a
/// kind runs. Weight-holding kinds (Custom Diffusion, IP-Adapter) get their weights registered
/// in the module's state dict under `processor.` when installed.
public struct ProcessorConfig: Sendable, Equatable {
    public var kind: ProcessorKind
    /// `SlicedAttnProcessor(slice_size)` and `SlicedAttnAddedKVProcessor(slice_size)`.
    public var sliceSize: Int?
    // Custom Diffusion (attention_processor.py:CustomDiffusionAttnProcessor.__init__).
    public var trainKV = true
    public var trainQOut: Bool
    public var hiddenSize: Int?
    public var crossAttentionDim: Int?
    public var outBias = true
    public var dropout: Double = 0
    // IP-Adapter (attention_processor.py:IPAdapterAttnProcessor.__init__): one entry per adapter.
    public var numTokens: [Int] = [4]
    public var scale: [IPAdapterScale] = [.uniform(1)]
    // SD3IPAdapterJointAttnProcessor2_0 (attention_processor.py:SD3IPAdapterJointAttnProcessor2_0): `hiddenSize` and `scale[0]` too.
    public var ipHiddenStatesDim: Int?
    public var headDim: Int?
    public var timestepsEmbDim = 1280

    public init(kind: ProcessorKind, sliceSize: Int? = nil) {
        self.kind = kind
        self.sliceSize = sliceSize
        self.trainQOut = kind != .customDiffusionXFormersAttnProcessor  // its default differs (docs/quirks.md item 12)
        scale = [.uniform(defaultScale)]
    }

    /// The constructor's default scale (1.0; 0.5 for SD3's IP-Adapter).
    public var defaultScale: Float { kind == .sd3IPAdapterJointAttnProcessor2_0 ? 0.5 : 1 }

    /// Whether the processor has IP-Adapter scales (classic and DiT IP-Adapter kinds).
    public var hasIPAdapterScale: Bool { family.map { if case .ipAdapter = $0 { return true }; return false } ?? false || ditIPAdapter != .none }

    /// The DiT IP-Adapter branch this kind runs (none for every other kind).
    var ditIPAdapter: ProcessorRecipe.IPAdapter { ProcessorRecipe.recipe(for: kind)?.ipAdapter ?? .none }

    /// Whether this build computes `kind` (the enum reserves every diffusers class up front).
    public static func isImplemented(_ kind: ProcessorKind) -> Bool {
        ProcessorRecipe.recipe(for: kind) != nil
    }

    var family: ProcessorRecipe.Family? { ProcessorRecipe.recipe(for: kind)?.family }

    /// Whether installing this processor registers weights of its own.
    public var holdsWeights: Bool {
        switch family {
        case .customDiffusion: return trainKV || trainQOut
        case .ipAdapter: return true
        default: return ditIPAdapter != .none
        }
    }

    /// The checks diffusers' constructor makes (and a port's guards where diffusers has none).
    func validateConstruction() throws {
        guard ProcessorConfig.isImplemented(kind) else {
            throw DiffAttnError(.unsupported, "\(kind.name) is not implemented in this version of libdiffattn")
        }
        if kind == .attnProcessorInt8 && !int8AttentionSupported {
            throw DiffAttnError(.unsupported, "AttnProcessorInt8 needs a CPU with AVX2 (its integer kernels are AVX2 only); this one has \(CPUFeatures.current.summary)")
        }
        if kind == .slicedAttnProcessor || kind == .slicedAttnAddedKVProcessor {
            // 0 is accepted here and fails at call time, as diffusers' division by it does.
            guard let s = sliceSize, s >= 0, s <= 1 << 24 else {
                throw DiffAttnError.value("\(kind.name) needs slice_size in 0...\(1 << 24), got \(sliceSize.map(String.init) ?? "None")")
            }
        }
        // The port's guards on values a C caller could make absurd, before any use of them.
        guard dropout.isFinite else { throw DiffAttnError.argument("dropout must be finite") }
        for (k, tokens) in numTokens.enumerated() where tokens < 1 || tokens > 1 << 24 {
            throw DiffAttnError.argument("num_tokens[\(k)] must be in 1...\(1 << 24), got \(tokens)")
        }
        guard scale.allSatisfy(\.isFinite) else { throw DiffAttnError.argument("scales must be finite") }
        for (size, name) in [(hiddenSize, "hidden_size"), (crossAttentionDim, "cross_attention_dim"),
                             (ipHiddenStatesDim, "ip_hidden_states_dim"), (headDim, "head_dim"),
                             (timestepsEmbDim, "timesteps_emb_dim")] {
            if let size, size < 1 || size > 1 << 24 { throw DiffAttnError.argument("\(name) must be in 1...\(1 << 24), got \(size)") }
        }
        switch family {
        case .customDiffusion:
            if (trainKV || trainQOut) && hiddenSize == nil {
                throw DiffAttnError.type("\(kind.name) needs hidden_size when train_kv or train_q_out is set (got None)")
            }
            guard dropout >= 0, dropout <= 1 else { throw DiffAttnError.value("dropout probability has to be between 0 and 1, but got \(dropout)") }
        case .ipAdapter:
            guard hiddenSize != nil else { throw DiffAttnError.type("\(kind.name) missing 1 required positional argument: 'hidden_size'") }
            if crossAttentionDim == nil && kind != .ipAdapterXFormersAttnProcessor {
                throw DiffAttnError.type("\(kind.name) needs cross_attention_dim (empty(): argument 'size' must be tuple of ints, not NoneType)")
            }
            guard !numTokens.isEmpty, numTokens.allSatisfy({ $0 > 0 }) else {
                throw DiffAttnError.value("num_tokens must be a non-empty list of positive token counts, got \(numTokens)")
            }
            guard scale.count == numTokens.count else {
                throw DiffAttnError.value("`scale` should be a list of integers with the same length as `num_tokens`.")
            }
        default: try validateDiTIPAdapter()
        }
        // The weights registerWeights would allocate: at most 2^30, never an allocation that traps.
        let hidden = hiddenSize ?? 0, input = crossAttentionDim ?? hidden
        let layers: [(Int, Int)] = [(2 * numTokens.count, hidden * input), (2, hidden * hidden),
                                    (2 * (ipHiddenStatesDim ?? 0), timestepsEmbDim + hidden)]
        for (count, each) in layers where count > 0 {
            let (n, overflow) = count.multipliedReportingOverflow(by: each)
            guard !overflow, n <= 1 << 30 else {
                throw DiffAttnError(.outOfMemory, "\(kind.name) would hold more than 2^30 weights; its sizes are absurd")
            }
        }
    }

    /// The processor's own state-dict entries, in diffusers' registration order.
    package func registerWeights(in table: inout ParameterTable) {
        switch family {
        case .customDiffusion:
            guard let hidden = hiddenSize else { return }
            if trainKV {
                let input = crossAttentionDim ?? hidden
                table.addLinear("processor.to_k_custom_diffusion", in: input, out: hidden, bias: false)
                table.addLinear("processor.to_v_custom_diffusion", in: input, out: hidden, bias: false)
            }
            if trainQOut {
                table.addLinear("processor.to_q_custom_diffusion", in: hidden, out: hidden, bias: false)
                table.addLinear("processor.to_out_custom_diffusion.0", in: hidden, out: hidden, bias: outBias)
            }
        case .ipAdapter:
            guard let hidden = hiddenSize else { return }
            let input = crossAttentionDim ?? hidden
            registerImageProjections(in: &table, input: input, hidden: hidden, bias: false)
        default: registerDiTIPAdapterWeights(in: &table)
        }
    }
}

/// A processor class's family as the bindings see it: which constructor arguments the class takes
/// and which pipeline runs it (the C API's DA_PROCESSOR_FAMILY_*).
public enum ProcessorClassFamily: Sendable {
    case standard, addedKV, customDiffusion, ipAdapter, deprecatedLoRA, dit, ditSD3IPAdapter, ditFluxIPAdapter
}

extension ProcessorKind {
    /// The family of this class; nil for a kind this build has no recipe for.
    public var classFamily: ProcessorClassFamily? {
        guard let r = ProcessorRecipe.recipe(for: self) else { return nil }
        if r.isDiT {
            switch r.ipAdapter {
            case .none: return .dit
            case .sd3: return .ditSD3IPAdapter
            case .flux: return .ditFluxIPAdapter
            }
        }
        switch r.family {
        case .addedKV: return .addedKV
        case .customDiffusion: return .customDiffusion
        case .ipAdapter: return .ipAdapter
        case .deprecatedLoRA: return .deprecatedLoRA
        default: return .standard
        }
    }
}
