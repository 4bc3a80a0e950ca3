import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors

/// What a higher layer attaches to a model: the hooks layer keeps the model's registries, its
/// step context and group offloading there (DiffAttnHooks/ModelHooks.swift). Created on first use and
/// released with the model; the model itself consults it only around its weights.
package protocol ModelAttachment: AnyObject, Sendable {
    /// Whether something else (group offloading) manages the weights now, so none may be replaced.
    var managesWeights: Bool { get }
    /// Runs `read` with the weights of the module at `path` readable (group offloading onloads
    /// its group and keeps it while `read` runs).
    func readingWeights<R>(of path: String, _ read: () throws -> R) throws -> R
}

/// The interceptor a model places on each of its attention modules until a hook registry
/// replaces it: the module's path, and the model, so that a module fetched by path (a borrowed
/// `da_attention`, Python's `get_submodule`) finds the model's hooks rather than its own.
package final class ModelMembership: AttentionInterceptor, @unchecked Sendable {
    package let path: String
    package private(set) weak var model: Model?

    init(path: String, model: Model) { self.path = path; self.model = model }

    package var isEmpty: Bool { true }

    package func call(_ inputs: AttentionInputs, _ next: (AttentionInputs) throws -> [Tensor]) throws -> [Tensor] {
        try next(inputs)
    }
}

/// An attention module a builder places in the tree: created there, with the tree's weight budget.
struct AttentionSpec {
    var config: AttentionConfig
    var processor: ProcessorKind?
}
