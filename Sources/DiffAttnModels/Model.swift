import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors

/// A diffusers model as a tree of named modules (models/modeling_utils.py:ModelMixin): built from a class name and its
/// `config.json`, with every attention module a real `Attention`. Hosts run the non-attention
/// parts themselves; they fetch attention modules by path and call them.
///
/// Processors are values (kind + arguments), so "one shared instance" in diffusers is "the same
/// value everywhere" here; weight-holding processors are not installed model-wide.
public final class Model: @unchecked Sendable {
    public let modelClass: ModelClass
    public let config: ModelConfig
    public let root: ModuleNode
    /// The attention nodes in `attn_processors` order (fixed after construction).
    public let attentionPaths: [String]
    private var attentionByPath: [String: ModuleNode] = [:]
    /// The processors saved by the first legacy `fuse_qkv_projections` (unets/unet_2d_condition.py:UNet2DConditionModel.fuse_qkv_projections, docs/deviations.md).
    var originalProcessors: [ProcessorConfig]?
    /// The report of the last successful load (load_state_dict, a safetensors file, a folder):
    /// the missing and unexpected names a host can list (da_model_load_key).
    public internal(set) var lastLoadReport: LoadReport?
    /// The hooks layer's state for this model (ModelAttachment.swift), created on first use.
    private let attachmentSlot = Locked<(any ModelAttachment)?>(nil)

    public convenience init(className: String, config text: String) throws {
        guard let cls = ModelClass(name: className) else {
            throw DiffAttnError(.notFound, "unknown model class '\(className)'; expected one of: "
                                + ModelClass.allCases.map(\.name).joined(separator: ", "))
        }
        let config = try ModelConfig(className: className, text: text)
        try config.checkClassName()
        try self.init(cls, config)
    }

    public init(_ modelClass: ModelClass, _ config: ModelConfig) throws {
        self.modelClass = modelClass
        self.config = config
        // A dry run counts the weights against the machine's memory before any is allocated.
        _ = try modelClass.build(config, budget: WeightBudget(bytes: WeightBudget.physicalBytes))
        root = try modelClass.build(config, budget: nil)
        var paths: [String] = []
        var byPath: [String: ModuleNode] = [:]
        root.walk { path, node in
            if node.attention != nil { paths.append(path); byPath[path] = node }
        }
        attentionPaths = paths
        attentionByPath = byPath
        // Every attention module knows its path and model now, so that a module fetched by path
        // (a borrowed da_attention, Python's get_submodule) runs the model's hooks.
        for (path, node) in byPath { node.attention!.interceptor = ModelMembership(path: path, model: self) }
    }

    /// The model's attachment of type `T` (the hooks layer's; one per model), made on first use.
    package func attachment<T: ModelAttachment>(_ make: () -> T) -> T {
        attachmentSlot.withLock { slot in
            if let existing = slot as? T { return existing }
            let made = make()
            slot = made
            return made
        }
    }

    /// The attachment, if one was made.
    package var existingAttachment: (any ModelAttachment)? { attachmentSlot.withLock { $0 } }

    // MARK: attn_processors (models/attention.py:AttentionMixin.attn_processors, models/attention.py:AttentionMixin.set_attn_processor)

    /// `attn_processors`: keys `"{path}.processor"` in pre-order, with the current processors.
    public var attnProcessors: [(String, ProcessorConfig)] {
        attentionPaths.map { ($0 + ".processor", attentionByPath[$0]!.attention!.processor) }
    }

    public var attentionModules: [(String, Attention)] {
        attentionPaths.map { ($0, attentionByPath[$0]!.attention!) }
    }

    /// `set_attn_processor(processor)`: the same processor on every attention module.
    public func setAttnProcessor(_ processor: ProcessorConfig) throws {
        try Model.checkAssignable(processor)
        for (_, a) in attentionModules { a.assignProcessor(processor) }
    }

