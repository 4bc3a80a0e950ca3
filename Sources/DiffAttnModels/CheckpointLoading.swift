import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors

/// What a load did: every attention parameter is either loaded or listed as missing; names under
/// an attention module that it does not have are unexpected; everything else is kept as weight
/// nodes (or skipped on request).
public struct LoadReport: Sendable {
    public var attentionLoaded = 0
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var weightsKept = 0
    public var skipped = 0
}

extension Model {
    /// Every attention parameter of the model, with its full diffusers name, in tree order.
    public var attentionParameters: [(String, [Int])] {
        attentionModules.flatMap { path, a in a.parameters.specs.map { (path + "." + $0.name, $0.shape) } }
    }

    /// Full names and shapes of everything the model holds: attention parameters and weight nodes.
    public var stateDictSpecs: [(String, [Int])] {
        var out: [(String, [Int])] = []
        root.walk { path, node in
            if let a = node.attention {
                out += a.parameters.specs.map { (path + "." + $0.name, $0.shape) }
            } else {
                out += node.weights.map { (path + "." + $0.0, $0.1.shape) }
            }
        }
        return out
    }

    /// The tensor behind a full name (attention parameter or kept weight).
    public func weight(named name: String) throws -> Tensor {
        if let (path, a, local) = attentionOwning(name), a.parameters.contains(local) {
            guard let attachment = existingAttachment else { return a.parameters[local]! }
            return try attachment.readingWeights(of: path) { a.parameters[local]! }
        }
        if let dot = name.lastIndex(of: "."), let node = try? module(at: String(name[..<dot])),
           node.weights.contains(where: { $0.0 == name[name.index(after: dot)...] }) {
            let read = { node.weights.first(where: { $0.0 == name[name.index(after: dot)...] })!.1 }
            guard let attachment = existingAttachment else { return read() }
            return try attachment.readingWeights(of: String(name[..<dot]), read)
        }
        throw DiffAttnError(.notFound, "the model has no weight '\(name)'")
    }

    /// `load_state_dict` with diffusers' names. Shapes of attention parameters are checked before
    /// anything changes. With `strict`, a missing attention parameter or an unexpected name under
    /// an attention module is an error listing them (nothing is loaded).
    @discardableResult
    public func loadStateDict(_ names: [String], strict: Bool, keepOtherWeights: Bool = true,
                              tensor: (Int) throws -> Tensor, shapeOf: (Int) -> [Int]) throws -> LoadReport {
        if existingAttachment?.managesWeights == true {
            throw DiffAttnError.state("weights cannot be loaded while group offloading is enabled; disable it first (diffusers would lose edits made after the first offload, hooks/group_offloading.py:ModuleGroup)")
        }
        var report = LoadReport()
        var attentionItems: [(Attention, String, Int)] = []
        var others: [(String, Int)] = []
        var given = Set<String>()
        for (i, name) in names.enumerated() {
            guard given.insert(name).inserted else { throw DiffAttnError.value("weight '\(name)' is given twice") }
            if let (_, a, local) = attentionOwning(name) {
                guard let spec = a.parameters.spec(named: local) else { report.unexpected.append(name); continue }
                let shape = shapeOf(i)
                guard shape == spec.shape else {
                    throw DiffAttnError.shape("size mismatch for \(name): copying a param with shape \(describe(shape)) from checkpoint, the shape in current model is \(describe(spec.shape)).")
                }
                attentionItems.append((a, local, i))
            } else {
                others.append((name, i))
            }
        }
        report.missing = attentionParameters.map(\.0).filter { !given.contains($0) }
        if strict && (!report.missing.isEmpty || !report.unexpected.isEmpty) {
            throw DiffAttnError.value("Error(s) in loading state_dict for \(modelClass.name): missing attention keys \(report.missing), unexpected keys \(report.unexpected)")
        }
        for (a, local, i) in attentionItems { try a.setWeight(local, try tensor(i)); report.attentionLoaded += 1 }
        for (name, i) in others {
            guard keepOtherWeights, let dot = name.lastIndex(of: "."), dot != name.startIndex else { report.skipped += 1; continue }
            root.path(String(name[..<dot])).setWeight(String(name[name.index(after: dot)...]), try tensor(i))
            report.weightsKept += 1
        }
        lastLoadReport = report
        return report
    }

    /// Loads `diffusion_pytorch_model.safetensors` (or any safetensors file) by parameter name.
    @discardableResult
    public func loadSafeTensors(path: String, strict: Bool, keepOtherWeights: Bool = true) throws -> LoadReport {
        let file = try SafeTensorsFile(path: path)
        let entries = file.header.entries
        return try loadStateDict(entries.map(\.name), strict: strict, keepOtherWeights: keepOtherWeights,
                                 tensor: { file.read(entries[$0]) }, shapeOf: { entries[$0].shape })
    }
}
