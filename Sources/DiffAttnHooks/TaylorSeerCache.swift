import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `TaylorSeerCacheConfig` (hooks/taylorseer_cache.py:TaylorSeerCacheConfig). `taylorFactorsBFloat16` = the default
/// `taylor_factors_dtype=torch.bfloat16` (factors rounded to bfloat16 when stored); false = float32.
public struct TaylorSeerCacheConfig: Sendable {
    public var cacheInterval = 5
    public var disableCacheBeforeStep = 3
    public var disableCacheAfterStep: Int?
    public var maxOrder = 1
    public var taylorFactorsBFloat16 = true
    public var skipPredictIdentifiers: [String]?
    public var cacheIdentifiers: [String]?
    public var useLiteMode = false
    public init() {}

    /// The ranges the step arithmetic needs (the refresh test's modulo, the factor orders).
    func validate() throws {
        guard cacheInterval >= 1, cacheInterval <= 1 << 30 else {
            throw DiffAttnError.argument("cache_interval must be in 1...\(1 << 30), got \(cacheInterval)")
        }
        guard maxOrder >= 0, maxOrder <= 16 else { throw DiffAttnError.argument("max_order must be in 0...16, got \(maxOrder)") }
        guard disableCacheBeforeStep >= -(1 << 30), disableCacheBeforeStep <= 1 << 30 else {
            throw DiffAttnError.argument("disable_cache_before_step is out of range: \(disableCacheBeforeStep)")
        }
    }
}

/// `TaylorSeerState` of one module in one context.
struct TaylorSeerState {
    var currentStep = -1
    var lastUpdateStep: Int?
    var factors: [[Tensor]] = []  // per output: order → factor
    var inactiveShapes: [[Int]]?
}

/// `TaylorSeerCacheHook` (stateful): on attention modules it wraps the forward; on host-run
/// modules (blocks, `proj_out`) it answers the block protocol, a prediction being the output.
public final class TaylorSeerCacheHook: ModelHook, BlockHook, @unchecked Sendable {
    let config: TaylorSeerCacheConfig
    let inactive: Bool
    let states: CacheStates<TaylorSeerState>

    init(_ config: TaylorSeerCacheConfig, inactive: Bool, context: HookContext) {
        self.config = config; self.inactive = inactive
        states = CacheStates(context: context) { TaylorSeerState() }
    }

    public override var isStateful: Bool { true }
    public override var hasNewForward: Bool { true }
    public override var hookDescription: String { "TaylorSeerCacheHook" }
    public override func resetState(_ module: HookRegistry) throws { states.reset() }

    /// Advances the step and decides (hooks/taylorseer_cache.py:TaylorSeerCacheHook; the refresh test uses floored modulo).
    private func shouldCompute() throws -> Bool {
        try states.with { s in
            s.currentStep += 1
            let c = config, step = s.currentStep, k = c.cacheInterval
            let m = ((step - c.disableCacheBeforeStep - 1) % k + k) % k
            return step < c.disableCacheBeforeStep || m == 0 || (c.disableCacheAfterStep.map { step >= $0 } ?? false)
        }
    }

    public override func newForward(_ module: HookRegistry, _ inputs: AttentionInputs?,
                                    _ next: (AttentionInputs?) throws -> [Tensor]) throws -> [Tensor] {
        if try shouldCompute() {
            let out = try next(inputs)
            try update(out)
            return out
        }
        return try predict()
    }

    public func blockBegin(_ module: HookRegistry, _ io: inout BlockIO) throws -> Bool {
        if try shouldCompute() { return true }
        let p = try predict()
        if io.outputForm {  // predictions have the recorded output shapes (spec hooks-newer §3.2)
            io.outputs = p
            return false
        }
        for (i, t) in p.prefix(2).enumerated() {  // the in-place form: outputs must fit the inputs
            let stream = i == 0 ? io.hiddenStates : io.encoderHiddenStates
            guard let stream, stream.shape == t.shape else {
                throw DiffAttnError.shape("TaylorSeer predicts output \(i) of '\(module.path)' with shape \(t.shape), which does not fit the module's input \(i == 0 ? "hidden_states" : "encoder_hidden_states") \(stream.map { "\($0.shape)" } ?? "(none)"); pass output buffers (da_block_io.outputs / module_begin(outputs=...))")
            }
        }
        io.hiddenStates = p[0]
        if p.count > 1 { io.encoderHiddenStates = p[1] }
        return false
    }

