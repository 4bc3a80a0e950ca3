import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// What the hooks layer keeps for one model, attached to it (DiffAttnModels/ModelAttachment.swift) on
/// first use and released with it: the step context the model's hooks share, the lock under which
/// registries are created, and group offloading when enabled.
final class ModelHooks: ModelAttachment, @unchecked Sendable {
    let context = HookContext()
    let lock = Locked()
    /// Group offloading, when enabled (GroupOffloading.swift).
    var offloader: GroupOffloader?

    deinit { offloader?.shutdown() }

    var managesWeights: Bool { offloader != nil }

    /// Onloads the group owning the module at `path` for the read (a weight read by the host is a
    /// first touch), pinned while `read` runs.
    func readingWeights<R>(of path: String, _ read: () throws -> R) throws -> R {
        guard let off = offloader, let g = off.group(ofMember: path) else { return try read() }
        return try off.withPinned(g, chain: !off.rootGroups.contains(ObjectIdentifier(g)), read)
    }
}

extension Model {
    /// The model's hooks state; on creation every attention module gets its path-bound registry
    /// (as it had from the model's construction before hooks became a layer of their own).
    var hooksState: ModelHooks {
        attachment { () -> ModelHooks in
            let state = ModelHooks()
            for (path, a) in attentionModules {
                a.interceptor = HookRegistry(path: path, attention: a, node: try? module(at: path), context: state.context, model: self)
            }
            return state
        }
    }

    /// The step the host is in, shared by the model's hooks.
    public var hookContext: HookContext { hooksState.context }
    var hookLock: Locked<Void> { hooksState.lock }
    /// Group offloading, when enabled (GroupOffloading.swift).
    var offloader: GroupOffloader? {
        get { hooksState.offloader }
        set { hooksState.offloader = newValue }
    }
}
