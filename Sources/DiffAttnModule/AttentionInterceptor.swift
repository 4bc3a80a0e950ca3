import DiffAttnKernels

/// The interception point of a module's call: diffusers wraps a module's `forward` with its hook
/// registry (hooks/hooks.py: `HookRegistry.register_hook`); here the module holds this protocol and
/// the hooks layer fills it (DiffAttnHooks/HookRegistry.swift), so the module names no hooks type.
/// A model also places one on each of its modules (DiffAttnModels/ModelAttachment.swift) to record the path.
public protocol AttentionInterceptor: AnyObject, Sendable {
    /// The module's dotted path in its model ("" for a standalone Attention); names the owner of
    /// offloaded weights in errors.
    var path: String { get }
    /// True when a call goes straight to the processor (nothing to intercept).
    var isEmpty: Bool { get }
    /// The intercepted call: `next` runs the module's processor.
    func call(_ inputs: AttentionInputs, _ next: (AttentionInputs) throws -> [Tensor]) throws -> [Tensor]
}
