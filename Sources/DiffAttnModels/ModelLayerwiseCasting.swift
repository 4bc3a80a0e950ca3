import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors

extension Model {
    /// `ModelMixin.enable_layerwise_casting` on the attention modules: each module's layers are
    /// matched under their full path.
    public func enableLayerwiseCasting(storage: LinearWeightFormat,
                                       skipModulesPattern: [String] = LayerwiseCasting.defaultSkipModulesPattern) throws {
        _ = try LayerwiseCasting.compile(skipModulesPattern)
        for path in attentionPaths {
            try module(at: path).attention!.enableLayerwiseCasting(storage: storage, skipModulesPattern: skipModulesPattern,
                                                                    path: path)
        }
    }
}
