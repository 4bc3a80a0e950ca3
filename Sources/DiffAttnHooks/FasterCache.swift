import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `FasterCacheConfig` (hooks/faster_cache.py:FasterCacheConfig). Timestep ranges are strict (`low < t < high`).
public struct FasterCacheConfig: @unchecked Sendable {
    public var spatialAttentionBlockSkipRange: Int? = 2
    public var temporalAttentionBlockSkipRange: Int?
    public var spatialAttentionTimestepSkipRange: (Double, Double) = (-1, 681)
    public var temporalAttentionTimestepSkipRange: (Double, Double) = (-1, 681)
    public var lowFrequencyWeightUpdateTimestepRange: (Double, Double) = (99, 901)
    public var highFrequencyWeightUpdateTimestepRange: (Double, Double) = (-1, 301)
    public var alphaLowFrequency = 1.1
    public var alphaHighFrequency = 1.1
    public var unconditionalBatchSkipRange = 5
    public var unconditionalBatchTimestepSkipRange: (Double, Double) = (-1, 641)
    public var spatialAttentionBlockIdentifiers = ["^blocks.*attn", "^transformer_blocks.*attn", "^single_transformer_blocks.*attn"]
    public var temporalAttentionBlockIdentifiers = ["^temporal_transformer_blocks.*attn"]
    /// `attention_weight_callback(module path)`; nil = diffusers' constant 0.5.
    public var attentionWeightCallback: ((String) throws -> Double)?
    /// `low_frequency_weight_callback(module)` / `high_...`: the weight of the recorded low/high
    /// frequency delta on a step that skips the unconditional half; nil = diffusers' default
    /// (`alpha_*` inside the matching timestep range, else 1).
    public var lowFrequencyWeightCallback: (() throws -> Double)?
    public var highFrequencyWeightCallback: (() throws -> Double)?
    public var tensorFormat = "BCFHW"
    public var isGuidanceDistilled = false
    /// nil = the timestep given to `Model.beginStep`.
    public var currentTimestepCallback: (() throws -> Double?)?

    public init() {}
}

/// `FasterCacheBlockHook` (stateful): an attention module's output extrapolated from its last two.
public final class FasterCacheBlockHook: ModelHook, @unchecked Sendable {
    let skipRange: Int
    let range: (Double, Double)
    let distilled: Bool
    let weight: (String) throws -> Double
    let timestep: () throws -> Double
    private let lock = Locked()
    private var iteration = 0
    private var batchSize: Int?
    private var cache: ([Tensor], [Tensor])?

    init(skipRange: Int, range: (Double, Double), distilled: Bool, weight: @escaping (String) throws -> Double,
         timestep: @escaping () throws -> Double) {
        self.skipRange = skipRange; self.range = range; self.distilled = distilled; self.weight = weight; self.timestep = timestep
    }

    public override var isStateful: Bool { true }
    public override var hasNewForward: Bool { true }
    public override var hookDescription: String { "FasterCacheBlockHook" }
    public override func resetState(_ module: HookRegistry) throws { lock.run { iteration = 0; batchSize = nil; cache = nil } }

    public override func newForward(_ module: HookRegistry, _ inputs: AttentionInputs?,
                                    _ next: (AttentionInputs?) throws -> [Tensor]) throws -> [Tensor] {
        guard let b = inputs?.hiddenStates.shape.first else { throw DiffAttnError.state("FasterCache: the attention call has no hidden_states") }
        let (full, n, cached) = lock.run { () -> (Int, Int, ([Tensor], [Tensor])?) in
            if batchSize == nil { batchSize = b }
            return (batchSize!, iteration, cache)
        }
        let t = try timestep()
        var skip = range.0 < t && t < range.1 && !(n > 0 && n % skipRange == 0)
        skip = skip && (distilled || full != b)  // the unconditional-branch reuse rule (hooks/faster_cache.py:FasterCacheBlockHook)
        let out: [Tensor]
        if skip {
            // diffusers crashes on an empty cache here (hooks/faster_cache.py:FasterCacheBlockHook): an error instead.
            guard let (older, newer) = cached else { throw DiffAttnError.state("FasterCache: nothing cached to extrapolate from at '\(module.path)'") }
            let w = Float(try weight(module.path))
            out = try zip(older, newer).map { o, nw in
                let o2 = try condHalf(o, b), n2 = try condHalf(nw, b)
                return Tensor(shape: n2.shape, storage: zip(o2.storage, n2.storage).map { $1 + ($1 - $0) * w })
            }
        } else {
            out = try next(inputs)
        }
        let keep = out.map { o in !distilled && o.shape.first == full ? (try? condHalf(o, full / 2)) ?? o : o }
        lock.run { cache = (cache?.1 ?? keep, keep); iteration += 1 }
        return out
    }

