import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for the DiT additions: module-class config fields, DiT forward keywords, rotary tables
// Parse, validate, call; no math here.

func moduleHeads(_ c: da_attention_config) throws -> Int64 {
    guard c.module_class == DA_MODULE_CLASS_SANA_MULTISCALE_LINEAR_ATTENTION, c.heads == 0 else { return c.heads }
    guard c.mult.isFinite, c.mult > 0, c.dim_head > 0, c.query_dim > 0 else {
        throw DiffAttnError.argument("mult must be finite and positive and query_dim, dim_head positive to derive heads")
    }
    return Int64(clamping: Int(Double(c.query_dim / c.dim_head) * c.mult))
}

func readModuleFields(_ c: da_attention_config, into s: inout AttentionConfig) throws {
    guard let module = ModuleClass(rawValue: c.module_class) else {
        throw DiffAttnError.argument("module_class must be a DA_MODULE_CLASS_* value, got \(c.module_class)")
    }
    s.moduleClass = module
    guard module == .sanaMultiscaleLinearAttention else { return }
    guard let norm = MultiscaleNorm(rawValue: c.norm_type) else {
        throw DiffAttnError.value("norm_type \(c.norm_type) is not supported (DA_MULTISCALE_NORM_*)")
    }
    guard c.num_kernel_sizes >= 0, c.num_kernel_sizes <= 16 else {
        throw DiffAttnError.argument("num_kernel_sizes must be in 0...16, got \(c.num_kernel_sizes)")
    }
    var m = MultiscaleOptions()
    m.outChannels = Int(c.out_channels)  // range-checked with the module (Attention.validateModule)
    m.mult = c.mult
    m.normType = norm
    m.kernelSizes = withUnsafeBytes(of: c.kernel_sizes) { raw in
        Array(raw.bindMemory(to: Int64.self).prefix(Int(c.num_kernel_sizes))).map { Int(clamping: $0) }
    }
    s.multiscale = m
}

func writeModuleFields(_ s: AttentionConfig, into c: inout da_attention_config) {
    c.module_class = s.moduleClass.rawValue
    let m = s.multiscale
    c.out_channels = Int64(m.outChannels)
    c.mult = m.mult
    c.norm_type = m.normType.rawValue
    c.num_kernel_sizes = Int32(m.kernelSizes.count)
    withUnsafeMutableBytes(of: &c.kernel_sizes) { raw in
        let sizes = raw.bindMemory(to: Int64.self)
        for i in 0..<sizes.count { sizes[i] = i < m.kernelSizes.count ? Int64(m.kernelSizes[i]) : 0 }
    }
}

/// Reads an int64 tensor (Allegro positions) with the same geometry checks as float tensors.
private func readIndexTensor(_ p: UnsafePointer<DLTensor>?, _ name: String) throws -> NDArray<Int> {
    guard let p else { throw DiffAttnError.argument("\(name) is NULL") }
    guard p.pointee.dtype.code == 0 && p.pointee.dtype.bits == 64 && p.pointee.dtype.lanes == 1 else {
        throw DiffAttnError.dtype("\(name) must be int64, got \(dtypeName(p.pointee.dtype))")
    }
    var view = p.pointee
    view.dtype = DLDataType(code: 2, bits: 32, lanes: 1)   // geometry is checked in elements
    let g = try withUnsafePointer(to: view) { try geometry($0, name) }
    var out = NDArray<Int>(shape: g.shape, repeating: 0)
    if let base = g.base?.assumingMemoryBound(to: Int64.self) {
        out.storage.withUnsafeMutableBufferPointer { dst in forEachOffset(g) { i, off in dst[i] = Int(clamping: base[off]) } }
    }
    return out
}

