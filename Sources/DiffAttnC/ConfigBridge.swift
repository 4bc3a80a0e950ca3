import CDiffAttnHeader
import DiffAttn

// Conversions between the C config structs and the Swift values, with the checks a C caller
// needs (struct sizes, enum values, the None encodings).

/// Reads a caller's versioned struct after checking it is there and its `struct_size` (the
/// first field of every such struct) covers the first release's layout.
func readStruct<T>(_ p: UnsafePointer<T>?, _ name: String) throws -> T {
    guard let p else { throw DiffAttnError.argument("\(name) is NULL") }
    let size = UnsafeRawPointer(p).load(as: UInt32.self)
    guard Int(size) >= MemoryLayout<T>.size else {
        throw DiffAttnError.argument("\(name)->struct_size is \(size); expected at least \(MemoryLayout<T>.size) (initialise it with its *_init function or sizeof)")
    }
    return p.pointee
}

/// The same check for a struct the library fills in.
func writableStruct<T>(_ p: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
    _ = try readStruct(UnsafePointer(p), name)
    return p!
}

/// A `*_init` thunk: checks the caller's size, writes the defaults and our `struct_size`.
func initStruct<T>(_ p: UnsafeMutablePointer<T>?, _ size: Int, _ name: String, _ defaults: () throws -> T) -> da_status {
    guarded {
        guard let p else { throw DiffAttnError.argument("\(name) is NULL") }
        guard size >= MemoryLayout<T>.size else {
            throw DiffAttnError.argument("struct_size \(size) is smaller than \(T.self) (\(MemoryLayout<T>.size))")
        }
        var value = try defaults()
        withUnsafeMutableBytes(of: &value) { $0.storeBytes(of: UInt32(MemoryLayout<T>.size), as: UInt32.self) }
        p.pointee = value
    }
}

private func optionalSize(_ v: Int64, _ name: String) throws -> Int? {
    guard v >= 0 else { throw DiffAttnError.argument("\(name) must be DA_NONE (0) or positive, got \(v)") }
    return v == 0 ? nil : Int(clamping: v)
}

private func flag(_ v: Int32) -> Bool { v != 0 }

private func tristate(_ v: Int32, _ name: String) throws -> Bool? {
    switch v {
    case DA_TRISTATE_NONE: return nil
    case DA_TRISTATE_FALSE: return false
    case DA_TRISTATE_TRUE: return true
    default: throw DiffAttnError.argument("\(name) must be DA_TRISTATE_NONE, _FALSE or _TRUE, got \(v)")
    }
}

func processorKind(_ raw: Int32, _ name: String) throws -> ProcessorKind {
    guard let kind = ProcessorKind(rawValue: raw) else {
        throw DiffAttnError(.notFound, "\(name) = \(raw) is not a DA_PROCESSOR_* value")
    }
    return kind
}

