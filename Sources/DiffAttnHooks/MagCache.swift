import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `MagCacheConfig` (hooks/mag_cache.py:MagCacheConfig). `magRatios` are resampled to
/// `numInferenceSteps` by nearest neighbour (round half to even) when their length differs.
public struct MagCacheConfig: Sendable {
    public var threshold = 0.06
    public var maxSkipSteps = 3
    public var retentionRatio = 0.2
    public var numInferenceSteps = 28
    public var magRatios: [Double]?
    public var calibrate = false

    public init(threshold: Double = 0.06, maxSkipSteps: Int = 3, retentionRatio: Double = 0.2, numInferenceSteps: Int = 28,
                magRatios: [Double]? = nil, calibrate: Bool = false) throws {
        self.threshold = threshold; self.maxSkipSteps = maxSkipSteps; self.retentionRatio = retentionRatio
        self.numInferenceSteps = numInferenceSteps; self.calibrate = calibrate
        guard maxSkipSteps >= 0 else { throw DiffAttnError.argument("max_skip_steps must be non-negative, got \(maxSkipSteps)") }
        try checkInferenceSteps(numInferenceSteps)
        guard let r = magRatios, !r.isEmpty || calibrate else {
            if calibrate { return }
            throw DiffAttnError.value("`mag_ratios` must be provided for MagCache inference because these ratios are model-dependent. To get them for your model, set `calibrate=True` in the config and run one full inference pass.")
        }
        guard r.allSatisfy(\.isFinite) else { throw DiffAttnError.value("mag_ratios must be finite") }
        self.magRatios = calibrate || r.count == numInferenceSteps ? r : MagCacheConfig.resample(r, numInferenceSteps)
    }

    /// Nearest-neighbour resampling as `torch.round(linspace)` (half to even).
    package static func resample(_ r: [Double], _ n: Int) -> [Double] {
        if n == 1 { return [r[r.count - 1]] }
        return (0..<n).map { k in r[Int((Double(k) * Double(r.count - 1) / Double(n - 1)).rounded(.toNearestOrEven))] }
    }

    /// `FLUX_MAG_RATIOS` (28 steps), diffusers' table.
    public static let fluxMagRatios: [Double] = [1.0, 1.21094, 1.11719, 1.07812, 1.0625, 1.03906, 1.03125, 1.03906, 1.02344, 1.03125,
                                                 1.02344, 0.98047, 1.01562, 1.00781, 1.0, 1.00781, 1.0, 1.00781, 1.0, 1.0,
                                                 0.99609, 0.99609, 0.98047, 0.98828, 0.96484, 0.95703, 0.93359, 0.89062]
}

/// `MagCacheState`.
struct MagCacheState {
    var previousResidual: Tensor?
    var headInput: Tensor?
    var shouldCompute = true
    var accRatio = 1.0, accErr = 0.0, accSteps = 0, stepIndex = 0
    var calibrationRatios: [Double] = []
}

/// `MagCacheHeadHook` / `MagCacheBlockHook` (hooks/mag_cache.py:MagCacheBlockHook) behind the block protocol.
public final class MagCacheHook: ModelHook, BlockHook, @unchecked Sendable {
    let states: CacheStates<MagCacheState>
    let config: MagCacheConfig
    let isHead: Bool, isTail: Bool
    /// The calibration ratios of the last completed calibration run (diffusers prints them).
    let calibration: CalibrationBox

    init(_ states: CacheStates<MagCacheState>, _ config: MagCacheConfig, head: Bool, tail: Bool, calibration: CalibrationBox) {
        self.states = states; self.config = config; isHead = head; isTail = tail; self.calibration = calibration
    }

    public override var isStateful: Bool { isHead }
    public override var hookDescription: String { isHead ? "MagCacheHeadHook" : "MagCacheBlockHook" }
    public override func resetState(_ module: HookRegistry) throws { states.reset() }

    public func blockBegin(_ module: HookRegistry, _ io: inout BlockIO) throws -> Bool {
        let c = config
        return try states.with { s in
            if isHead {
                s.headInput = io.hiddenStates
                var compute = true
                if !c.calibrate {
                    let ratios = c.magRatios ?? []
                    let scale = s.stepIndex < ratios.count ? ratios[s.stepIndex] : 1.0
                    let retention = Int(c.retentionRatio * Double(c.numInferenceSteps) + 0.5)
                    if s.stepIndex >= retention {
                        s.accRatio *= scale; s.accSteps += 1; s.accErr += abs(1 - s.accRatio)
                        if s.previousResidual != nil && s.accErr <= c.threshold && s.accSteps <= c.maxSkipSteps {
                            compute = false
                        } else {
                            s.accRatio = 1; s.accSteps = 0; s.accErr = 0
                        }
                    }
                }
                s.shouldCompute = compute
                if !compute, let res = s.previousResidual { io.hiddenStates = MagCacheHook.addResidual(io.hiddenStates, res) }
                return compute
            }
            if !s.shouldCompute, isTail { advance(&s) }
            return s.shouldCompute
        }
    }

