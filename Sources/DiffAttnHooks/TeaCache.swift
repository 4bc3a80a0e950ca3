import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// TeaCache ("Timestep Embedding Tells: It's Time to Cache for Video Diffusion Models", Liu et
/// al. 2024). diffusers has no merged version; this follows the paper and its reference code:
/// the first block's timestep-modulated input is the indicator; its relative L1 change between
/// consecutive steps, rescaled by a fitted polynomial, is accumulated, and the whole block stack
/// is skipped (its last residual reused) while the sum stays below `relL1Thresh`. The first and
/// last step of a run always compute (and reset the sum).
public struct TeaCacheConfig: Sendable {
    public var relL1Thresh = 0.4
    /// Polynomial coefficients, highest degree first (`numpy.poly1d`); default: the FLUX fit.
    public var coefficients: [Double] = TeaCacheConfig.fluxCoefficients
    public var numInferenceSteps = 28

    public init(relL1Thresh: Double = 0.4, coefficients: [Double] = TeaCacheConfig.fluxCoefficients, numInferenceSteps: Int = 28) throws {
        guard relL1Thresh.isFinite, relL1Thresh >= 0 else { throw DiffAttnError.value("rel_l1_thresh must be a non-negative number, got \(relL1Thresh)") }
        guard !coefficients.isEmpty, coefficients.allSatisfy(\.isFinite) else { throw DiffAttnError.value("coefficients must be a non-empty list of finite numbers") }
        try checkInferenceSteps(numInferenceSteps)
        self.relL1Thresh = relL1Thresh; self.coefficients = coefficients; self.numInferenceSteps = numInferenceSteps
    }

    /// TeaCache4FLUX's fit.
    public static let fluxCoefficients = [4.98651651e+02, -2.83781631e+02, 5.58554382e+01, -3.82021401e+00, 2.64230861e-01]

    /// `poly1d(coefficients)(x)` by Horner's rule.
    package func rescale(_ x: Double) -> Double { coefficients.reduce(0) { $0 * x + $1 } }
}

/// The step count of MagCache and TeaCache: at least one step, and few enough for their tables.
func checkInferenceSteps(_ n: Int) throws {
    guard n >= 1, n <= 1 << 20 else { throw DiffAttnError.argument("num_inference_steps must be in 1...\(1 << 20), got \(n)") }
}

struct TeaCacheState {
    var count = 0
    var accumulated = 0.0
    var previousModulated: Tensor?
    var previousResidual: Tensor?
    var headInput: Tensor?
    var shouldCompute = true
}

/// The head decides at `block_begin` (it needs `modulated_input`), the tail stores the residual
/// of the whole stack; the blocks between pass through when skipped.
public final class TeaCacheHook: ModelHook, BlockHook, @unchecked Sendable {
    let states: CacheStates<TeaCacheState>
    let config: TeaCacheConfig
    let isHead: Bool, isTail: Bool

    init(_ states: CacheStates<TeaCacheState>, _ config: TeaCacheConfig, head: Bool, tail: Bool) {
        self.states = states; self.config = config; isHead = head; isTail = tail
    }

    public override var isStateful: Bool { isHead }
    public override var hookDescription: String { isHead ? "TeaCacheHeadHook" : "TeaCacheBlockHook" }
    public override func resetState(_ module: HookRegistry) throws { states.reset() }

    public func blockBegin(_ module: HookRegistry, _ io: inout BlockIO) throws -> Bool {
        let c = config
        return try states.with { s in
            guard isHead else { return s.shouldCompute }
            guard let m = io.modulatedInput else {
                throw DiffAttnError.value("TeaCache needs the first block's modulated input (BlockIO.modulatedInput / modulated_input) at the head block")
            }
            var compute = true
            if s.count == 0 || s.count == c.numInferenceSteps - 1 || s.previousModulated == nil {
                s.accumulated = 0
            } else {
                s.accumulated += c.rescale(try CacheMath.relativeL1(m, s.previousModulated!, "TeaCache modulated input"))
                if s.accumulated < c.relL1Thresh && s.previousResidual != nil { compute = false } else { s.accumulated = 0 }
            }
            s.previousModulated = m
            s.count += 1
            if s.count == c.numInferenceSteps { s.count = 0 }
            s.shouldCompute = compute
            s.headInput = io.hiddenStates
            if !compute { io.hiddenStates = try CacheMath.add(io.hiddenStates, s.previousResidual!, "TeaCache residual") }
            return compute
        }
    }

    public func blockEnd(_ module: HookRegistry, _ io: inout BlockIO) throws {
        guard isTail else { return }
        try states.with { s in
            guard let input = s.headInput else { return }
            s.previousResidual = try CacheMath.sub(io.hiddenStates, input, "TeaCache residual")
        }
    }
}

extension Model {
    public static let teaCacheLeaderHookName = "teacache_leader_block_hook"
    public static let teaCacheBlockHookName = "teacache_block_hook"

    /// `apply_teacache(module, config)`: head hook on the first transformer block, block hooks on
    /// the others. Returns the hooked blocks.
    @discardableResult
    public func applyTeaCache(_ config: TeaCacheConfig) throws -> [String] {
        let blocks = transformerBlockPaths
        guard !blocks.isEmpty else { throw DiffAttnError.value("TeaCache found no transformer blocks in this model") }
        let states = CacheStates<TeaCacheState>(context: hookContext, defaultContext: "inference") { TeaCacheState() }
        try installHeadTailHooks(blocks, headName: Model.teaCacheLeaderHookName, blockName: Model.teaCacheBlockHookName) {
            TeaCacheHook(states, config, head: $0, tail: $1)
        }
        return blocks
    }
}