    /// `set_attn_processor({name: processor})`: diffusers' count check, then every key must name
    /// an attention module. Deviation (models/attention.py:AttentionMixin.set_attn_processor): all keys are validated before anything changes,
    /// and the caller's map is not consumed.
    public func setAttnProcessors(_ map: [(String, ProcessorConfig)]) throws {
        let count = attentionPaths.count
        guard map.count == count else {
            throw DiffAttnError.value("A dict of processors was passed, but the number of processors \(map.count) does not match the number of attention layers: \(count). Please make sure to pass \(count) processor classes.")
        }
        var byKey: [String: ProcessorConfig] = [:]
        for (k, p) in map {
            guard byKey.updateValue(p, forKey: k) == nil else { throw DiffAttnError.value("processor key '\(k)' is given twice") }
            try Model.checkAssignable(p)
        }
        for path in attentionPaths where byKey[path + ".processor"] == nil {
            throw DiffAttnError(.notFound, "'\(path).processor'")
        }
        for (path, a) in attentionModules { a.assignProcessor(byKey[path + ".processor"]!) }
    }

    static func checkAssignable(_ p: ProcessorConfig) throws {
        if let s = p.sliceSize, s < 1 {
            throw DiffAttnError.value("slice_size must be at least 1, got \(s)")
        }
    }

    // MARK: modules by path and kind

    /// The node at a dotted path (`"transformer_blocks.0.attn"`), as torch's `get_submodule`.
    public func module(at path: String) throws -> ModuleNode {
        if path.isEmpty { return root }
        if let node = attentionByPath[path] { return node }
        var node = root
        var walked = ""
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let next = node.existingChild(String(part)) else {
                let owner = walked.isEmpty ? modelClass.name : walked
                throw DiffAttnError(.notFound, "\(owner) has no attribute `\(part)` (path '\(path)')")
            }
            walked = walked.isEmpty ? String(part) : walked + "." + part
            node = next
        }
        return node
    }

    /// The attention module at `path`, or an error saying what is there instead.
    public func attention(at path: String) throws -> Attention {
        let node = try module(at: path)
        guard let a = node.attention else {
            throw DiffAttnError(.notFound, "'\(path)' is not an attention module (it is a \(node.kind == .weights ? "weight" : "container") node)")
        }
        return a
    }

    /// Dotted paths of every node of `kind`, in pre-order.
    public func modules(of kind: ModuleKind) -> [String] {
        var out: [String] = []
        root.walk { path, node in if node.kind == kind { out.append(path) } }
        return out
    }

    /// The attention module owning a full parameter name (`…attn1.to_q.weight`), and the local name.
    func attentionOwning(_ parameter: String) -> (String, Attention, String)? {
        var end = parameter.endIndex
        while let dot = parameter[..<end].lastIndex(of: ".") {
            let prefix = String(parameter[..<dot])
            if let node = attentionByPath[prefix] {
                return (prefix, node.attention!, String(parameter[parameter.index(after: dot)...]))
            }
            end = dot
        }
        return nil
    }
}

extension Attention {
    /// Installs a processor by name without requiring this build to compute it: models report
    /// and switch every diffusers kind; only `forward` needs an implementation.
    func assignProcessor(_ p: ProcessorConfig) {
        var table = parameters
        table.removeAll(withPrefix: "processor.")
        p.registerWeights(in: &table)
        parameters = table
        processor = p
    }

    /// diffusers' CROSS processor set for `set_default_attn_processor` (unets/unet_2d_condition.py:UNet2DConditionModel.set_default_attn_processor); the other sets
    /// are in DiffAttnModule/Switches.swift.
    static let crossKinds: Set<ProcessorKind> = [.attnProcessor, .attnProcessor2_0, .xformersAttnProcessor,
                                                 .slicedAttnProcessor, .ipAdapterAttnProcessor, .ipAdapterAttnProcessor2_0,
                                                 .fluxIPAdapterJointAttnProcessor2_0]
}
