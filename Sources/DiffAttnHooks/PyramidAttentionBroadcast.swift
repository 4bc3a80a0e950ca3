import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `PyramidAttentionBroadcastConfig` (hooks/pyramid_attention_broadcast.py:PyramidAttentionBroadcastConfig). Block identifiers are regular
/// expressions *searched* in a module's dotted path. Skip ranges: recompute every N-th call.
/// Timestep ranges are strict (`low < t < high`).
public struct PyramidAttentionBroadcastConfig: @unchecked Sendable {
    public var spatialAttentionBlockSkipRange: Int?
    public var temporalAttentionBlockSkipRange: Int?
    public var crossAttentionBlockSkipRange: Int?
    public var spatialAttentionTimestepSkipRange: (Double, Double) = (100, 800)
    public var temporalAttentionTimestepSkipRange: (Double, Double) = (100, 800)
    public var crossAttentionTimestepSkipRange: (Double, Double) = (100, 800)
    public var spatialAttentionBlockIdentifiers = ["blocks", "transformer_blocks", "single_transformer_blocks", "layers", "visual_transformer_blocks"]
    public var temporalAttentionBlockIdentifiers = ["temporal_transformer_blocks"]
    public var crossAttentionBlockIdentifiers = ["blocks", "transformer_blocks", "layers"]
    /// `current_timestep_callback`; nil is diffusers' error unless `useStepTimestep`.
    public var currentTimestepCallback: (() throws -> Double?)?
    /// Extension: read the timestep the host passed to `Model.beginStep` instead of a callback.
    public var useStepTimestep = false

    public init() {}
}

/// `PyramidAttentionBroadcastHook` (stateful, hooks/pyramid_attention_broadcast.py:PyramidAttentionBroadcastHook): reuses its module's previous output.
public final class PyramidAttentionBroadcastHook: ModelHook, @unchecked Sendable {
    public let timestepSkipRange: (Double, Double)
    public let blockSkipRange: Int
    let timestep: () throws -> Double?
    private let lock = Locked()
    private var iteration = 0
    private var cache: [Tensor]?

    init(timestepSkipRange: (Double, Double), blockSkipRange: Int, timestep: @escaping () throws -> Double?) {
        self.timestepSkipRange = timestepSkipRange; self.blockSkipRange = blockSkipRange; self.timestep = timestep
    }

    public override var isStateful: Bool { true }
    public override var hasNewForward: Bool { true }
    public override var hookDescription: String { "PyramidAttentionBroadcastHook" }

    public override func newForward(_ module: HookRegistry, _ inputs: AttentionInputs?,
                                    _ next: (AttentionInputs?) throws -> [Tensor]) throws -> [Tensor] {
        guard let t = try timestep() else {
            throw DiffAttnError.type("'<' not supported between instances of 'float' and 'NoneType' (the current timestep callback returned None; call the model inside begin_step/end_step)")
        }
        let inRange = timestepSkipRange.0 < t && t < timestepSkipRange.1
        let (cached, n) = lock.run { (cache, iteration) }
        let out: [Tensor]
        if let cached, n != 0, inRange, n % blockSkipRange != 0 { out = cached } else { out = try next(inputs) }
        lock.run { cache = out; iteration += 1 }
        return out  // value semantics: the caller gets its own copy-on-write array
    }

    public override func resetState(_ module: HookRegistry) throws { lock.run { iteration = 0; cache = nil } }
}

extension Model {
    public static let pyramidAttentionBroadcastHookName = "pyramid_attention_broadcast"

    /// `apply_pyramid_attention_broadcast(model, config)` (hooks/pyramid_attention_broadcast.py:apply_pyramid_attention_broadcast): classifies every attention module
    /// by its path (spatial, then temporal, then cross; first match wins) and hooks the matches.
    /// Returns the hooked paths with their kind. The config is returned with diffusers' default
    /// written back (spatial = 2 when no range is set).
    @discardableResult
    public func applyPyramidAttentionBroadcast(_ config: inout PyramidAttentionBroadcastConfig) throws -> [(String, String)] {
        let callback: () throws -> Double?
        if let cb = config.currentTimestepCallback {
            callback = cb
        } else if config.useStepTimestep {
            let context = hookContext
            callback = { context.timestep }
        } else {
            throw DiffAttnError.value("The `current_timestep_callback` function must be provided in the configuration to apply Pyramid Attention Broadcast.")
        }
        for (r, what) in [(config.spatialAttentionBlockSkipRange, "spatial"), (config.temporalAttentionBlockSkipRange, "temporal"),
                          (config.crossAttentionBlockSkipRange, "cross")] {
            if let r, r < 1 { throw DiffAttnError.value("\(what)_attention_block_skip_range must be at least 1, got \(r)") }
        }
        if config.spatialAttentionBlockSkipRange == nil && config.temporalAttentionBlockSkipRange == nil
            && config.crossAttentionBlockSkipRange == nil {
            config.spatialAttentionBlockSkipRange = 2  // diffusers warns and mutates the config
        }
        func compile(_ patterns: [String]) throws -> [Regex<AnyRegexOutput>] {
            try patterns.map { p in
                do { return try Regex(p) } catch { throw DiffAttnError.value("block identifier '\(p)' is not a valid regular expression: \(error)") }
            }
        }
        let spatial = try compile(config.spatialAttentionBlockIdentifiers)
        let temporal = try compile(config.temporalAttentionBlockIdentifiers)
        let cross = try compile(config.crossAttentionBlockIdentifiers)
        func found(_ rs: [Regex<AnyRegexOutput>], _ p: String) -> Bool { rs.contains { p.firstMatch(of: $0) != nil } }
        var plan: [(String, String, Int, (Double, Double))] = []
        for (path, a) in attentionModules {
            // Flux-style attention has no is_cross_attention attribute in diffusers (hooks/pyramid_attention_broadcast.py:apply_pyramid_attention_broadcast).
            let isCross = (try? module(at: path).moduleClass) == "Attention" && a.derived.isCrossAttention
            if found(spatial, path), let n = config.spatialAttentionBlockSkipRange, !isCross {
                plan.append((path, "spatial", n, config.spatialAttentionTimestepSkipRange))
            } else if found(temporal, path), let n = config.temporalAttentionBlockSkipRange, !isCross {
                plan.append((path, "temporal", n, config.temporalAttentionTimestepSkipRange))
            } else if found(cross, path), let n = config.crossAttentionBlockSkipRange, isCross {
                plan.append((path, "cross", n, config.crossAttentionTimestepSkipRange))
            }
        }
        for (path, _, _, _) in plan where try hookRegistry(at: path).hook(named: Model.pyramidAttentionBroadcastHookName) != nil {
            throw DiffAttnError.value("Hook with name \(Model.pyramidAttentionBroadcastHookName) already exists in the registry of '\(path)'. Please use a different name or first remove the existing hook and then add a new one.")
        }
        for (path, _, n, range) in plan {
            try hookRegistry(at: path).register(PyramidAttentionBroadcastHook(timestepSkipRange: range, blockSkipRange: n, timestep: callback),
                                                name: Model.pyramidAttentionBroadcastHookName)
        }
        return plan.map { ($0.0, $0.1) }
    }
}
