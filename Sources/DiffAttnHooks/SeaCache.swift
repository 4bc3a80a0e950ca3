import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels
import Glibc

/// diffusers' `SeaCacheConfig` (hooks/sea_cache.py): a residual cache over the whole block stack,
/// gated by the spectral ("SEA") change of the raw latents between scheduler steps. The raw latents
/// (what diffusers' `raw_vision_callback` returns, (C, T, H, W) each) are supplied by the host per
/// call (`Model.setRawVision`); the step, sigma and step count come from the cache context.
public struct SeaCacheConfig: Sendable {
    public var threshold = 0.25
    public var residualOrder = 1
    public var retentionSteps = 1
    public var cacheEndSteps = 1
    public var maxConsecutiveCached = 2
    public var powerExp = 3.0
    public init() {}

    /// diffusers' `__post_init__` checks, with its messages.
    public func validate() throws {
        guard threshold.isFinite, threshold >= 0 else { throw DiffAttnError.value("`threshold` must be non-negative, got \(threshold).") }
        guard residualOrder == 0 || residualOrder == 1 else { throw DiffAttnError.value("`residual_order` must be 0 or 1, got \(residualOrder).") }
        guard retentionSteps >= 0 else { throw DiffAttnError.value("`retention_steps` must be non-negative, got \(retentionSteps).") }
        guard cacheEndSteps >= 0 else { throw DiffAttnError.value("`cache_end_steps` must be non-negative, got \(cacheEndSteps).") }
        guard maxConsecutiveCached >= 0 else {
            throw DiffAttnError.value("`max_consecutive_cached` must be a non-negative integer, got \(maxConsecutiveCached).")
        }
        guard powerExp.isFinite, powerExp > 0 else { throw DiffAttnError.value("`power_exp` must be positive, got \(powerExp).") }
    }
}

/// `SeaCacheContextState`: the trajectory of one cache context and the current call.
struct SeaState {
    var history: [(step: Int, encoder: Tensor?, residual: Tensor)] = []
    var gateKey: (step: Int, sigma: Double)?
    var gateShouldCompute = true
    var previousIndicator: [Tensor]?
    var accumulated = 0.0
    var consecutive = 0
    // per call
    var skipRemaining = false
    var fullPending = false
    var cacheable = false
    var stepIndex: Int?
    var genInput: Tensor?

    mutating func resetForward() {
        skipRemaining = false; fullPending = false; cacheable = false; stepIndex = nil; genInput = nil
    }

    mutating func resetTrajectory() {
        history = []; gateKey = nil; gateShouldCompute = true; previousIndicator = nil; accumulated = 0; consecutive = 0
    }
}

/// What every SeaCache hook of one model shares.
final class SeaShared: @unchecked Sendable {
    let config: SeaCacheConfig
    let states: CacheStates<SeaState>
    let lock = Locked()
    var rawVision: [Tensor]?
    /// diffusers' `warn_once` messages seen (fail-open reasons), for diagnostics.
    var warned: [String] = []
    /// The accumulated distance after the last gate (diagnostics, tests).
    var lastAccumulated: Double?

    init(_ config: SeaCacheConfig, context: HookContext) {
        self.config = config
        states = CacheStates(context: context) { SeaState() }
    }

    func warn(_ message: String) { lock.run { if !warned.contains(message) { warned.append(message) } } }
}

/// `SeaCacheRootHook` (stateful; holds the shared state for `reset_stateful_hooks`),
/// `SeaCacheLeaderBlockHook` (decides) and `SeaCacheBlockHook` (passes through; the tail records).
public final class SeaCacheHook: ModelHook, BlockHook, @unchecked Sendable {
    enum Role { case root, leader, middle, tail }
    let shared: SeaShared
    let role: Role

    init(_ shared: SeaShared, role: Role) { self.shared = shared; self.role = role }

    public override var isStateful: Bool { role == .root }
    public override var hookDescription: String {
        switch role {
        case .root: return "SeaCacheRootHook"
        case .leader: return "SeaCacheLeaderBlockHook"
        case .middle, .tail: return "SeaCacheBlockHook"
        }
    }