    public func blockEnd(_ module: HookRegistry, _ io: inout BlockIO) throws {
        if io.outputForm, let outs = io.outputs { return try update(outs) }
        try update([io.hiddenStates] + (io.encoderHiddenStates.map { [$0] } ?? []))
    }

    private func update(_ outputs: [Tensor]) throws {
        let c = config
        try states.with { s in
            if inactive {
                s.inactiveShapes = outputs.map(\.shape)
            } else {
                var all: [[Tensor]] = []
                for (i, f) in outputs.enumerated() {
                    var new = [f]
                    if let last = s.lastUpdateStep {
                        let delta = s.currentStep - last
                        guard delta != 0 else { throw DiffAttnError.value("Delta step cannot be zero for TaylorSeer update.") }
                        let prev = i < s.factors.count ? s.factors[i] : []
                        for j in 0..<c.maxOrder {
                            guard j < prev.count, prev[j].shape == new[j].shape else { break }
                            new.append(Tensor(shape: f.shape, storage: zip(new[j].storage, prev[j].storage).map { ($0 - $1) / Float(delta) }))
                        }
                    }
                    all.append(c.taylorFactorsBFloat16 ? new.map(TaylorSeerCacheHook.bfloat16) : new)
                }
                s.factors = all
            }
            s.lastUpdateStep = s.currentStep
        }
    }

    private func predict() throws -> [Tensor] {
        try states.with { s in
            guard let last = s.lastUpdateStep else { throw DiffAttnError.value("Cannot predict without prior initialization/update.") }
            if inactive {
                guard let shapes = s.inactiveShapes else { throw DiffAttnError.value("Inactive shapes not set during prediction.") }
                return shapes.map { Tensor(shape: $0, repeating: 0) }
            }
            guard !s.factors.isEmpty else { throw DiffAttnError.value("Taylor factors empty during prediction.") }
            let offset = Float(s.currentStep - last)
            let orders = s.factors[0].count
            return s.factors.map { fs in
                var out = Tensor(shape: fs[0].shape, repeating: 0)
                var coeff: Float = 1
                for order in 0..<min(orders, fs.count) {
                    if order > 0 { coeff *= offset / Float(order) }
                    for k in out.storage.indices { out.storage[k] += fs[order].storage[k] * coeff }
                }
                return out
            }
        }
    }

    /// Round to nearest even bfloat16, kept as float32.
    static func bfloat16(_ t: Tensor) -> Tensor {
        Tensor(shape: t.shape, storage: t.storage.map { v in
            guard v.isFinite else { return v }
            let b = v.bitPattern
            return Float(bitPattern: (b &+ 0x7FFF &+ ((b >> 16) & 1)) & 0xFFFF_0000)
        })
    }
}

extension Model {
    public static let taylorSeerHookName = "taylorseer_cache"
    static let taylorSeerDefaultPatterns = ["^blocks.*attn", "^transformer_blocks.*attn", "^single_transformer_blocks.*attn",
                                            "^temporal_transformer_blocks.*attn"]

    /// `apply_taylorseer_cache(module, config)`: one hook per selected module (full-match on the
    /// dotted path). Lite mode: every block inactive, `proj_out` active. Returns (path, active).
    @discardableResult
    public func applyTaylorSeerCache(_ config: TaylorSeerCacheConfig) throws -> [(String, Bool)] {
        try config.validate()
        var inactiveP = config.skipPredictIdentifiers ?? []
        var activeP = config.cacheIdentifiers ?? []
        if activeP.isEmpty { activeP = Model.taylorSeerDefaultPatterns }  // `active or defaults`
        if config.useLiteMode {
            inactiveP = ["^[^.]*block[^.]*\\.[^.]+$"]; activeP = ["^proj_out$"]
            _ = root.path("proj_out")  // host-run: the node exists once lite mode asks for it
        }
        let inactive = try compileRegexes(inactiveP), active = try compileRegexes(activeP)
        var plan: [(String, Bool)] = []
        root.walk { path, _ in
            if regexFullMatch(inactive, path) { plan.append((path, false)) } else if regexFullMatch(active, path) { plan.append((path, true)) }
        }
        for (p, isActive) in plan {
            try replaceHook(TaylorSeerCacheHook(config, inactive: !isActive, context: hookContext), name: Model.taylorSeerHookName, at: p)
        }
        return plan
    }
}
