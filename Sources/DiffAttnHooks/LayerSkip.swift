import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `LayerSkipConfig` (hooks/layer_skip.py:LayerSkipConfig).
public struct LayerSkipConfig: Sendable {
    public var indices: [Int]
    public var fqn = "auto"
    public var skipAttention = true
    public var skipAttentionScores = false
    public var skipFF = true
    public var dropout = 1.0

    public init(indices: [Int], fqn: String = "auto", skipAttention: Bool = true, skipAttentionScores: Bool = false,
                skipFF: Bool = true, dropout: Double = 1.0) throws {
        self.indices = indices; self.fqn = fqn; self.skipAttention = skipAttention
        self.skipAttentionScores = skipAttentionScores; self.skipFF = skipFF; self.dropout = dropout
        try validate()
    }

    func validate() throws {
        guard dropout >= 0, dropout <= 1 else { throw DiffAttnError.value("Expected `dropout` to be between 0.0 and 1.0, but got \(dropout).") }
        if dropout != 1, skipAttentionScores {
            throw DiffAttnError.value("Cannot set `skip_attention_scores` to True when `dropout` is not 1.0. Please set `dropout` to 1.0.")
        }
    }
}

/// `TransformerBlockSkipHook`, `AttentionProcessorSkipHook` and `FeedForwardSkipHook` (hooks/layer_skip.py,
/// none stateful). A skipped module's output is its input hidden states, placed by stream (not by
/// diffusers' swapped tuple order, hooks/layer_skip.py). Dropout below 1 runs the module and drops
/// output elements with a seeded generator, scaling the rest by 1/(1−p) as torch does.
public final class LayerSkipHook: ModelHook, BlockHook, @unchecked Sendable {
    public enum Kind: String, Sendable { case transformerBlock = "TransformerBlockSkipHook", attentionProcessor = "AttentionProcessorSkipHook", feedForward = "FeedForwardSkipHook" }
    public let kind: Kind
    let dropout: Double
    /// `skip_attention_scores`: run the attention with identity scores instead of skipping it.
    var scores = false
    private let lock = Locked()
    private var rng: UInt64 = 0x9E37_79B9_7F4A_7C15

    init(_ kind: Kind, dropout: Double) { self.kind = kind; self.dropout = dropout }

    public override var hasNewForward: Bool { kind == .attentionProcessor }
    public override var hookDescription: String { kind.rawValue }
    var skips: Bool { abs(dropout - 1) <= 1e-9 }  // math.isclose(dropout, 1.0)

    public override func newForward(_ module: HookRegistry, _ inputs: AttentionInputs?,
                                    _ next: (AttentionInputs?) throws -> [Tensor]) throws -> [Tensor] {
        guard let inputs else { throw DiffAttnError.state("layer skip: the attention call has no inputs") }
        if scores, let a = module.attention {
            guard skips else {
                throw DiffAttnError.value("Cannot set `skip_attention_scores` to True when `dropout` is not 1.0. Please set `dropout` to 1.0.")
            }
            let before = a.identityAttentionScores
            a.identityAttentionScores = true
            defer { a.identityAttentionScores = before }
            return try next(inputs)
        }
        if skips { return [inputs.hiddenStates] }
        return try next(inputs).map(drop)
    }

    public func blockBegin(_ module: HookRegistry, _ io: inout BlockIO) throws -> Bool { !skips }

    public func blockEnd(_ module: HookRegistry, _ io: inout BlockIO) throws {
        io.hiddenStates = drop(io.hiddenStates)
    }

    private func drop(_ t: Tensor) -> Tensor {
        guard dropout > 0 else { return t }
        let keep = Float(1 / (1 - dropout))
        return lock.run {
            Tensor(shape: t.shape, storage: t.storage.map { v in
                rng &+= 0x9E37_79B9_7F4A_7C15
                var z = rng; z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53) < dropout ? 0 : v * keep
            })
        }
    }
}

extension Model {
    public static let layerSkipHookName = "layer_skip_hook"

    /// The feed-forward children of one block, by model class and block list (diffusers'
    /// `FeedForward` modules; other classes: `ff`). The tree has no node for them until layer skip
    /// asks, since the host runs them.
    static let feedForwardChildren: [String: [String: [String]]] = [
        "FluxTransformer2DModel": ["transformer_blocks": ["ff", "ff_context"]],
        "SD3Transformer2DModel": ["transformer_blocks": ["ff", "ff_context"]],
        "AuraFlowTransformer2DModel": ["joint_transformer_blocks": ["ff", "ff_context"], "single_transformer_blocks": ["ff"]],
    ]

    /// `apply_layer_skip(module, config, name)`: returns the hooked paths with the hook kind.
    @discardableResult
    public func applyLayerSkip(_ config: inout LayerSkipConfig, name: String? = nil) throws -> [(String, LayerSkipHook.Kind)] {
        if config.skipAttention && config.skipAttentionScores {
            throw DiffAttnError.value("Cannot set both `skip_attention` and `skip_attention_scores` to True. Please choose one.")
        }
        try config.validate()
        if config.fqn == "auto" {
            guard let found = transformerBlockListNames.first(where: { root.existingChild($0) != nil }) else {
                throw DiffAttnError.value("Could not find a suitable identifier for the transformer blocks automatically. Please provide a valid `fqn` (fully qualified name) that identifies a stack of transformer blocks.")
            }
            config.fqn = found
        }
        guard let list = try? module(at: config.fqn), list.isModuleList else {
            throw DiffAttnError.value("Could not find \(config.fqn) in the provided module, or configured `fqn` (fully qualified name) does not identify a `torch.nn.ModuleList`. Please provide a valid `fqn` that identifies a stack of transformer blocks.")
        }
        guard !config.indices.isEmpty else {
            throw DiffAttnError.value("Layer index list is empty. Please provide a non-empty list of layer indices to skip.")
        }
        let hookName = name ?? Model.layerSkipHookName
        var plan: [(String, LayerSkipHook.Kind)] = []
        for (i, block) in list.children.enumerated() where config.indices.contains(i) {
            let blockPath = config.fqn + "." + block.name
            if config.skipAttention && config.skipFF {
                plan.append((blockPath, .transformerBlock))
            } else if config.skipAttention || config.skipAttentionScores {
                for (p, a) in attentionModules where p.hasPrefix(blockPath + ".") && !a.derived.isCrossAttention {
                    plan.append((p, .attentionProcessor))
                }
            }
            if config.skipFF {
                let table = Model.feedForwardChildren[modelClass.name]
                for ff in table.map({ $0[config.fqn] ?? [] }) ?? ["ff"] {
                    block.path(ff).moduleClass = "FeedForward"
                    plan.append((blockPath + "." + ff, .feedForward))
                }
            }
        }
        guard !plan.isEmpty else {
            throw DiffAttnError.value("Could not find any transformer blocks matching the provided indices \(config.indices) and fully qualified name '\(config.fqn)'. Please check the indices and fqn for correctness.")
        }
        for (p, _) in plan where try hookRegistry(at: p).hook(named: hookName) != nil {
            throw DiffAttnError.value("Hook with name \(hookName) already exists in the registry of '\(p)'.")
        }
        for (p, kind) in plan {
            let hook = LayerSkipHook(kind, dropout: config.dropout)
            hook.scores = kind == .attentionProcessor && config.skipAttentionScores
            try hookRegistry(at: p).register(hook, name: hookName)
        }
        return plan
    }
}