    public override func resetState(_ module: HookRegistry) throws {
        shared.states.reset()
        shared.lock.run { shared.rawVision = nil; shared.warned = [] }
    }

    private var hasContext: Bool { shared.states.context.cacheContext != nil }

    public func blockBegin(_ module: HookRegistry, _ io: inout BlockIO) throws -> Bool {
        guard hasContext else {
            if role == .leader { shared.warn("SeaCache requires a cache context for each transformer call; running in fail-open mode.") }
            return true
        }
        switch role {
        case .root: return true
        case .middle, .tail:
            // A single block carries leader and tail (tail outermost): the leader, asked next, decides
            // for this call (diffusers resets the per-call state in the root hook, which a host-run
            // model has no call for).
            if module.hook(named: Model.seaCacheLeaderHookName) != nil { return true }
            return try shared.states.with { s in !s.skipRemaining }  // skipped: pass-through
        case .leader: return try lead(&io)
        }
    }

    public func blockEnd(_ module: HookRegistry, _ io: inout BlockIO) throws {
        guard role == .tail, hasContext else { return }
        let order = shared.config.residualOrder
        try shared.states.with { s in
            guard !s.skipRemaining, s.fullPending else { return }
            s.consecutive = 0
            if s.cacheable, let step = s.stepIndex, let input = s.genInput, io.hiddenStates.shape == input.shape {
                // hidden and encoder streams of a Flux/CogVideoX block are both present here
                s.history.append((step, io.encoderHiddenStates, try CacheMath.sub(io.hiddenStates, input, "SeaCache residual")))
                s.history = Array(s.history.suffix(order + 1))
            }
            s.resetForward()
        }
    }

    /// The leader: metadata (diffusers' root pre_forward), the indicator, the gate, and on reuse
    /// the stack's output from the cached residual.
    private func lead(_ io: inout BlockIO) throws -> Bool {
        let c = shared.config
        let raw = shared.lock.run { () -> [Tensor]? in defer { shared.rawVision = nil }; return shared.rawVision }
        let info = shared.states.context.cacheContextInfo
        return try shared.states.with { s in
            s.resetForward()
            s.fullPending = true
            s.genInput = io.hiddenStates
            guard let step = info.stepIndex, let sigma = info.sigma, let n = info.numInferenceSteps else {
                shared.warn("SeaCache is running in fail-open mode because the scheduler step, sigma, and step count are required: pass them as `cache_context(name, step_index=..., sigma=..., num_inference_steps=...)`.")
                return true
            }
            guard step >= 0, n > 0, step < n, sigma.isFinite, sigma >= 0, sigma <= 1 else {
                shared.warn("SeaCache scheduler metadata is invalid; expected a valid step index and exact sigma in [0, 1].")
                return true
            }
            guard let raw, !raw.isEmpty else {
                shared.warn("SeaCache requires raw vision latents containing at least one noisy frame; action-only, sound-only, conditioning-only, and unsupported model calls run in fail-open mode.")
                return true
            }
            s.stepIndex = step
            s.cacheable = true
            let indicator = try raw.map { try SeaFilter.apply($0, sigma: sigma, powerExp: c.powerExp) }
            let compute = gate(&s, step: step, sigma: sigma, steps: n, indicator: indicator)
            shared.lock.run { shared.lastAccumulated = s.accumulated }
            if compute || s.history.isEmpty {
                if !compute {
                    s.accumulated = 0
                    shared.warn("SeaCache selected a cache hit without residual history; running in fail-open mode.")
                }
                return true
            }
            let window = Array(s.history.suffix(c.residualOrder + 1))
            let latest = window[window.count - 1]
            let encoderMismatch = (io.encoderHiddenStates == nil) != (latest.encoder == nil)
                || (io.encoderHiddenStates.map { e in latest.encoder.map { $0.shape != e.shape } ?? true } ?? false)
            if window.contains(where: { $0.residual.shape != io.hiddenStates.shape }) || encoderMismatch {
                s.history = []
                s.accumulated = 0
                shared.warn("SeaCache residual history changed shape, device, or dtype; running in fail-open mode.")
                return true
            }
            var r = latest.residual
            if c.residualOrder == 1, window.count >= 2, latest.step != window[window.count - 2].step {
                let prev = window[window.count - 2]
                // diffusers: latest + (latest − previous) · (step − l) / (l − p), in float32
                let scale = Float(Double(step - latest.step) / Double(latest.step - prev.step))
                r = Tensor(shape: r.shape, storage: zip(latest.residual.storage, prev.residual.storage).map { $0 + ($0 - $1) * scale })
            }
            s.skipRemaining = true
            s.fullPending = false
            s.consecutive += 1
            io.hiddenStates = try CacheMath.add(io.hiddenStates, r, "SeaCache residual")
            io.encoderHiddenStates = latest.encoder
            return false
        }
    }

