import DiffAttnKernels
import DiffAttnModule

/// A DiT processor's checked plan: which pipeline, what it resolved, the output shapes.
struct DiTPlan {
    enum Resolved {
        case joint(JointPlan), standard(StandardDiTPlan), lumina(LinearFamilyPlan), sana(LinearFamilyPlan), multiscale
    }
    var recipe: DiTRecipe
    var resolved: Resolved
    var outputShapes: [[Int]]
}

// Dispatch of the DiT processors to their pipelines (the `dit` family of ProcessorRecipe).
extension Attention {
    func planDiT(_ inputs: AttentionInputs, _ r: DiTRecipe) throws -> DiTPlan {
        switch r.pipeline {
        case .failing(let message): throw DiffAttnError.value(message)
        case .joint:
            let p = try planJoint(inputs, r)
            return DiTPlan(recipe: r, resolved: .joint(p), outputShapes: p.outputShapes)
        case .standard:
            let p = try planStandardDiT(inputs, r)
            return DiTPlan(recipe: r, resolved: .standard(p), outputShapes: p.outputShapes)
        case .lumina:
            let p = try planLumina(inputs)
            return DiTPlan(recipe: r, resolved: .lumina(p), outputShapes: p.outputShapes)
        case .sanaLinear:
            let p = try planSanaLinear(inputs, r)
            return DiTPlan(recipe: r, resolved: .sana(p), outputShapes: p.outputShapes)
        case .sanaMultiscale:
            return DiTPlan(recipe: r, resolved: .multiscale, outputShapes: try planSanaMultiscale(inputs))
        }
    }

    func runDiT(_ inputs: AttentionInputs, _ plan: DiTPlan) throws -> [Tensor] {
        switch plan.resolved {
        case .joint(let p): return try runJoint(inputs, plan.recipe, p)
        case .standard(let p): return try runStandardDiT(inputs, plan.recipe, p)
        case .lumina(let p): return try runLumina(inputs, p)
        case .sana(let p): return try runSanaLinear(inputs, plan.recipe, p)
        case .multiscale: return try runSanaMultiscale(inputs)
        }
    }
}
