import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// da_scaled_dot_product_attention: torch's F.scaled_dot_product_attention on caller tensors,
// read in place through their strides.

/// The options `da_sdpa_options_init` writes and a NULL `options` means.
private func defaultOptions() -> da_sdpa_options {
    var o = da_sdpa_options()
    o.algorithm = DA_SDPA_AUTO
    return o
}

@_cdecl("da_sdpa_options_init")
public func da_sdpa_options_init(_ options: UnsafeMutablePointer<da_sdpa_options>?, _ size: Int) -> da_status {
    initStruct(options, size, "options") { defaultOptions() }
}

/// The caller's options. A struct from before `precision` (struct_size up to `algorithm`) is
/// accepted with the new fields at their defaults.
private func readSDPAOptions(_ options: UnsafePointer<da_sdpa_options>?) throws -> da_sdpa_options {
    var opts = defaultOptions()
    guard let options else { return opts }
    let size = Int(UnsafeRawPointer(options).load(as: UInt32.self))
    let firstVersion = MemoryLayout<da_sdpa_options>.offset(of: \da_sdpa_options.precision)!
    guard size >= firstVersion else {
        throw DiffAttnError.argument("options->struct_size is \(size); expected at least \(firstVersion) (initialise it with da_sdpa_options_init)")
    }
    withUnsafeMutableBytes(of: &opts) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: options, count: min(size, dst.count)))
    }
    return opts
}

/// A rank-3 or rank-4 operand as (batch, heads, tokens, channels) sizes and strides.
private struct Operand4 {
    var sizes: [Int]
    var strides: [Int]
    var base: UnsafeMutableRawPointer?
    var bfloat16: Bool

    init(_ p: UnsafePointer<DLTensor>?, _ name: String) throws {
        let g = try geometry(p, name, allowBFloat16: true)
        bfloat16 = elementKind(p!.pointee.dtype) == .bfloat16
        guard g.shape.count == 3 || g.shape.count == 4 else {
            throw DiffAttnError.shape("\(name) must be 4-D (batch, heads, tokens, head_dim) or 3-D (heads, tokens, head_dim), got shape \(g.shape)")
        }
        sizes = g.shape.count == 4 ? g.shape : [1] + g.shape
        strides = g.shape.count == 4 ? g.strides : [0] + g.strides
        base = g.base
    }

    /// The operand for the kernel: float32 or bf16 bit patterns.
    func operand(batch: Int, heads: Int) -> SDPAOperand {
        bfloat16 ? SDPAOperand(bfloat16: UnsafePointer(base!.assumingMemoryBound(to: UInt16.self)), strides: strides4(batch: batch, heads: heads))
            : SDPAOperand(data: UnsafePointer(base!.assumingMemoryBound(to: Float.self)), strides: strides4(batch: batch, heads: heads))
    }

    /// Strides that broadcast a size-1 batch or head axis to `batch` / `heads`.
    func strides4(batch: Int, heads: Int) -> Strides4 {
        Strides4(batch: sizes[0] == 1 && batch != 1 ? 0 : strides[0],
                 head: sizes[1] == 1 && heads != 1 ? 0 : strides[1], token: strides[2], channel: strides[3])
    }
}

@_cdecl("da_scaled_dot_product_attention")
public func da_scaled_dot_product_attention(_ query: UnsafePointer<DLTensor>?, _ key: UnsafePointer<DLTensor>?,
                                            _ value: UnsafePointer<DLTensor>?, _ attnMask: UnsafePointer<DLTensor>?,
                                            _ options: UnsafePointer<da_sdpa_options>?, _ out: UnsafeMutablePointer<DLTensor>?) -> da_status {
    guarded { try sdpa(query, key, value, attnMask, options, out, lse: nil, lseWanted: false) }
}

@_cdecl("da_sdpa_with_lse")
public func da_sdpa_with_lse(_ query: UnsafePointer<DLTensor>?, _ key: UnsafePointer<DLTensor>?,
                             _ value: UnsafePointer<DLTensor>?, _ attnMask: UnsafePointer<DLTensor>?,
                             _ options: UnsafePointer<da_sdpa_options>?, _ out: UnsafeMutablePointer<DLTensor>?,
                             _ lse: UnsafeMutablePointer<DLTensor>?) -> da_status {
    guarded { try sdpa(query, key, value, attnMask, options, out, lse: lse, lseWanted: true) }
}

