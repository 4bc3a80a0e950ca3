import DiffAttnKernels

// `Attention.forward`: dispatch to the current processor's family. Planning and running are
// separate so the C API can report output shapes (and validate) without computing.
extension Attention {
    private func recipe() throws -> ProcessorRecipe {
        guard let recipe = ProcessorRecipe.recipe(for: processor.kind) else {
            throw DiffAttnError(.unsupported, "\(processor.kind.name) is not implemented in this version of libdiffattn")
        }
        return recipe
    }

    /// The shapes `forward` would return for these inputs, after every check it makes.
    public func outputShapes(_ inputs: AttentionInputs) throws -> [[Int]] {
        let recipe = try recipe()
        switch recipe.family {
        case .standard: return [try planStandard(inputs, recipe).outputShape]
        case .dit(let dit): return try planDiT(inputs, dit).outputShapes
        }
    }

    /// Runs the processor. Read-only on the module, so concurrent calls are safe.
    public func forward(_ inputs: AttentionInputs) throws -> [Tensor] {
        let recipe = try recipe()
        switch recipe.family {
        case .standard:
            let plan = try planStandard(inputs, recipe)
            return [try runStandard(inputs, plan)]
        case .dit(let dit):
            return try runDiT(inputs, planDiT(inputs, dit))
        }
    }
}