func swiftConfig(_ c: da_attention_config) throws -> AttentionConfig {
    guard let qk = QKNorm(rawValue: c.qk_norm) else {
        throw DiffAttnError.value("unknown qk_norm: \(c.qk_norm). Should be one of None, 'layer_norm', 'fp32_layer_norm', 'layer_norm_across_heads', 'rms_norm', 'rms_norm_across_heads', 'l2'.")
    }
    guard let crossNorm = CrossAttentionNorm(rawValue: c.cross_attention_norm) else {
        throw DiffAttnError.value("unknown cross_attention_norm: \(c.cross_attention_norm). Should be None, 'layer_norm' or 'group_norm'")
    }
    // Sizes are range-checked by Attention's construction checks (Attention.validate).
    var s = AttentionConfig(queryDim: Int(c.query_dim))
    s.crossAttentionDim = try optionalSize(c.cross_attention_dim, "cross_attention_dim")
    s.heads = Int(try moduleHeads(c))
    s.kvHeads = try optionalSize(c.kv_heads, "kv_heads")
    s.dimHead = Int(c.dim_head)
    s.dropout = c.dropout
    s.bias = flag(c.bias)
    s.upcastAttention = flag(c.upcast_attention)
    s.upcastSoftmax = flag(c.upcast_softmax)
    s.crossAttentionNorm = crossNorm
    s.crossAttentionNormNumGroups = Int(c.cross_attention_norm_num_groups)
    s.qkNorm = qk
    s.addedKVProjDim = try optionalSize(c.added_kv_proj_dim, "added_kv_proj_dim")
    s.addedProjBias = try tristate(c.added_proj_bias, "added_proj_bias")
    s.normNumGroups = try optionalSize(c.norm_num_groups, "norm_num_groups")
    s.spatialNormDim = try optionalSize(c.spatial_norm_dim, "spatial_norm_dim")
    s.outBias = flag(c.out_bias)
    s.scaleQK = flag(c.scale_qk)
    s.onlyCrossAttention = flag(c.only_cross_attention)
    s.eps = c.eps
    s.rescaleOutputFactor = c.rescale_output_factor
    s.residualConnection = flag(c.residual_connection)
    s.fromDeprecatedAttnBlock = flag(c.from_deprecated_attn_block)
    if c.processor != DA_PROCESSOR_DEFAULT {
        s.processor = ProcessorConfig(kind: try processorKind(c.processor, "config->processor"))
    }
    s.outDim = try optionalSize(c.out_dim, "out_dim")
    s.outContextDim = try optionalSize(c.out_context_dim, "out_context_dim")
    s.contextPreOnly = try tristate(c.context_pre_only, "context_pre_only")
    s.preOnly = flag(c.pre_only)
    s.elementwiseAffine = flag(c.elementwise_affine)
    s.isCausal = flag(c.is_causal)
    try readModuleFields(c, into: &s)
    return s
}

func cConfig(_ s: AttentionConfig, into c: inout da_attention_config) {
    func tri(_ b: Bool?) -> Int32 { b.map { $0 ? DA_TRISTATE_TRUE : DA_TRISTATE_FALSE } ?? DA_TRISTATE_NONE }
    c.query_dim = Int64(s.queryDim)
    c.cross_attention_dim = Int64(s.crossAttentionDim ?? 0)
    c.heads = Int64(s.heads)
    c.kv_heads = Int64(s.kvHeads ?? 0)
    c.dim_head = Int64(s.dimHead)
    c.dropout = s.dropout
    c.bias = s.bias ? 1 : 0
    c.upcast_attention = s.upcastAttention ? 1 : 0
    c.upcast_softmax = s.upcastSoftmax ? 1 : 0
    c.cross_attention_norm = s.crossAttentionNorm.rawValue
    c.cross_attention_norm_num_groups = Int64(s.crossAttentionNormNumGroups)
    c.qk_norm = s.qkNorm.rawValue
    c.added_kv_proj_dim = Int64(s.addedKVProjDim ?? 0)
    c.added_proj_bias = tri(s.addedProjBias)
    c.norm_num_groups = Int64(s.normNumGroups ?? 0)
    c.spatial_norm_dim = Int64(s.spatialNormDim ?? 0)
    c.out_bias = s.outBias ? 1 : 0
    c.scale_qk = s.scaleQK ? 1 : 0
    c.only_cross_attention = s.onlyCrossAttention ? 1 : 0
    c.eps = s.eps
    c.rescale_output_factor = s.rescaleOutputFactor
    c.residual_connection = s.residualConnection ? 1 : 0
    c.from_deprecated_attn_block = s.fromDeprecatedAttnBlock ? 1 : 0
    c.processor = s.processor?.kind.rawValue ?? DA_PROCESSOR_DEFAULT
    c.out_dim = Int64(s.outDim ?? 0)
    c.out_context_dim = Int64(s.outContextDim ?? 0)
    c.context_pre_only = tri(s.contextPreOnly)
    c.pre_only = s.preOnly ? 1 : 0
    c.elementwise_affine = s.elementwiseAffine ? 1 : 0
    c.is_causal = s.isCausal ? 1 : 0
    writeModuleFields(s, into: &c)
}

/// As `swiftProcessor(_:)`, DA_PROCESSOR_DEFAULT standing for the default of `module`'s class.
func swiftProcessor(_ p: da_processor_config, for module: Attention) throws -> ProcessorConfig {
    p.kind == DA_PROCESSOR_DEFAULT ? Attention.defaultProcessor(module.config) : try swiftProcessor(p)
}