    /// `SeaCacheSharedState.resolve_gate`: true = compute.
    private func gate(_ s: inout SeaState, step: Int, sigma: Double, steps n: Int, indicator: [Tensor]) -> Bool {
        let c = shared.config
        if let key = s.gateKey, key.step == step, key.sigma == sigma { return s.gateShouldCompute }
        let nonAdjacent = s.gateKey.map { step != $0.step + 1 } ?? false
        if nonAdjacent {
            shared.warn("SeaCache received non-adjacent scheduler steps; running full.")
            s.resetTrajectory()
        }
        let maxed = c.maxConsecutiveCached > 0 && s.consecutive >= c.maxConsecutiveCached
        let forced = nonAdjacent || step < c.retentionSteps || step >= n - c.cacheEndSteps || s.previousIndicator == nil || maxed
        var candidate = 0.0
        var compute = true
        if !forced, let prev = s.previousIndicator {
            var distance = 0.0
            var invalid = prev.count != indicator.count || indicator.isEmpty
            if !invalid {
                for (cur, old) in zip(indicator, prev) {
                    guard cur.shape == old.shape else { invalid = true; break }
                    let num = zip(cur.storage, old.storage).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / Double(max(cur.count, 1))
                    let den = CacheMath.meanAbs(old) + 1e-16
                    distance += Double(Float(num) / Float(den))
                }
                distance /= Double(indicator.count)
            }
            if invalid { shared.warn("SeaCache indicator history changed shape, device, or dtype; running full.") }
            candidate = s.accumulated + (invalid ? .infinity : distance)
            compute = invalid || candidate >= c.threshold
        }
        if maxed { compute = true }
        s.accumulated = compute ? 0 : candidate
        s.gateKey = (step, sigma)
        s.gateShouldCompute = compute
        s.previousIndicator = indicator
        return compute
    }
}

/// The SEA filter (`_apply_sea_filter`): a per-axis Wiener gain over the (T, H, W) spectrum of a
/// (C, T, H, W) latent, normalised to unit mean. The gain is separable and even in frequency, so
/// it is applied as three circular convolutions with real kernels (the inverse DFT of each axis'
/// gain): the same linear map as diffusers' FFT form. Output layout (T, H, W, C), as diffusers'.
public enum SeaFilter {
    public static func apply(_ x: Tensor, sigma: Double, powerExp: Double) throws -> Tensor {
        guard x.shape.count == 4 else { throw DiffAttnError.shape("SeaCache raw latents must be (C, T, H, W), got \(x.shape)") }
        let (ch, t, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let sg = max(1e-6, min(1 - 1e-6, sigma))
        let signal = 1 - sg, noise = sg
        // per-axis gains in float32 as diffusers computes them
        func gains(_ l: Int) -> [Float] {
            (0..<l).map { k in
                let f = Float(k < (l + 1) / 2 ? k : k - l) / Float(l)
                let p = 1 / (Float(pow(Double(abs(f)), powerExp)) + Float(1e-16))
                return Float(signal) * p / (Float(signal * signal) * p + Float(noise * noise) + Float(1e-16))
            }
        }
        let gt = gains(t), gh = gains(h), gw = gains(w)
        let mean = gt.reduce(0.0) { $0 + Double($1) } / Double(t) * (gh.reduce(0.0) { $0 + Double($1) } / Double(h))
            * (gw.reduce(0.0) { $0 + Double($1) } / Double(w))
        let norm = mean.isFinite && mean > 0 ? mean : 1
        // circular-convolution kernels: k[d] = (1/L) Σ_f g[f] cos(2π f d / L)
        func kernel(_ g: [Float]) -> [Double] {
            let l = g.count
            return (0..<l).map { d in
                (0..<l).reduce(0.0) { $0 + Double(g[$1]) * cos(2 * Double.pi * Double($1 * d) / Double(l)) } / Double(l)
            }
        }
        let kt = kernel(gt), kh = kernel(gh), kw = kernel(gw)
        // (T, H, W, C) working copy in double
        var a = [Double](repeating: 0, count: x.count)
        for c in 0..<ch { for i in 0..<t { for j in 0..<h { for k in 0..<w {
            a[((i * h + j) * w + k) * ch + c] = Double(x.storage[((c * t + i) * h + j) * w + k])
        } } } }
        func convolve(_ len: Int, _ stride: Int, _ kern: [Double]) {
            guard len > 1 else { a = a.map { $0 * kern[0] }; return }
            var out = [Double](repeating: 0, count: a.count)
            let outer = a.count / (len * stride)
            for o in 0..<outer {
                for inner in 0..<stride {
                    let base = o * len * stride + inner
                    for i in 0..<len {
                        var acc = 0.0
                        for d in 0..<len { acc += kern[d] * a[base + ((i - d + len) % len) * stride] }
                        out[base + i * stride] = acc
                    }
                }
            }
            a = out
        }
        convolve(t, h * w * ch, kt)
        convolve(h, w * ch, kh)
        convolve(w, ch, kw)
        return Tensor(shape: [t, h, w, ch], storage: a.map { Float($0 / norm) })
    }
}

extension Model {
    public static let seaCacheRootHookName = "sea_cache_root"
    public static let seaCacheLeaderHookName = "sea_cache_leader_block"
    public static let seaCacheBlockHookName = "sea_cache_block"