    public func blockEnd(_ module: HookRegistry, _ io: inout BlockIO) throws {
        guard isTail else { return }
        try states.with { s in
            guard let input = s.headInput else { return }
            let out = io.hiddenStates
            let residual: Tensor
            if out.shape == input.shape {
                residual = try CacheMath.sub(out, input, "MagCache residual")
            } else if out.rank == 3, input.rank == 3, out.shape[2] == input.shape[2], out.shape[1] > input.shape[1] {
                residual = try CacheMath.sub(MagCacheHook.trailingTokens(out, input.shape[1]), input, "MagCache residual")
            } else {
                residual = out
            }
            if config.calibrate {
                s.calibrationRatios.append(s.previousResidual.map { MagCacheHook.normRatio(residual, $0) } ?? 1.0)
            }
            s.previousResidual = residual
            advance(&s)
        }
    }

    private func advance(_ s: inout MagCacheState) {
        s.stepIndex += 1
        guard s.stepIndex >= config.numInferenceSteps else { return }
        if config.calibrate { calibration.set(s.calibrationRatios) }
        s = MagCacheState()
    }

    /// `input + residual`, or onto the trailing tokens when the input is longer (hooks/mag_cache.py:MagCacheBlockHook).
    static func addResidual(_ x: Tensor, _ r: Tensor) -> Tensor {
        if x.shape == r.shape { return Tensor(shape: x.shape, storage: zip(x.storage, r.storage).map(+)) }
        guard x.rank == 3, r.rank == 3, x.shape[0] == r.shape[0], x.shape[2] == r.shape[2], x.shape[1] > r.shape[1] else { return x }
        var out = x
        let (n, d, skip) = (x.shape[1], x.shape[2], x.shape[1] - r.shape[1])
        for b in 0..<x.shape[0] { for t in 0..<r.shape[1] { for k in 0..<d {
            out.storage[(b * n + skip + t) * d + k] += r.storage[(b * r.shape[1] + t) * d + k]
        } } }
        return out
    }

    static func trailingTokens(_ x: Tensor, _ keep: Int) -> Tensor {
        let (n, d) = (x.shape[1], x.shape[2])
        var s: [Float] = []
        for b in 0..<x.shape[0] { s += x.storage[((b * n + n - keep) * d)..<((b + 1) * n * d)] }
        return Tensor(shape: [x.shape[0], keep, d], storage: s)
    }

    /// mean over tokens of ‖cur‖ / (‖prev‖ + 1e−8), norms over the last axis.
    static func normRatio(_ cur: Tensor, _ prev: Tensor) -> Double {
        guard cur.shape == prev.shape, let d = cur.shape.last, d > 0 else { return 1.0 }
        let rows = cur.count / d
        var sum = 0.0
        for i in 0..<rows {
            let a = cur.storage[(i * d)..<((i + 1) * d)].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let b = prev.storage[(i * d)..<((i + 1) * d)].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            sum += a / (b + 1e-8)
        }
        return sum / Double(max(rows, 1))
    }
}

final class CalibrationBox: @unchecked Sendable {
    private let lock = Locked()
    private var ratios: [Double]?
    func set(_ r: [Double]) { lock.run { ratios = r } }
    var value: [Double]? { lock.run { ratios } }
}

extension Model {
    public static let magCacheLeaderHookName = "mag_cache_leader_block_hook"
    public static let magCacheBlockHookName = "mag_cache_block_hook"

    /// `apply_mag_cache(module, config)`: re-application replaces the hooks. Returns the blocks.
    @discardableResult
    public func applyMagCache(_ config: MagCacheConfig) throws -> [String] {
        let blocks = transformerBlockPaths
        guard !blocks.isEmpty else { return [] }  // diffusers warns and returns
        let states = CacheStates<MagCacheState>(context: hookContext, defaultContext: "inference") { MagCacheState() }
        let box = CalibrationBox()
        try installHeadTailHooks(blocks, headName: Model.magCacheLeaderHookName, blockName: Model.magCacheBlockHookName) {
            MagCacheHook(states, config, head: $0, tail: $1, calibration: box)
        }
        return blocks
    }

    /// The ratios of the last completed calibration run (nil before one completed).
    public var magCacheCalibrationRatios: [Double]? {
        guard let p = transformerBlockPaths.first,
              let h = (try? hookRegistry(at: p))?.hook(named: Model.magCacheLeaderHookName) as? MagCacheHook else { return nil }
        return h.calibration.value
    }
}
