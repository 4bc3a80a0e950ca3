import DiffAttnKernels
import DiffAttnModule

// `Attention.forward`: dispatch to the current processor's family. Planning and running are
// separate so the C API can report output shapes (and validate) without computing.
extension Attention {
    private func recipe() throws -> ProcessorRecipe {
        guard let recipe = ProcessorRecipe.recipe(for: processor.kind) else {
            throw DiffAttnError(.unsupported, "\(processor.kind.name) is not implemented in this version of libdiffattn")
        }
        if case .deprecatedLoRA = recipe.family {
            throw DiffAttnError.state("'\(processor.kind.name)' object is not callable: the LoRA attention processors are deprecated stubs (LoRA is applied to to_q/to_k/to_v/to_out by adapter layers now)")
        }
        return recipe
    }

    /// The shapes `forward` would return for these inputs, after every check it makes.
    public func outputShapes(_ inputs: AttentionInputs) throws -> [[Int]] {
        let recipe = try recipe()
        switch recipe.family {
        case .standard: return [try planStandard(inputs, recipe).outputShape]
        case .addedKV: return [try planAddedKV(inputs, recipe).outputShape]
        case .customDiffusion: return [try planCustomDiffusion(inputs, recipe).outputShape]
        case .ipAdapter: return [try planIPAdapter(inputs, recipe).main.outputShape]
        case .deprecatedLoRA: return []
        case .dit(let dit): return try planDiT(inputs, dit).outputShapes
        }
    }

    /// The module's call: its interceptor (the hooks, if any) around `forwardWithoutHooks`, as
    /// diffusers' wrapped forward (hooks/hooks.py:HookRegistry.register_hook).
    public func forward(_ inputs: AttentionInputs) throws -> [Tensor] {
        guard let r = interceptor, !r.isEmpty else { return try forwardWithoutHooks(inputs) }
        return try r.call(inputs) { try self.forwardWithoutHooks($0) }
    }

    /// Runs the processor. Read-only on the module, so concurrent calls are safe.
    public func forwardWithoutHooks(_ inputs: AttentionInputs) throws -> [Tensor] {
        try parameters.checkResident(owner: interceptor?.path ?? "")
        let recipe = try recipe()
        switch recipe.family {
        case .standard: return [try runStandard(inputs, try planStandard(inputs, recipe))]
        case .addedKV: return [try runAddedKV(inputs, try planAddedKV(inputs, recipe))]
        case .customDiffusion: return [try runCustomDiffusion(inputs, try planCustomDiffusion(inputs, recipe))]
        case .ipAdapter: return [try runIPAdapter(try planIPAdapter(inputs, recipe))]
        case .deprecatedLoRA: return []
        case .dit(let dit): return try runDiT(inputs, planDiT(inputs, dit))
        }
    }
}
