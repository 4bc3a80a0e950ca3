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

    /// Plans a forward: every check `forward` makes, the prepared mask, the output shapes. A
    /// caller that needs the shapes first (the C API checks its destinations) runs the same plan.
    public func plan(_ inputs: AttentionInputs) throws -> ForwardPlan {
        let recipe = try recipe()
        switch recipe.family {
        case .standard: return ForwardPlan(inputs, .standard(try planStandard(inputs, recipe)))
        case .addedKV: return ForwardPlan(inputs, .addedKV(try planAddedKV(inputs, recipe)))
        case .customDiffusion: return ForwardPlan(inputs, .customDiffusion(try planCustomDiffusion(inputs, recipe)))
        case .ipAdapter: return ForwardPlan(inputs, .ipAdapter(try planIPAdapter(inputs, recipe)))
        case .deprecatedLoRA: return ForwardPlan(inputs, .none)
        case .joint: return ForwardPlan(inputs, .joint(recipe, try planJoint(inputs, recipe)))
        case .lumina: return ForwardPlan(inputs, .lumina(try planLumina(inputs)))
        case .sanaLinear: return ForwardPlan(inputs, .sanaLinear(recipe, try planSanaLinear(inputs, recipe)))
        case .sanaMultiscale: return ForwardPlan(inputs, .sanaMultiscale(try planSanaMultiscale(inputs)))
        case .failing(let message): throw DiffAttnError.value(message)
        }
    }

    /// The shapes `forward` would return for these inputs, after every check it makes.
    public func outputShapes(_ inputs: AttentionInputs) throws -> [[Int]] { try plan(inputs).outputShapes }

    /// The module's call: its interceptor (the hooks, if any) around `forwardWithoutHooks`, as
    /// diffusers' wrapped forward (hooks/hooks.py:HookRegistry.register_hook).
    public func forward(_ inputs: AttentionInputs) throws -> [Tensor] {
        guard let r = interceptor, !r.isEmpty else { return try forwardWithoutHooks(inputs) }
        return try r.call(inputs) { try self.forwardWithoutHooks($0) }
    }

    /// `forward` for planned inputs. Without hooks the plan runs as it is; hooks may rewrite the
    /// inputs or answer from a cache, so a hooked call plans what reaches the processor.
    public func forward(_ plan: ForwardPlan) throws -> [Tensor] {
        guard let r = interceptor, !r.isEmpty else {
            try checkResident()
            return try run(plan)
        }
        return try r.call(plan.inputs) { try self.forwardWithoutHooks($0) }
    }

    /// Runs the processor. Read-only on the module, so concurrent calls are safe.
    public func forwardWithoutHooks(_ inputs: AttentionInputs) throws -> [Tensor] {
        try checkResident()
        return try run(plan(inputs))
    }

    private func checkResident() throws { try parameters.checkResident(owner: interceptor?.path ?? "") }

    private func run(_ plan: ForwardPlan) throws -> [Tensor] {
        let inputs = plan.inputs
        try reserveWorkingMemory(try estimatedWorkingBytes(inputs), "this forward (estimated peak working memory)")
        switch plan.family {
        case .standard(let p): return try runStandard(inputs, p)
        case .addedKV(let p): return [try runAddedKV(inputs, p)]
        case .customDiffusion(let p): return [try runCustomDiffusion(inputs, p)]
        case .ipAdapter(let p): return [try runIPAdapter(p)]
        case .none: return []
        case .joint(let r, let p): return try runJoint(inputs, r, p)
        case .lumina(let p): return try runLumina(inputs, p)
        case .sanaLinear(let r, let p): return try runSanaLinear(inputs, r, p)
        case .sanaMultiscale: return try runSanaMultiscale(inputs)
        }
    }
}

/// A checked forward of one module: its inputs, the processor family's plan (prepared mask
/// included) and the shapes it returns. Made by `Attention.plan`, run by `Attention.forward`.
public struct ForwardPlan {
    enum Family {
        case standard(StandardPlan), addedKV(AddedKVPlan), customDiffusion(CustomDiffusionPlan)
        case ipAdapter(IPAdapterPlan), joint(ProcessorRecipe, JointPlan), lumina(LinearFamilyPlan)
        case sanaLinear(ProcessorRecipe, LinearFamilyPlan), sanaMultiscale([[Int]]), none
    }
    let inputs: AttentionInputs
    let family: Family
    public let outputShapes: [[Int]]

    init(_ inputs: AttentionInputs, _ family: Family) {
        self.inputs = inputs
        self.family = family
        switch family {
        case .standard(let p): outputShapes = p.outputShapes
        case .addedKV(let p): outputShapes = [p.outputShape]
        case .customDiffusion(let p): outputShapes = [p.outputShape]
        case .ipAdapter(let p): outputShapes = [p.main.outputShape]
        case .joint(_, let p): outputShapes = p.outputShapes
        case .lumina(let p), .sanaLinear(_, let p): outputShapes = p.outputShapes
        case .sanaMultiscale(let shapes): outputShapes = shapes
        case .none: outputShapes = []
        }
    }
}

extension Attention {
    /// An upper estimate of the bytes a forward allocates at its peak, from sizes the caller
    /// chose: the projections of every input token (query, key, value and the attention output at
    /// the inner width, twice for joint and added-KV streams) and the outputs, all float32.
    /// Checked up front by `reserveWorkingMemory` so that a forward too large for the process fails
    /// with DA_ERR_OUT_OF_MEMORY before any Swift array allocation could trap.
    func estimatedWorkingBytes(_ inputs: AttentionInputs) throws -> Int {
        func elements(_ t: Tensor?) -> Int { t?.count ?? 0 }
        let inner = max(derived.innerDim, config.queryDim, 1)
        var tokens = 0, inputElements = elements(inputs.hiddenStates) + elements(inputs.encoderHiddenStates)
        for t in [inputs.hiddenStates, inputs.encoderHiddenStates].compactMap({ $0 }) where t.rank >= 2 {
            let width = t.rank == 4 ? t.shape[1] : t.shape[t.rank - 1]
            tokens += width > 0 ? t.count / width : 0
        }
        for t in inputs.ipHiddenStates ?? [] { inputElements += t.count }
        let (perToken, o1) = inner.multipliedReportingOverflow(by: 10)
        let (projections, o2) = tokens.multipliedReportingOverflow(by: perToken)
        let (all, o3) = projections.addingReportingOverflow(inputElements)
        let (bytes, o4) = all.multipliedReportingOverflow(by: 4)
        guard !o1, !o2, !o3, !o4 else {
            throw DiffAttnError(.outOfMemory, "this forward would need more bytes than an Int holds (\(tokens) tokens of width \(inner))")
        }
        return bytes
    }
}
