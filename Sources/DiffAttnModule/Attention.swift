import DiffAttnKernels

/// diffusers' `Attention` module: its options, derived attributes, named weights and processor.
/// Forward computation lives in the processors; this type holds state and checks construction.
public final class Attention: @unchecked Sendable {
    public let config: AttentionConfig
    public let derived: DerivedAttributes
    /// The named weights. Read and replaced under a lock: group offloading releases and installs
    /// one module's weights (DiffAttnHooks/ModuleGroup.swift) while other threads may be planning a
    /// forward of the same module, and an unsynchronised struct read racing that write corrupts
    /// the arrays' reference counts. A reader gets a consistent snapshot whose tensors stay alive
    /// however the table changes afterwards.
    public package(set) var parameters: ParameterTable {
        get { parameterStore.withLock { $0 } }
        set { parameterStore.withLock { $0 = newValue } }
    }
    private let parameterStore: Locked<ParameterTable>

    /// Changes the table in place under its lock (one atomic edit, no copy of the arrays).
    package func updateParameters<R>(_ body: (inout ParameterTable) throws -> R) rethrows -> R {
        try parameterStore.withLock(body)
    }
    public package(set) var processor: ProcessorConfig
    public package(set) var fusedProjections = false
    /// What wraps the module's call (its hook registry, set by the hooks layer) and names its path
    /// in a model; nil for a standalone module nobody hooked.
    public package(set) var interceptor: (any AttentionInterceptor)?
    /// Transforms of a projection's output by layer name, applied inside the attention step (a hook
    /// on that Linear in diffusers: SEG blurs `to_q`'s output, Hooks/SmoothedEnergyGuidance.swift).
    public private(set) var projectionTransforms: [String: @Sendable (Tensor) throws -> Tensor] = [:]
    /// Layer skip's `skip_attention_scores` (hooks/layer_skip.py: AttentionScoreSkipFunctionMode):
    /// while set, SDPA-style attention returns V where query and value lengths agree; masks ignored.
    public var identityAttentionScores = false

    public func setProjectionTransform(_ layer: String, _ transform: (@Sendable (Tensor) throws -> Tensor)?) {
        projectionTransforms[layer] = transform
    }

    public func clearProjectionTransforms() { projectionTransforms = [:] }

    /// A memo around this module's projections (the text K/V cache, Hooks/TextKVCache.swift):
    /// `(layer, input, compute) → output`; nil = compute every time.
    public private(set) var projectionMemo: (@Sendable (String, Tensor, () throws -> Tensor) throws -> Tensor)?

    public func setProjectionMemo(_ memo: (@Sendable (String, Tensor, () throws -> Tensor) throws -> Tensor)?) {
        projectionMemo = memo
    }

    /// With a `budget`, the module is part of a model's dry run (WeightBudget.swift): it takes its
    /// weights from the budget (refusing past it) and creates none.
    public init(_ config: AttentionConfig, budget: WeightBudget? = nil) throws {
        let config = Attention.normalized(config)
        try Attention.validate(config, budget: budget)
        try Attention.validateModule(config)
        self.config = config
        self.derived = DerivedAttributes(config)
        self.parameterStore = Locked(budget != nil ? ParameterTable(seed: 0)
            : config.moduleClass == .attention ? Attention.makeParameters(config, derived)
            : Attention.makeModuleParameters(config, derived))
        self.processor = Attention.defaultProcessor(config)
        if let explicit = config.processor { try setProcessor(explicit) }
    }

    /// diffusers' default (attention_processor.py:Attention.__init__ (default processor)): SDPA unless `scale_qk` is false, whatever the added KV.
    static func defaultProcessor(scaleQK: Bool) -> ProcessorConfig {
        ProcessorConfig(kind: scaleQK ? .attnProcessor2_0 : .attnProcessor)
    }

    public var defaultProcessor: ProcessorConfig { Attention.defaultProcessor(scaleQK: config.scaleQK) }

