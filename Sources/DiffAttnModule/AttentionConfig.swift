/// `cross_attention_norm`: which norm `norm_cross` is.
public enum CrossAttentionNorm: Int32, Sendable {
    case none = 0, layerNorm = 1, groupNorm = 2
}

/// `qk_norm`: the per-head (or across-heads) normalisation of queries and keys (attention_processor.py:Attention.__init__ (qk_norm)).
public enum QKNorm: Int32, Sendable {
    case none = 0, layerNorm = 1, fp32LayerNorm = 2, layerNormAcrossHeads = 3
    case rmsNorm = 4, rmsNormAcrossHeads = 5, l2 = 6
}

/// Every constructor argument of diffusers' `Attention`, with diffusers' defaults.
public struct AttentionConfig: Sendable {
    public var queryDim: Int
    public var crossAttentionDim: Int? = nil
    public var heads: Int = 8
    public var kvHeads: Int? = nil
    public var dimHead: Int = 64
    public var dropout: Double = 0
    public var bias: Bool = false
    public var upcastAttention: Bool = false
    public var upcastSoftmax: Bool = false
    public var crossAttentionNorm: CrossAttentionNorm = .none
    public var crossAttentionNormNumGroups: Int = 32
    public var qkNorm: QKNorm = .none
    public var addedKVProjDim: Int? = nil
    /// diffusers allows None, which behaves like False.
    public var addedProjBias: Bool? = true
    public var normNumGroups: Int? = nil
    public var spatialNormDim: Int? = nil
    public var outBias: Bool = true
    public var scaleQK: Bool = true
    public var onlyCrossAttention: Bool = false
    public var eps: Double = 1e-5
    public var rescaleOutputFactor: Double = 1
    public var residualConnection: Bool = false
    public var fromDeprecatedAttnBlock: Bool = false
    public var processor: ProcessorConfig? = nil
    public var outDim: Int? = nil
    public var outContextDim: Int? = nil
    public var contextPreOnly: Bool? = nil
    public var preOnly: Bool = false
    public var elementwiseAffine: Bool = true
    public var isCausal: Bool = false
    /// The diffusers module class (FluxAttention, MochiAttention, …).
    public var moduleClass: ModuleClass = .attention
    /// SanaMultiscaleLinearAttention's own arguments.
    public var multiscale = MultiscaleOptions()

    public init(queryDim: Int) { self.queryDim = queryDim }
}

/// The attributes diffusers derives in `Attention.__init__` (attention_processor.py:Attention.__init__).
public struct DerivedAttributes: Sendable {
    public var innerDim: Int
    public var innerKVDim: Int
    public var heads: Int
    public var sliceableHeadDim: Int
    public var scale: Float
    public var isCrossAttention: Bool
    public var crossAttentionDim: Int
    public var outDim: Int
    public var outContextDim: Int

    init(_ c: AttentionConfig) {
        innerDim = c.outDim ?? c.dimHead * c.heads
        innerKVDim = c.kvHeads.map { c.dimHead * $0 } ?? innerDim
        heads = c.outDim.map { $0 / c.dimHead } ?? c.heads
        sliceableHeadDim = c.heads
        scale = c.scaleQK ? Float(1 / Double(c.dimHead).squareRoot()) : 1
        isCrossAttention = c.crossAttentionDim != nil
        crossAttentionDim = c.crossAttentionDim ?? c.queryDim
        outDim = c.outDim ?? c.queryDim
        outContextDim = c.outContextDim ?? c.queryDim
    }
}
