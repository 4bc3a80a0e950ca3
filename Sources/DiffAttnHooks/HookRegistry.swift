import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `HookRegistry` (hooks/hooks.py:HookRegistry): the hooks of one module, in registration order.
///
/// The chain is built at call time from the ordered array: for hooks
/// registered A, B, C a call runs `pre C → pre B → [new B →] pre A → forward → post A → post B →
/// post C`, exactly diffusers' order (hooks/hooks.py:HookRegistry.register_hook), and removal needs no rewiring, so diffusers' lost
/// neighbour `new_forward` (hooks/hooks.py:HookRegistry.remove_hook) cannot happen.
public final class HookRegistry: AttentionInterceptor, @unchecked Sendable, CustomStringConvertible {
    /// The module's dotted path in its model ("" for the root and for a standalone Attention).
    public let path: String
    public private(set) weak var attention: Attention?
    public private(set) weak var node: ModuleNode?
    /// Shared by every registry of one model (a standalone Attention has its own).
    public let context: HookContext
    public private(set) weak var model: Model?

    private let lock = Locked()
    private var entries: [(name: String, hook: ModelHook)] = []

    init(path: String, attention: Attention?, node: ModuleNode?, context: HookContext, model: Model?) {
        self.path = path; self.attention = attention; self.node = node; self.context = context; self.model = model
    }

    public var hookNames: [String] { lock.run { entries.map(\.name) } }
    public var isEmpty: Bool { lock.run { entries.isEmpty } }

    /// `get_hook(name)`.
    public func hook(named name: String) -> ModelHook? { lock.run { entries.first { $0.name == name }?.hook } }

    /// `register_hook(hook, name)`: names are unique per module; `initializeHook` runs first and
    /// may refuse.
    public func register(_ hook: ModelHook, name: String) throws {
        if self.hook(named: name) != nil {
            throw DiffAttnError.value("Hook with name \(name) already exists in the registry. Please use a different name or first remove the existing hook and then add a new one.")
        }
        try hook.initializeHook(self)
        try lock.run {
            guard !entries.contains(where: { $0.name == name }) else {
                throw DiffAttnError.value("Hook with name \(name) already exists in the registry.")
            }
            entries.append((name, hook))
        }
    }

    /// `remove_hook(name, recurse)`: absent names are a silent no-op; with `recurse`, every
    /// descendant's registry drops the name too.
    public func remove(_ name: String, recurse: Bool = true) throws {
        if let hook = hook(named: name) {
            try hook.deinitializeHook(self)
            lock.run { entries.removeAll { $0.name == name } }
        }
        if recurse { for r in descendantRegistries() { try r.remove(name, recurse: false) } }
    }

    /// `reset_stateful_hooks(recurse)`: outermost first, then descendants in pre-order.
    public func resetStatefulHooks(recurse: Bool = true) throws {
        for (_, hook) in lock.run({ entries }).reversed() where hook.isStateful { try hook.resetState(self) }
        if recurse { for r in descendantRegistries() { try r.resetStatefulHooks(recurse: false) } }
    }

    /// Registries of the descendants that have one, pre-order (excluding this module). Not cached:
    /// the walk is cheap next to a forward, and a cache is what diffusers has to invalidate (hooks/hooks.py:HookRegistry._get_child_registries).
    public func descendantRegistries() -> [HookRegistry] {
        guard let node else { return [] }
        var out: [HookRegistry] = []
        node.walk(path) { _, n in if let r = n.registry { out.append(r) } }
        return out
    }

    // MARK: calls

    /// The hooks in registration order (innermost first), as one call sees them.
    func lockedHooks() -> [ModelHook] { lock.run { entries.map(\.hook) } }

    /// A hooked call of an attention module: the chain around `original`.
    public func call(_ inputs: AttentionInputs, _ original: (AttentionInputs) throws -> [Tensor]) throws -> [Tensor] {
        let chain = lockedHooks()
        func invoke(_ k: Int, _ inputs: AttentionInputs?) throws -> [Tensor] {
            guard k >= 0 else {
                guard let inputs else { throw DiffAttnError.state("a hook of '\(path)' replaced the inputs by nothing") }
                return try original(inputs)
            }
            let hook = chain[k]
            if hook.usesArgumentLists, let current = inputs {
                return try invokeWithArguments(hook, current) { try invoke(k - 1, $0) }
            }
            var args = inputs
            try hook.preForward(self, &args)
            var out = hook.hasNewForward ? try hook.newForward(self, args) { try invoke(k - 1, $0) } : try invoke(k - 1, args)
            try hook.postForward(self, &out)
            return out
        }
        return try invoke(chain.count - 1, inputs)
    }