    /// diffusers' `set_processor`: no type check beyond what the processor's constructor does.
    /// A weight-holding processor's weights replace the previous processor's (its weights are
    /// dropped, as diffusers drops a replaced processor module).
    public func setProcessor(_ newProcessor: ProcessorConfig) throws {
        try newProcessor.validateConstruction()
        try checkWeightsEditable("set_processor")
        var table = parameters
        table.removeAll(withPrefix: "processor.")
        newProcessor.registerWeights(in: &table)
        parameters = table
        processor = newProcessor
    }

    /// Changes the current processor's arguments that shape no weights (an IP-Adapter's `scale`,
    /// which pipelines set per call), keeping its weights.
    public func updateProcessor(_ updated: ProcessorConfig) throws {
        var shaped = updated
        shaped.scale = processor.scale
        guard shaped == processor else {
            throw DiffAttnError.value("update_processor may only change the IP-Adapter scale of the current \(processor.kind.name); use set_processor to change anything else")
        }
        try updated.validateConstruction()
        processor = updated
    }

    /// Construction checks in diffusers' order (attention_processor.py:Attention.__init__), plus the sizes a C caller could get
    /// absurd, which must fail before any arithmetic.
    static func validate(_ c: AttentionConfig, budget: WeightBudget? = nil) throws {
        func positive(_ v: Int, _ name: String) throws {
            guard v > 0, v <= 1 << 24 else { throw DiffAttnError.argument("\(name) must be in 1...\(1 << 24), got \(v)") }
        }
        try positive(c.queryDim, "query_dim")
        try positive(c.heads, "heads")
        try positive(c.dimHead, "dim_head")
        for (v, n) in [(c.crossAttentionDim, "cross_attention_dim"), (c.kvHeads, "kv_heads"),
                       (c.addedKVProjDim, "added_kv_proj_dim"), (c.normNumGroups, "norm_num_groups"),
                       (c.spatialNormDim, "spatial_norm_dim"), (c.outDim, "out_dim"),
                       (c.outContextDim, "out_context_dim")] {
            if let v { try positive(v, n) }
        }
        try positive(c.crossAttentionNormNumGroups, "cross_attention_norm_num_groups")
        guard c.dimHead * c.heads <= 1 << 24, c.dimHead * (c.kvHeads ?? 1) <= 1 << 24 else {
            throw DiffAttnError.argument("dim_head * heads must be at most \(1 << 24)")
        }
        if let outDim = c.outDim, outDim / c.dimHead == 0 {
            throw DiffAttnError.value("out_dim (\(outDim)) // dim_head (\(c.dimHead)) gives 0 heads; out_dim must be at least dim_head")
        }
        guard c.eps.isFinite, c.eps >= 0 else { throw DiffAttnError.argument("eps must be a finite non-negative number, got \(c.eps)") }
        guard c.rescaleOutputFactor.isFinite, c.rescaleOutputFactor != 0 else {
            throw DiffAttnError.argument("rescale_output_factor must be finite and non-zero, got \(c.rescaleOutputFactor)")
        }
        guard c.dropout >= 0, c.dropout <= 1 else { throw DiffAttnError.value("dropout probability has to be between 0 and 1, but got \(c.dropout)") }

        try checkWeightCount(c, budget: budget)
        if c.addedKVProjDim == nil && c.onlyCrossAttention {
            throw DiffAttnError.value("`only_cross_attention` can only be set to True if `added_kv_proj_dim` is not None. Make sure to set either `only_cross_attention=False` or define `added_kv_proj_dim`.")
        }
        func groupsDivide(_ channels: Int, _ groups: Int) throws {
            if channels % groups != 0 { throw DiffAttnError.value("num_channels (\(channels)) must be divisible by num_groups (\(groups))") }
        }
        if let groups = c.normNumGroups { try groupsDivide(c.queryDim, groups) }
        if c.spatialNormDim != nil { try groupsDivide(c.queryDim, 32) }
        if (c.qkNorm == .layerNormAcrossHeads || c.qkNorm == .rmsNormAcrossHeads) && c.kvHeads == nil {
            throw DiffAttnError.type("unsupported operand type(s) for *: 'int' and 'NoneType' (qk_norm '\(c.qkNorm.diffusersName)' needs kv_heads)")
        }
        if c.crossAttentionNorm == .groupNorm {
            try groupsDivide(c.addedKVProjDim ?? c.crossAttentionDim ?? c.queryDim, c.crossAttentionNormNumGroups)
        }
        if c.addedKVProjDim != nil && (c.qkNorm == .layerNormAcrossHeads || c.qkNorm == .l2) {
            throw DiffAttnError.value("unknown qk_norm: \(c.qkNorm.diffusersName). Should be one of `None,'layer_norm','fp32_layer_norm','rms_norm'`")
        }
    }