    /// `apply_sea_cache(module, config)` (generic path): root, leader on the first block, block hooks
    /// on the others, the last one recording. Returns the hooked paths.
    @discardableResult
    public func applySeaCache(_ config: SeaCacheConfig) throws -> [String] {
        try config.validate()
        let blocks = transformerBlockPaths
        guard !blocks.isEmpty else { throw DiffAttnError.value("SeaCache found no repeated transformer blocks on the model.") }
        let shared = SeaShared(config, context: hookContext)
        try replaceHook(SeaCacheHook(shared, role: .root), name: Model.seaCacheRootHookName, at: "")
        if blocks.count == 1 {  // leader then tail on the same block, tail outermost (as diffusers)
            try replaceHook(SeaCacheHook(shared, role: .leader), name: Model.seaCacheLeaderHookName, at: blocks[0])
            try replaceHook(SeaCacheHook(shared, role: .tail), name: Model.seaCacheBlockHookName, at: blocks[0])
        } else {
            for (i, p) in blocks.enumerated() {
                let role: SeaCacheHook.Role = i == 0 ? .leader : i == blocks.count - 1 ? .tail : .middle
                try replaceHook(SeaCacheHook(shared, role: role), name: i == 0 ? Model.seaCacheLeaderHookName : Model.seaCacheBlockHookName, at: p)
            }
        }
        return [""] + blocks
    }

    /// The raw latents of the next transformer call (diffusers' `raw_vision_callback` result), each
    /// (C, T, H, W); consumed by the SeaCache leader. nil/empty = none (the call runs in full).
    public func setRawVision(_ latents: [Tensor]?) throws {
        guard let root = try hookRegistry(at: "").hook(named: Model.seaCacheRootHookName) as? SeaCacheHook else {
            throw DiffAttnError.state("SeaCache is not applied to this model")
        }
        for l in latents ?? [] where l.shape.count != 4 {
            throw DiffAttnError.shape("SeaCache raw latents must be (C, T, H, W), got \(l.shape)")
        }
        root.shared.lock.run { root.shared.rawVision = latents }
    }

    /// The accumulated distance after the last gate (nil before any), for diagnostics.
    public var seaCacheAccumulatedDistance: Double? {
        guard let r = try? hookRegistry(at: ""), let root = r.hook(named: Model.seaCacheRootHookName) as? SeaCacheHook else { return nil }
        return root.shared.lock.run { root.shared.lastAccumulated }
    }
}