func swiftProcessor(_ p: da_processor_config) throws -> ProcessorConfig {
    let kind = try processorKind(p.kind, "processor->kind")
    var s = ProcessorConfig(kind: kind)
    if kind == .slicedAttnProcessor || kind == .slicedAttnAddedKVProcessor { s.sliceSize = Int(p.slice_size) }
    s.hiddenSize = try optionalSize(p.hidden_size, "processor->hidden_size")
    s.crossAttentionDim = try optionalSize(p.cross_attention_dim, "processor->cross_attention_dim")
    s.trainKV = flag(p.train_kv)
    s.trainQOut = flag(p.train_q_out)
    s.outBias = flag(p.out_bias)
    s.dropout = p.dropout
    let adapters = Int(p.num_ip_adapters)
    guard adapters >= 1 && adapters <= 1024 else {
        throw DiffAttnError.argument("processor->num_ip_adapters must be in 1...1024, got \(p.num_ip_adapters)")
    }
    let defaultTokens = s.numTokens[0]
    s.numTokens = (0..<adapters).map { k in p.num_tokens.map { Int($0[k]) } ?? defaultTokens }
    var next = 0
    s.scale = try (0..<adapters).map { k in
        let count = p.scale_counts.map { Int($0[k]) } ?? 0
        guard count >= 0 && count <= 1024 else {
            throw DiffAttnError.argument("processor->scale_counts[\(k)] must be in 0...1024, got \(count)")
        }
        let values = (0..<max(count, 1)).map { i in p.scales.map { Float($0[next + i]) } ?? s.defaultScale }
        next += max(count, 1)
        return count == 0 ? .uniform(values[0]) : .perImage(values)
    }
    s.ipHiddenStatesDim = try optionalSize(p.ip_hidden_states_dim, "processor->ip_hidden_states_dim")
    s.headDim = try optionalSize(p.head_dim, "processor->head_dim")
    s.timestepsEmbDim = Int(p.timesteps_emb_dim)
    return s
}

/// Writes a processor's scalar arguments (array fields are left NULL: read the IP-Adapter scale
/// with da_attention_get_ip_adapter_scale).
func cProcessor(_ s: ProcessorConfig, into p: inout da_processor_config) {
    p.kind = s.kind.rawValue
    p.slice_size = Int64(s.sliceSize ?? 0)
    p.hidden_size = Int64(s.hiddenSize ?? 0)
    p.cross_attention_dim = Int64(s.crossAttentionDim ?? 0)
    p.train_kv = s.trainKV ? 1 : 0
    p.train_q_out = s.trainQOut ? 1 : 0
    p.out_bias = s.outBias ? 1 : 0
    p.num_ip_adapters = Int32(s.numTokens.count)
    p.dropout = s.dropout
    p.num_tokens = nil
    p.scale_counts = nil
    p.scales = nil
    p.ip_hidden_states_dim = Int64(s.ipHiddenStatesDim ?? 0)
    p.head_dim = Int64(s.headDim ?? 0)
    p.timesteps_emb_dim = Int64(s.timestepsEmbDim)
}

/// `items[index]` for an index a caller passed, or an error saying how many there are
/// (`what` names them: "weights", "transformer blocks", …).
func element<T>(_ items: [T], at index: Int64, _ what: String) throws -> T {
    guard index >= 0, index < Int64(items.count) else {
        throw DiffAttnError.argument("index \(index) is out of range; there are \(items.count) \(what)")
    }
    return items[Int(index)]
}

/// Fills a caller's `da_weight_info` with one state-dict entry.
func fillWeightInfo(_ info: UnsafeMutablePointer<da_weight_info>, name: String, shape: [Int]) throws {
    guard shape.count <= Int(DA_MAX_NDIM) else { throw DiffAttnError.shape("weight '\(name)' has more than \(DA_MAX_NDIM) dimensions") }
    info.pointee.ndim = Int32(shape.count)
    info.pointee.name = internedCString(name)
    withUnsafeMutableBytes(of: &info.pointee.shape) { raw in
        let dims = raw.bindMemory(to: Int64.self)
        for i in 0..<Int(DA_MAX_NDIM) { dims[i] = i < shape.count ? Int64(shape[i]) : 0 }
    }
}