    /// At most 2^30 weights (4 GiB): a larger module is an error, never an allocation that traps.
    static func checkWeightCount(_ c: AttentionConfig, budget: WeightBudget?) throws {
        let d = DerivedAttributes(c)
        let matrices = [[d.innerDim, c.queryDim], [d.innerKVDim, d.crossAttentionDim], [d.innerKVDim, d.crossAttentionDim],
                        [d.outDim, d.innerDim], [d.innerKVDim, c.addedKVProjDim ?? 0], [d.innerKVDim, c.addedKVProjDim ?? 0],
                        [d.innerDim, c.addedKVProjDim ?? 0], [d.outContextDim, d.innerDim],
                        [2 * c.queryDim, c.spatialNormDim ?? 0], [2 * d.innerDim, 1]]
        var total = 0
        for m in matrices {
            let (n, overflow) = m[0].multipliedReportingOverflow(by: m[1])
            total += overflow ? Int.max / 2 : n
            guard !overflow, total <= 1 << 30 else {
                throw DiffAttnError(.outOfMemory, "this Attention would hold more than 2^30 weights (e.g. \(describe(m)) for one layer); its sizes are absurd")
            }
        }
        try budget?.spend(weights: total)
    }

    /// The state dict in diffusers' registration order (attention_processor.py:Attention.__init__).
    static func makeParameters(_ c: AttentionConfig, _ d: DerivedAttributes) -> ParameterTable {
        var t = ParameterTable(seed: 0x5EED_A77E)
        if c.normNumGroups != nil { t.addNorm("group_norm", width: c.queryDim, weight: true, bias: true) }
        if let z = c.spatialNormDim {
            t.addNorm("spatial_norm.norm_layer", width: c.queryDim, weight: true, bias: true)
            for conv in ["spatial_norm.conv_y", "spatial_norm.conv_b"] {
                t.add(conv + ".weight", [c.queryDim, z, 1, 1], .uniform(fanIn: z))
                t.add(conv + ".bias", [c.queryDim], .uniform(fanIn: z))
            }
        }
        let qkShapes = qkNormWidths(c)
        if let (q, k, weight, bias) = qkShapes {
            t.addNorm("norm_q", width: q, weight: weight, bias: bias)
            t.addNorm("norm_k", width: k, weight: weight, bias: bias)
        }
        switch c.crossAttentionNorm {
        case .none: break
        case .layerNorm: t.addNorm("norm_cross", width: d.crossAttentionDim, weight: true, bias: true)
        case .groupNorm: t.addNorm("norm_cross", width: c.addedKVProjDim ?? d.crossAttentionDim, weight: true, bias: true)
        }
        t.addLinear("to_q", in: c.queryDim, out: d.innerDim, bias: c.bias)
        if !c.onlyCrossAttention {
            t.addLinear("to_k", in: d.crossAttentionDim, out: d.innerKVDim, bias: c.bias)
            t.addLinear("to_v", in: d.crossAttentionDim, out: d.innerKVDim, bias: c.bias)
        }
        if let a = c.addedKVProjDim {
            let addedBias = c.addedProjBias ?? false
            t.addLinear("add_k_proj", in: a, out: d.innerKVDim, bias: addedBias)
            t.addLinear("add_v_proj", in: a, out: d.innerKVDim, bias: addedBias)
            if c.contextPreOnly != nil { t.addLinear("add_q_proj", in: a, out: d.innerDim, bias: addedBias) }
        }
        if !c.preOnly { t.addLinear("to_out.0", in: d.innerDim, out: d.outDim, bias: c.outBias) }
        if c.contextPreOnly == false { t.addLinear("to_add_out", in: d.innerDim, out: d.outContextDim, bias: c.outBias) }
        if c.addedKVProjDim != nil {
            switch c.qkNorm {
            case .layerNorm:
                t.addNorm("norm_added_q", width: c.dimHead, weight: c.elementwiseAffine, bias: c.elementwiseAffine)
                t.addNorm("norm_added_k", width: c.dimHead, weight: c.elementwiseAffine, bias: c.elementwiseAffine)
            case .rmsNorm:  // always weighted: diffusers does not pass elementwise_affine here
                t.addNorm("norm_added_q", width: c.dimHead, weight: true, bias: false)
                t.addNorm("norm_added_k", width: c.dimHead, weight: true, bias: false)
            case .rmsNormAcrossHeads:  // no norm_added_q at all (Wan)
                t.addNorm("norm_added_k", width: c.dimHead * (c.kvHeads ?? 0), weight: true, bias: false)
            default: break
            }
        }
        return t
    }

