import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `ModelHook` (hooks/hooks.py:ModelHook): optional callbacks around one module's forward.
/// Subclass and override what you need; the defaults do nothing.
///
/// The forward of a module is `AttentionInputs → [Tensor]` for attention modules. Host-run modules
/// (weight and container nodes, and the root bracketed by `beginStep` / `endStep`) have no
/// library forward: their hooks see `inputs == nil` and an empty output, and `newForward` is not
/// consulted for them.
open class ModelHook: @unchecked Sendable {
    public init() {}

    /// `_is_stateful`: `resetStatefulHooks` calls `resetState` only on stateful hooks.
    open var isStateful: Bool { false }

    /// Whether `newForward` replaces the inner forward (diffusers detects the method's presence).
    open var hasNewForward: Bool { false }

    /// Called once inside `register`, before the hook joins the chain; throwing aborts the
    /// registration (nothing is attached).
    open func initializeHook(_ module: HookRegistry) throws {}

    /// `deinitalize_hook`: called by `remove` before the hook leaves the chain; throwing keeps it
    /// registered (diffusers unlinks first, hooks/hooks.py:HookRegistry.remove_hook — fixed here, the removal is atomic).
    open func deinitializeHook(_ module: HookRegistry) throws {}

    open func preForward(_ module: HookRegistry, _ inputs: inout AttentionInputs?) throws {}

    /// Replaces the inner forward; `next` runs everything registered before this hook and the
    /// module itself.
    open func newForward(_ module: HookRegistry, _ inputs: AttentionInputs?,
                         _ next: (AttentionInputs?) throws -> [Tensor]) throws -> [Tensor] {
        try next(inputs)
    }

    open func postForward(_ module: HookRegistry, _ output: inout [Tensor]) throws {}

    /// A host-run module's call ended before it began: a hook entered after this one threw in its
    /// pre-forward, so no post-forward will come. Undo what `preForward` holds (an offload pin).
    open func abandonForward(_ module: HookRegistry) {}

    // The whole ModelHook (issue 16): hooks that answer true see a call as an argument list —
    // every input stream and keyword — and its outputs as a value list of any count and shapes.
    // Used for user hooks (C and Python) and for host-run modules called through
    // `HookRegistry.callModule`; built-in hooks keep the typed callbacks above.
    open var usesArgumentLists: Bool { false }

    /// `pre_forward(module, *args, **kwargs)`: may replace, add or remove any argument.
    open func preForward(_ module: HookRegistry, arguments: inout HookArgs) throws {}

    /// `new_forward(module, *args, **kwargs)` (consulted when `hasNewForward`): `original` runs what
    /// this hook wraps, any number of times, with any arguments.
    open func newForward(_ module: HookRegistry, arguments: HookArgs,
                         _ original: (HookArgs) throws -> HookArgs) throws -> HookArgs {
        try original(arguments)
    }

    /// `post_forward(module, output)`: may return outputs of other shapes and counts.
    open func postForward(_ module: HookRegistry, outputs: inout HookArgs) throws {}

    /// diffusers raises for a stateful hook that does not override this.
    open func resetState(_ module: HookRegistry) throws {
        if isStateful {
            throw DiffAttnError(.unsupported, "This hook is stateful and needs to implement the `reset_state` method.")
        }
    }

    /// The text `HookRegistry.description` shows for this hook.
    open var hookDescription: String { String(describing: type(of: self)) }
}

/// What the hooks of one model share: the denoising step the host is in (`beginStep(timestep)` /
/// `endStep()`), so that hooks know the step, and the timestep a callback-less PAB reads.
public final class HookContext: @unchecked Sendable {
    private let lock = Locked()
    private var _timestep: Double?
    private var _stepIndex = -1
    private var _inStep = false
    private var _cacheContext: String?
    private var _cacheInfo = CacheContextInfo()

    public init() {}

    /// diffusers' `cache_context(name)` (hooks/hooks.py:StateManager): which per-context state the caches use
    /// ("cond", "uncond"); nil = none set.
    public var cacheContext: String? {
        get { lock.run { _cacheContext } }
        set { lock.run { _cacheContext = newValue } }
    }

    /// The fields of diffusers' `CacheContext` besides its name (SeaCache reads them).
    public var cacheContextInfo: CacheContextInfo {
        get { lock.run { _cacheInfo } }
        set { lock.run { _cacheInfo = newValue } }
    }

    public var timestep: Double? { lock.run { _timestep } }
    /// Steps begun so far minus one (-1 before the first `beginStep`).
    public var stepIndex: Int { lock.run { _stepIndex } }
    public var inStep: Bool { lock.run { _inStep } }

    func begin(_ timestep: Double?) throws {
        try lock.run {
            guard !_inStep else { throw DiffAttnError.state("begin_step called twice without end_step (step \(_stepIndex) is still open)") }
            _inStep = true; _timestep = timestep; _stepIndex += 1
        }
    }

    func end() throws {
        try lock.run {
            guard _inStep else { throw DiffAttnError.state("end_step called without begin_step") }
            _inStep = false
        }
    }

    func reset() { lock.run { _stepIndex = -1; _inStep = false; _timestep = nil } }
}

/// diffusers' `CacheContext` fields (hooks/hooks.py: CacheContext): where the denoising loop is.
public struct CacheContextInfo: Sendable {
    public var stepIndex: Int?
    public var numInferenceSteps: Int?
    public var timestep: Double?
    public var sigma: Double?
    public init(stepIndex: Int? = nil, numInferenceSteps: Int? = nil, timestep: Double? = nil, sigma: Double? = nil) {
        self.stepIndex = stepIndex; self.numInferenceSteps = numInferenceSteps; self.timestep = timestep; self.sigma = sigma
    }
}