private func sdpa(_ query: UnsafePointer<DLTensor>?, _ key: UnsafePointer<DLTensor>?,
                  _ value: UnsafePointer<DLTensor>?, _ attnMask: UnsafePointer<DLTensor>?,
                  _ options: UnsafePointer<da_sdpa_options>?, _ out: UnsafeMutablePointer<DLTensor>?,
                  lse: UnsafeMutablePointer<DLTensor>?, lseWanted: Bool) throws {
        let opts = try readSDPAOptions(options)
        guard [DA_PRECISION_DEFAULT, DA_PRECISION_INT8].contains(opts.precision) else {
            throw DiffAttnError.argument("options->precision must be DA_PRECISION_DEFAULT or DA_PRECISION_INT8, got \(opts.precision)")
        }
        if opts.precision == DA_PRECISION_INT8 && !int8AttentionSupported {
            throw DiffAttnError(.unsupported, "options->precision DA_PRECISION_INT8 needs a CPU with AVX2 (its integer kernels are AVX2 only); this one has \(CPUFeatures.current.summary)")
        }
        guard opts.dropout_p == 0 else { throw DiffAttnError.argument("dropout_p must be 0 (libdiffattn is inference only), got \(opts.dropout_p)") }
        guard [DA_SDPA_AUTO, DA_SDPA_MATH, DA_SDPA_FLASH].contains(opts.algorithm) else {
            throw DiffAttnError.argument("options->algorithm must be DA_SDPA_AUTO, DA_SDPA_MATH or DA_SDPA_FLASH, got \(opts.algorithm)")
        }
        guard !(opts.is_causal != 0 && attnMask != nil) else {
            throw DiffAttnError.argument("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
        }
        let q = try Operand4(query, "query"), k = try Operand4(key, "key"), v = try Operand4(value, "value")
        guard q.bfloat16 == k.bfloat16 && k.bfloat16 == v.bfloat16 else {
            throw DiffAttnError.dtype("query, key and value must share one dtype (all float32 or all bfloat16), got \(dtypeName(query!.pointee.dtype)), \(dtypeName(key!.pointee.dtype)), \(dtypeName(value!.pointee.dtype))")
        }
        let (b, h, l, d) = (q.sizes[0], q.sizes[1], q.sizes[2], q.sizes[3])
        let (s, dv) = (k.sizes[2], v.sizes[3])
        guard k.sizes[3] == d else { throw DiffAttnError.shape("key head_dim \(k.sizes[3]) differs from query head_dim \(d)") }
        guard v.sizes[0] == k.sizes[0], v.sizes[1] == k.sizes[1], v.sizes[2] == s else {
            throw DiffAttnError.shape("value shape \(v.sizes) must match key shape \(k.sizes) except in its last axis")
        }
        let kb = k.sizes[0], kh = k.sizes[1]
        guard kb == b || kb == 1 else { throw DiffAttnError.shape("key batch \(kb) does not broadcast to query batch \(b)") }
        var kvHeads = h
        if kh != h {
            if opts.enable_gqa != 0 {
                guard kh > 0, h % kh == 0 else { throw DiffAttnError.shape("enable_gqa needs query heads (\(h)) to be a multiple of key/value heads (\(kh))") }
                kvHeads = kh
            } else if kh != 1 {
                throw DiffAttnError.shape("key/value heads (\(kh)) differ from query heads (\(h)); pass enable_gqa to group query heads")
            }
        }
        let g = try geometry(UnsafePointer(out), "out", allowBFloat16: true)
        let bfloat16Output = elementKind(out!.pointee.dtype) == .bfloat16
        let outSizes = g.shape.count == 3 ? [1] + g.shape : g.shape
        guard outSizes == [b, h, l, dv], g.shape.count == q.sizes.count || (g.shape.count == 3 && query!.pointee.ndim == 3) else {
            throw DiffAttnError.shape("out must have shape \(query!.pointee.ndim == 3 ? [h, l, dv] : [b, h, l, dv]), got \(g.shape)")
        }
        let outStrides = g.shape.count == 3 ? [0] + g.strides : g.strides
        if lseWanted && opts.precision == DA_PRECISION_INT8 {
            throw DiffAttnError(.unsupported, "da_sdpa_with_lse does not run DA_PRECISION_INT8; use the default precision")
        }
        let lseOut = lseWanted ? try lseGeometry(lse, "lse", rank: g.shape.count - 1, batch: b, heads: h, rows: l) : nil
        if b == 0 || h == 0 || l == 0 || dv == 0 { return }
        if s == 0 || d == 0 {
            throw DiffAttnError.shape("key length and head_dim must be positive for attention, got \(s) and \(d)")
        }
        var maskValue: SDPAMask = .none
        var maskBase: UnsafeMutableRawPointer?
        var maskKind = ElementKind.float32
        var maskStrides = Strides4(batch: 0, head: 0, token: 0, channel: 0)
        if attnMask != nil {
            let mg = try geometry(attnMask, "attn_mask", allowBoolean: true)
            guard mg.shape.count <= 4, let st = broadcastStrides(shape: mg.shape, strides: mg.strides, to: [b, h, l, s]) else {
                throw DiffAttnError.shape("attn_mask of shape \(mg.shape) does not broadcast to (batch, heads, query tokens, key tokens) = \([b, h, l, s])")
            }
            maskStrides = Strides4(batch: st[0], head: st[1], token: st[2], channel: st[3])
            maskBase = mg.base
            maskKind = elementKind(attnMask!.pointee.dtype)!
        }
        if let maskBase {
            maskValue = maskKind == .float32
                ? .additive(UnsafePointer(maskBase.assumingMemoryBound(to: Float.self)), maskStrides)
                : .boolean(UnsafePointer(maskBase.assumingMemoryBound(to: UInt8.self)), maskStrides)
        }
        let scale = opts.has_scale != 0 ? Float(opts.scale) : Float(1 / Double(d).squareRoot())
        guard scale.isFinite else { throw DiffAttnError.argument("scale must be finite, got \(opts.scale)") }
        let problem = SDPAProblem(
            batch: b, queryHeads: h, keyValueHeads: kvHeads, queryLength: l, keyLength: s, headDim: d, valueDim: dv,
            query: q.operand(batch: b, heads: h), key: k.operand(batch: b, heads: kvHeads),
            value: v.operand(batch: b, heads: kvHeads),
            output: g.base!.assumingMemoryBound(to: Float.self),
            outputStrides: Strides4(batch: outStrides[0], head: outStrides[1], token: outStrides[2], channel: outStrides[3]),
            mask: maskValue, scale: scale, isCausal: opts.is_causal != 0, fullyMaskedRows: .zero)
        var run = problem
        run.outputFormat = bfloat16Output ? .bfloat16 : .float32
        run.precision = opts.precision == DA_PRECISION_INT8 ? .int8 : .standard
        if run.precision == .int8 && int8AttentionScratchFloats(run) > maxWorkingElements {
            throw DiffAttnError(.outOfMemory, "DA_PRECISION_INT8 would hold \(int8AttentionScratchFloats(run)) floats of quantised key/value (one copy per batch element and key/value head), above the limit of \(maxWorkingElements)")
        }
        scaledDotProductAttention(run, algorithm: opts.algorithm == DA_SDPA_MATH ? .math : .flash, logSumExp: lseOut)
}

/// A float32 log-sum-exp tensor of shape (B, H, N) (rank 2 = (H, N) with B = 1), any strides.
func lseGeometry(_ p: UnsafeMutablePointer<DLTensor>?, _ name: String, rank: Int, batch: Int, heads: Int,
                 rows: Int) throws -> LogSumExpOutput? {
    let g = try geometry(UnsafePointer(p), name)
    let expected = rank == 2 ? [heads, rows] : [batch, heads, rows]
    guard g.shape == expected else { throw DiffAttnError.shape("\(name) must have shape \(expected), got \(g.shape)") }
    let st = rank == 2 ? [0] + g.strides : g.strides
    guard let base = g.base else { return nil }
    return LogSumExpOutput(data: base.assumingMemoryBound(to: Float.self), batchStride: st[0], headStride: st[1],
                           tokenStride: st[2])
}