func readDiTArgs(_ args: UnsafePointer<da_dit_args>?) throws -> DiTInputs {
    var dit = DiTInputs()
    guard args != nil else { return dit }
    let a = try readStruct(args, "args->dit")
    if (a.rotary_cos == nil) != (a.rotary_sin == nil) { throw DiffAttnError.argument("dit->rotary_cos and rotary_sin must both be given or both NULL") }
    if a.rotary_cos != nil {
        dit.rotary = RotaryPair(cos: try readTensor(a.rotary_cos, "rotary_cos"), sin: try readTensor(a.rotary_sin, "rotary_sin"))
    }
    let cosList = [a.allegro_cos.0, a.allegro_cos.1, a.allegro_cos.2]
    let sinList = [a.allegro_sin.0, a.allegro_sin.1, a.allegro_sin.2]
    let posList = [a.allegro_positions.0, a.allegro_positions.1, a.allegro_positions.2]
    let given = (cosList + sinList + posList).filter { $0 != nil }.count
    if given != 0 {
        guard given == 9 else { throw DiffAttnError.argument("dit->allegro_cos, allegro_sin and allegro_positions must all be given (3 each) or all NULL") }
        for axis in 0..<3 {
            dit.allegroTables.append(RotaryPair(cos: try readTensor(cosList[axis], "allegro_cos[\(axis)]"),
                                                sin: try readTensor(sinList[axis], "allegro_sin[\(axis)]")))
            dit.allegroPositions.append(try readIndexTensor(posList[axis], "allegro_positions[\(axis)]"))
        }
    }
    dit.queryRotaryEmb = try readOptionalTensor(a.query_rotary_emb, "query_rotary_emb")
    dit.keyRotaryEmb = try readOptionalTensor(a.key_rotary_emb, "key_rotary_emb")
    guard a.base_sequence_length >= 0, a.base_sequence_length <= 1 << 40 else {
        throw DiffAttnError.argument("base_sequence_length must be DA_NONE (0) or positive, got \(a.base_sequence_length)")
    }
    dit.baseSequenceLength = a.base_sequence_length == 0 ? nil : Int(a.base_sequence_length)
    return dit
}

@_cdecl("da_dit_args_init")
public func da_dit_args_init(_ args: UnsafeMutablePointer<da_dit_args>?, _ size: Int) -> da_status {
    initStruct(args, size, "args") { da_dit_args() }
}

@_cdecl("da_rotary_tables")
public func da_rotary_tables(_ positions: UnsafePointer<Double>?, _ count: Int64, _ axes: Int32,
                             _ axesDim: UnsafePointer<Int64>?, _ theta: Double, _ linearFactor: Double, _ ntkFactor: Double,
                             _ layout: Int32, _ float64: Int32,
                             _ cosOut: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?,
                             _ sinOut: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?) -> da_status {
    guarded {
        guard let cosOut, let sinOut else { throw DiffAttnError.argument("cos_out and sin_out must not be NULL") }
        cosOut.pointee = nil; sinOut.pointee = nil
        guard count >= 0, count <= 1 << 24, axes >= 1, axes <= 16 else {
            throw DiffAttnError.argument("num_positions must be in 0...\(1 << 24) and num_axes in 1...16, got \(count) and \(axes)")
        }
        guard let axesDim, count == 0 || positions != nil else { throw DiffAttnError.argument("positions and axes_dim must not be NULL") }
        let dims = (0..<Int(axes)).map { Int(clamping: axesDim[$0]) }
        guard dims.allSatisfy({ $0 > 0 && $0 % 2 == 0 && $0 <= 1 << 16 }) else {
            throw DiffAttnError.argument("every axes_dim must be even and in 2...65536, got \(dims)")
        }
        let rule: RotaryTableLayout
        switch layout {
        case DA_ROTARY_REPEAT_INTERLEAVED: rule = .repeatInterleaved
        case DA_ROTARY_CONCATENATED: rule = .concatenated
        case DA_ROTARY_HALF_WIDTH: rule = .halfWidth
        default: throw DiffAttnError.argument("layout must be a DA_ROTARY_* value, got \(layout)")
        }
        guard theta.isFinite, theta > 0, linearFactor.isFinite, linearFactor != 0, ntkFactor.isFinite, ntkFactor > 0 else {
            throw DiffAttnError.argument("theta, linear_factor and ntk_factor must be finite (theta, ntk_factor positive, linear_factor non-zero)")
        }
        let n = Int(count), a = Int(axes)
        let values = (0..<(n * a)).map { positions![$0] }
        guard values.allSatisfy(\.isFinite) else { throw DiffAttnError.argument("positions must be finite") }
        let tables = try rotaryTablesForAxes(values, rows: n, axesDim: dims, theta: theta, linearFactor: linearFactor,
                                             ntkFactor: ntkFactor, layout: rule, float64: float64 != 0)
        let c = try makeManaged(tables.cos)
        do { sinOut.pointee = try makeManaged(tables.sin) } catch { release(c); throw error }
        cosOut.pointee = c
    }
}