    /// Widths of norm_q / norm_k and whether they carry weight / bias (attention_processor.py:Attention.__init__ (qk_norm)).
    package static func qkNormWidths(_ c: AttentionConfig) -> (Int, Int, Bool, Bool)? {
        let affine = c.elementwiseAffine
        switch c.qkNorm {
        case .none: return nil
        case .layerNorm: return (c.dimHead, c.dimHead, affine, affine)
        case .fp32LayerNorm, .l2: return (c.dimHead, c.dimHead, false, false)
        case .layerNormAcrossHeads: return (c.dimHead * c.heads, c.dimHead * (c.kvHeads ?? 0), true, true)
        case .rmsNorm: return (c.dimHead, c.dimHead, affine, false)
        case .rmsNormAcrossHeads: return (c.dimHead * c.heads, c.dimHead * (c.kvHeads ?? 0), true, false)
        }
    }

    /// Structural weight changes are refused while group offloading holds the weights.
    package func checkWeightsEditable(_ what: String) throws {
        if let owner = parameters.offloadOwner {
            throw DiffAttnError.state("\(what) cannot change the weights of '\(owner)' while group offloading manages them; disable group offloading first")
        }
    }

    /// One state-dict entry (nil when absent).
    package func weight(_ name: String) -> Tensor? { parameters[name] }

    /// Replaces one state-dict entry (shape must match exactly).
    public func setWeight(_ name: String, _ value: Tensor) throws { try parameters.set(name, value) }

    /// Reads entry `name` from the caller's contiguous memory from now on (no copy): see
    /// da_attention_borrow_weight for the lifetime rule.
    public func borrowWeight(_ name: String, base: UnsafeRawPointer, format: LinearWeightFormat) throws {
        try parameters.borrow(name, base: base, format: format)
    }
}

extension QKNorm {
    /// The string diffusers uses for this kind.
    public var diffusersName: String {
        switch self {
        case .none: return "None"
        case .layerNorm: return "layer_norm"
        case .fp32LayerNorm: return "fp32_layer_norm"
        case .layerNormAcrossHeads: return "layer_norm_across_heads"
        case .rmsNorm: return "rms_norm"
        case .rmsNormAcrossHeads: return "rms_norm_across_heads"
        case .l2: return "l2"
        }
    }
}