    /// The second (conditional) half along dim 0 when `t` holds twice `batch` rows.
    private func condHalf(_ t: Tensor, _ batch: Int) throws -> Tensor {
        guard let rows = t.shape.first, rows != batch else { return t }
        guard rows == 2 * batch else { throw DiffAttnError.shape("FasterCache: cached batch \(rows) is neither \(batch) nor twice it") }
        let per = t.count / rows
        var shape = t.shape; shape[0] = batch
        return Tensor(shape: shape, storage: Array(t.storage[(batch * per)...]))
    }
}

extension Model {
    public static let fasterCacheDenoiserHookName = "faster_cache_denoiser"
    public static let fasterCacheBlockHookName = "faster_cache_block"
    /// The attention paths FasterCache considers at all (hooks/faster_cache.py:apply_faster_cache; searched, anchored at the start).
    static let fasterCacheCandidatePatterns = ["^blocks.*attn", "^transformer_blocks.*attn", "^single_transformer_blocks.*attn",
                                               "^temporal_transformer_blocks.*attn"]

    /// `apply_faster_cache(module, config)`: the denoiser hook on the root, block hooks on the
    /// matching attention modules. Returns the hooked attention paths with their kind.
    @discardableResult
    public func applyFasterCache(_ config: inout FasterCacheConfig) throws -> [(String, String)] {
        guard ["BCFHW", "BFCHW", "BCHW"].contains(config.tensorFormat) else {
            throw DiffAttnError.value("`tensor_format` must be one of ['BCFHW', 'BFCHW', 'BCHW'], but got \(config.tensorFormat).")
        }
        for (r, what) in [(config.spatialAttentionBlockSkipRange, "spatial"), (config.temporalAttentionBlockSkipRange, "temporal")] {
            if let r, r < 1 { throw DiffAttnError.value("\(what)_attention_block_skip_range must be at least 1, got \(r)") }
        }
        guard config.unconditionalBatchSkipRange >= 1 else {
            throw DiffAttnError.value("unconditional_batch_skip_range must be at least 1, got \(config.unconditionalBatchSkipRange)")
        }
        let context = hookContext
        let cb = config.currentTimestepCallback
        let timestep: () throws -> Double = {
            guard let t = try cb?() ?? context.timestep else {
                throw DiffAttnError.type("'<' not supported between instances of 'int' and 'NoneType' (no current timestep: call the model inside begin_step/end_step)")
            }
            return t
        }
        if config.attentionWeightCallback == nil { config.attentionWeightCallback = { _ in 0.5 } }  // written back, as diffusers
        let candidates = try compileRegexes(Model.fasterCacheCandidatePatterns)
        let spatial = try compileRegexes(config.spatialAttentionBlockIdentifiers)
        let temporal = try compileRegexes(config.temporalAttentionBlockIdentifiers)
        var plan: [(String, String, Int, (Double, Double))] = []
        for (path, a) in attentionModules where regexSearch(candidates, path) {
            let isCross = a.derived.isCrossAttention
            if regexSearch(spatial, path), let n = config.spatialAttentionBlockSkipRange, !isCross {
                plan.append((path, "spatial", n, config.spatialAttentionTimestepSkipRange))
            } else if regexSearch(temporal, path), let n = config.temporalAttentionBlockSkipRange, !isCross {
                plan.append((path, "temporal", n, config.temporalAttentionTimestepSkipRange))
            }
        }
        try replaceHook(FasterCacheDenoiserHook(config, timestep: timestep), name: Model.fasterCacheDenoiserHookName, at: "")
        let weight = config.attentionWeightCallback!
        for (path, _, n, range) in plan {
            try replaceHook(FasterCacheBlockHook(skipRange: n, range: range, distilled: config.isGuidanceDistilled, weight: weight, timestep: timestep),
                            name: Model.fasterCacheBlockHookName, at: path)
        }
        return plan.map { ($0.0, $0.1) }
    }
}

func compileRegexes(_ patterns: [String]) throws -> [Regex<AnyRegexOutput>] {
    try patterns.map { p in
        do { return try Regex(p) } catch { throw DiffAttnError.value("block identifier '\(p)' is not a valid regular expression: \(error)") }
    }
}

func regexSearch(_ rs: [Regex<AnyRegexOutput>], _ s: String) -> Bool { rs.contains { s.firstMatch(of: $0) != nil } }

func regexFullMatch(_ rs: [Regex<AnyRegexOutput>], _ s: String) -> Bool { rs.contains { (try? $0.wholeMatch(in: s)) != nil } }