    /// The pre-forward half of a host-run module's call (outermost hook first).
    public func enter() throws {
        var none: AttentionInputs? = nil
        var entered: [ModelHook] = []
        for hook in lock.run({ entries.map(\.hook) }).reversed() {
            do { try hook.preForward(self, &none) } catch {
                // The host will not call `exit`: release what the hooks entered so far hold.
                for h in entered.reversed() { h.abandonForward(self) }
                throw error
            }
            entered.append(hook)
        }
    }

    /// The post-forward half (innermost hook first).
    public func exit() throws {
        var out: [Tensor] = []
        for hook in lock.run({ entries.map(\.hook) }) { try hook.postForward(self, &out) }
    }

    /// diffusers' `repr`: `HookRegistry(\n  (0) name - Class\n)`.
    public var description: String {
        let lines = lock.run { entries.enumerated().map { "  (\($0.offset)) \($0.element.name) - \($0.element.hook.hookDescription)" } }
        return "HookRegistry(\n" + lines.joined(separator: "\n") + "\n)"
    }
}

extension ModuleNode {
    /// This node's registry, if one was created (an attention node shares its module's).
    public var registry: HookRegistry? { attention?.hookRegistry ?? ownRegistry }

    /// The registry of a non-attention node, kept in the node's attachment slot.
    var ownRegistry: HookRegistry? {
        get { attachment as? HookRegistry }
        set { attachment = newValue }
    }
}

extension Model {
    /// `HookRegistry.check_if_exists_or_initialize(module)` for the node at `path`.
    public func hookRegistry(at path: String) throws -> HookRegistry {
        let node = try module(at: path)
        return registry(for: node, path: path)
    }

    func registry(for node: ModuleNode, path: String) -> HookRegistry {
        let state = hooksState
        return state.lock.run {
            if let r = node.registry { return r }
            let r = HookRegistry(path: path, attention: node.attention, node: node, context: state.context, model: self)
            if let a = node.attention { a.interceptor = r } else { node.ownRegistry = r }
            return r
        }
    }

    /// Brackets one denoising step: the root's pre-forward hooks run (the unmatched offload group
    /// onloads; PAB without a callback reads `timestep`).
    public func beginStep(timestep: Double?) throws {
        try hookContext.begin(timestep)
        do { try root.registry?.enter() } catch { try? hookContext.end(); throw error }
    }

    /// Ends the step: the root's post-forward hooks run (groups are released; the first step's
    /// execution order is frozen for prefetching).
    public func endStep() throws {
        try hookContext.end()
        try root.registry?.exit()
    }

    /// Every registry the model has created (root first, then pre-order).
    public var allHookRegistries: [HookRegistry] {
        (root.registry.map { [$0] } ?? []) + hookLock.run { () -> [HookRegistry] in
            var out: [HookRegistry] = []
            root.walk { _, n in if let r = n.registry { out.append(r) } }
            return out
        }
    }

    /// `reset_stateful_hooks()` on the root's registry, recursively.
    public func resetStatefulHooks() throws {
        try hookRegistry(at: "").resetStatefulHooks(recurse: true)
    }
}

extension Attention {
    /// Its hook registry, once one was made (a model's module gets one bound to its path).
    public var hookRegistry: HookRegistry? { interceptor as? HookRegistry }

    /// The module's registry: its model's, bound to its path, for a module of a model; else the
    /// standalone module's own (created on first use).
    public func hooks() -> HookRegistry {
        if let member = interceptor as? ModelMembership, let model = member.model {
            return model.registry(for: (try? model.module(at: member.path)) ?? model.root, path: member.path)
        }
        return Attention.registryLock.run {
            if let r = hookRegistry { return r }
            let r = HookRegistry(path: "", attention: self, node: nil, context: HookContext(), model: nil)
            interceptor = r
            return r
        }
    }

    static let registryLock = Locked()
}
