import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors

/// What a node of a model tree is.
public enum ModuleKind: Int32, Sendable {
    /// A block or list that only groups children (`down_blocks`, `down_blocks.0`, ...).
    case container = 0
    /// An attention module the library runs (`…attn1`).
    case attention = 1
    /// A host-owned module whose weights the library only keeps (`conv_in`, `…ff.net.0.proj`).
    case weights = 2
}

/// One node of a model: a name, children in diffusers' registration order, and what it holds.
public final class ModuleNode: @unchecked Sendable {
    public let name: String
    public private(set) var children: [ModuleNode] = []
    private var childIndex: [String: Int] = [:]
    public package(set) var attention: Attention?
    /// diffusers' class of the node: the model class at the root, "Module" for containers and
    /// weight nodes, the attention's module class ("Attention", "FluxAttention") otherwise.
    public package(set) var moduleClass: String
    /// Weights of a `.weights` node, by local name (`weight`, `bias`), in load order.
    public package(set) var weights: [(String, Tensor)] = []
    /// The hooks layer's registry of a non-attention node (an attention node's is its module's
    /// interceptor); only that layer interprets it (DiffAttnHooks/HookRegistry.swift).
    package var attachment: AnyObject?
    /// The weight budget of the build that made this node (nil outside a dry run).
    private let budget: WeightBudget?

    init(name: String, moduleClass: String = "Module", budget: WeightBudget?) {
        self.name = name
        self.moduleClass = moduleClass
        self.budget = budget
    }

    public var kind: ModuleKind {
        if attention != nil { return .attention }
        return weights.isEmpty ? .container : .weights
    }

    /// The child `name`, created (as a container) and appended if absent.
    @discardableResult
    func child(_ name: String) -> ModuleNode {
        if let i = childIndex[name] { return children[i] }
        let node = ModuleNode(name: name, budget: budget)
        childIndex[name] = children.count
        children.append(node)
        return node
    }

    /// A chain of children from a dotted path (`"attentions.0.transformer_blocks.0"`).
    @discardableResult
    package func path(_ dotted: String) -> ModuleNode {
        var node = self
        for part in dotted.split(separator: ".", omittingEmptySubsequences: false) { node = node.child(String(part)) }
        return node
    }

    package func existingChild(_ name: String) -> ModuleNode? { childIndex[name].map { children[$0] } }

    /// Creates an attention module at `dotted` (relative to this node).
    func addAttention(_ dotted: String, _ spec: AttentionSpec) throws {
        let attention = try Attention(spec.config, budget: budget)
        if let kind = spec.processor { attention.assignProcessor(ProcessorConfig(kind: kind)) }
        let node = path(dotted)
        node.attention = attention
        node.moduleClass = attention.config.moduleClass.name
    }

    func setWeight(_ local: String, _ value: Tensor) {
        if let i = weights.firstIndex(where: { $0.0 == local }) { weights[i].1 = value } else { weights.append((local, value)) }
    }

    /// Pre-order walk over the descendants (not this node), with dotted paths: the order of
    /// diffusers' `named_modules()` restricted to what the tree holds.
    package func walk(_ prefix: String = "", _ visit: (String, ModuleNode) throws -> Void) rethrows {
        for c in children {
            let p = prefix.isEmpty ? c.name : prefix + "." + c.name
            try visit(p, c)
            try c.walk(p, visit)
        }
    }
}

/// Helpers the family builders share: diffusers' usual attention constructions.
enum AttentionRecipes {
    /// `BasicTransformerBlock`'s attention: `Attention(query_dim=dim, heads, dim_head, bias=...,
    /// cross_attention_dim=..., upcast_attention, out_bias=True)`.
    static func transformerAttention(dim: Int, heads: Int, dimHead: Int, cross: Int?, bias: Bool = false,
                                     upcastAttention: Bool = false) -> AttentionSpec {
        var c = AttentionConfig(queryDim: dim)
        c.heads = heads; c.dimHead = dimHead; c.crossAttentionDim = cross
        c.bias = bias; c.upcastAttention = upcastAttention
        return AttentionSpec(config: c)
    }

    /// `BasicTransformerBlock`: `attn1` (self, or cross when `only_cross_attention`), `attn2`
    /// (cross, or self when `double_self_attention`), and the gated `fuser.attn`.
    static func basicTransformerBlock(_ node: ModuleNode, dim: Int, heads: Int, dimHead: Int, cross: Int?,
                                      onlyCross: Bool = false, doubleSelf: Bool = false, bias: Bool = false,
                                      upcast: Bool = false, gated: Bool = false) throws {
        try node.addAttention("attn1", transformerAttention(dim: dim, heads: heads, dimHead: dimHead,
                                                            cross: onlyCross ? cross : nil, bias: bias, upcastAttention: upcast))
        try node.addAttention("attn2", transformerAttention(dim: dim, heads: heads, dimHead: dimHead,
                                                            cross: doubleSelf ? nil : cross, bias: bias, upcastAttention: upcast))
        if gated {
            try node.addAttention("fuser.attn", transformerAttention(dim: dim, heads: heads, dimHead: dimHead, cross: nil))
        }
    }

    /// The self-attention of `AttnDownBlock2D`, VAE mid blocks, ...: internal group norm,
    /// residual connection, biased projections, soft-max upcast.
    static func spatialSelfAttention(channels: Int, headDim: Int, groups: Int, eps: Double,
                                     rescale: Double = 1) throws -> AttentionSpec {
        guard channels % headDim == 0 else {
            throw DiffAttnError.value("attention_head_dim \(headDim) does not divide the block's \(channels) channels")
        }
        var c = AttentionConfig(queryDim: channels)
        c.heads = channels / headDim; c.dimHead = headDim; c.rescaleOutputFactor = rescale
        c.eps = eps; c.normNumGroups = groups; c.residualConnection = true; c.bias = true
        c.upcastSoftmax = true; c.fromDeprecatedAttnBlock = true
        return AttentionSpec(config: c)
    }

    /// Heads and head size for a block of `channels` given a head count.
    static func split(_ channels: Int, heads: Int, _ what: String) throws -> Int {
        guard heads > 0, channels % heads == 0, channels / heads > 0 else {
            throw DiffAttnError.value("\(what): \(heads) heads do not divide \(channels) channels")
        }
        return channels / heads
    }
}
