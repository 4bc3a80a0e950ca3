import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `FirstBlockCacheConfig` (hooks/first_block_cache.py).
public struct FirstBlockCacheConfig: Sendable {
    public var threshold = 0.05
    public init(threshold: Double = 0.05) { self.threshold = threshold }
}

/// `FBCSharedBlockState`: what the head and the other blocks of one context share.
struct FBCState {
    var headInput: Tensor?
    var headOutput: (Tensor, Tensor?)?
    var headResidual: Tensor?
    var tailResiduals: (Tensor, Tensor?)?
    var shouldCompute = true
}

/// `FBCHeadBlockHook` (leader, stateful) and `FBCBlockHook` (the others; `isTail` on the last).
public final class FirstBlockCacheHook: ModelHook, BlockHook, @unchecked Sendable {
    let states: CacheStates<FBCState>
    let threshold: Double
    let role: Role
    enum Role { case head, middle, tail }

    init(_ states: CacheStates<FBCState>, threshold: Double, role: Role) {
        self.states = states; self.threshold = threshold; self.role = role
    }

    public override var isStateful: Bool { role == .head }
    public override var hookDescription: String { role == .head ? "FBCHeadBlockHook" : "FBCBlockHook" }
    public override func resetState(_ module: HookRegistry) throws { states.reset() }

    public func blockBegin(_ module: HookRegistry, _ io: inout BlockIO) throws -> Bool {
        try states.with { s in
            if role == .head { s.headInput = io.hiddenStates; return true }
            return s.shouldCompute  // skipped: the inputs pass through unchanged
        }
    }

    public func blockEnd(_ module: HookRegistry, _ io: inout BlockIO) throws {
        let threshold = self.threshold
        try states.with { s in
            switch role {
            case .head:
                guard let input = s.headInput else { throw DiffAttnError.state("FirstBlockCache: block_end of the head block without block_begin") }
                let r = try CacheMath.sub(io.hiddenStates, input, "first block residual")
                if let prev = s.headResidual {
                    s.shouldCompute = try CacheMath.relativeL1(r, prev, "first block residual") > threshold
                } else {
                    s.shouldCompute = true
                }
                if s.shouldCompute {
                    s.headOutput = (io.hiddenStates, io.encoderHiddenStates)
                    s.headResidual = r
                } else if let (th, te) = s.tailResiduals {
                    io.hiddenStates = try CacheMath.add(th, io.hiddenStates, "cached tail residual")
                    if let te, let e = io.encoderHiddenStates { io.encoderHiddenStates = try CacheMath.add(te, e, "cached tail encoder residual") }
                } else {
                    throw DiffAttnError.state("FirstBlockCache: no tail residual cached (the tail block never ran)")
                }
            case .tail:
                guard let (hh, he) = s.headOutput else { return }
                let rh = try CacheMath.sub(io.hiddenStates, hh, "tail residual")
                var re: Tensor?
                if let e = io.encoderHiddenStates, let he { re = try CacheMath.sub(e, he, "tail encoder residual") }
                s.tailResiduals = (rh, re)
            case .middle:
                break
            }
        }
    }
}

extension Model {
    public static let fbcLeaderHookName = "fbc_leader_block_hook"
    public static let fbcBlockHookName = "fbc_block_hook"

    /// `apply_first_block_cache(module, config)`: head hook on the first transformer block, block
    /// hooks on the others (the last is the tail). Returns the hooked block paths.
    @discardableResult
    public func applyFirstBlockCache(_ config: FirstBlockCacheConfig) throws -> [String] {
        guard config.threshold.isFinite else { throw DiffAttnError.value("threshold must be finite, got \(config.threshold)") }
        let blocks = transformerBlockPaths
        // diffusers fails with "pop from empty list" (hooks/first_block_cache.py): a clear error instead.
        guard blocks.count >= 2 else {
            throw DiffAttnError.value("FirstBlockCache needs at least two transformer blocks, the model has \(blocks.count)")
        }
        let states = CacheStates<FBCState>(context: hookContext) { FBCState() }
        for (i, path) in blocks.enumerated() {
            let role: FirstBlockCacheHook.Role = i == 0 ? .head : (i == blocks.count - 1 ? .tail : .middle)
            try replaceHook(FirstBlockCacheHook(states, threshold: config.threshold, role: role),
                            name: i == 0 ? Model.fbcLeaderHookName : Model.fbcBlockHookName, at: path)
        }
        return blocks
    }
}
