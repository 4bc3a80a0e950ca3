import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for the block protocol, cache contexts, FirstBlockCache, MagCache, TeaCache and the
// CacheMixin calls. No logic beyond parse, validate, call.


private func setCount(_ p: UnsafeMutablePointer<Int64>?, _ n: Int) { p?.pointee = Int64(n) }

/// `count` doubles, or nil for NULL with count 0.
func doubleList(_ p: UnsafePointer<Double>?, _ count: Int64, _ name: String) throws -> [Double]? {
    guard let p else {
        guard count == 0 else { throw DiffAttnError.argument("\(name) is NULL with count \(count)") }
        return nil
    }
    guard count >= 0, count <= 1 << 20 else { throw DiffAttnError.argument("num_\(name) must be in 0...\(1 << 20), got \(count)") }
    return Array(UnsafeBufferPointer(start: p, count: Int(count)))
}

@_cdecl("da_block_io_init")
public func da_block_io_init(_ io: UnsafeMutablePointer<da_block_io>?, _ size: Int) -> da_status {
    guarded {
        guard let io else { throw DiffAttnError.argument("io is NULL") }
        let old = MemoryLayout<da_block_io>.offset(of: \da_block_io.outputs)!
        guard size >= MemoryLayout<da_block_io>.size || size == old else {
            throw DiffAttnError.argument("struct_size \(size) is smaller than da_block_io (\(MemoryLayout<da_block_io>.size))")
        }
        // A caller of the older, shorter struct gets only its fields written.
        UnsafeMutableRawPointer(io).initializeMemory(as: UInt8.self, repeating: 0, count: min(size, MemoryLayout<da_block_io>.size))
        UnsafeMutableRawPointer(io).storeBytes(of: UInt32(min(size, MemoryLayout<da_block_io>.size)), as: UInt32.self)
    }
}

/// The caller's io (older, shorter structs accepted) and the library's view of it.
private func readIO(_ io: UnsafeMutablePointer<da_block_io>?, end: Bool) throws -> (UnsafeMutablePointer<da_block_io>, BlockIO) {
    let c = try readGrownStruct(UnsafePointer(io), "io", since: \da_block_io.outputs)
    guard c.hidden_states != nil else { throw DiffAttnError.argument("io.hidden_states is NULL") }
    var v = BlockIO(hiddenStates: try readTensor(c.hidden_states, "io.hidden_states"),
                    encoderHiddenStates: try readOptionalTensor(c.encoder_hidden_states, "io.encoder_hidden_states"),
                    modulatedInput: try readOptionalTensor(c.modulated_input, "io.modulated_input"))
    if let outs = c.outputs {
        guard c.num_outputs >= 1, c.num_outputs <= 64 else {
            throw DiffAttnError.argument("io.num_outputs must be in 1...64 with io.outputs set, got \(c.num_outputs)")
        }
        v.outputForm = true
        if end { v.outputs = try (0..<Int(c.num_outputs)).map { try readTensor(outs + $0, "io.outputs[\($0)]") } }
    }
    return (io!, v)
}

private func writeIO(_ v: BlockIO, into p: UnsafeMutablePointer<da_block_io>) throws {
    let c = try readGrownStruct(UnsafePointer(p), "io", since: \da_block_io.outputs)
    if v.outputForm {
        guard let outs = v.outputs else { return }
        guard outs.count == Int(c.num_outputs) else {
            throw DiffAttnError.shape("the module's cached outputs are \(outs.count) tensors; io.num_outputs is \(c.num_outputs)")
        }
        for (i, t) in outs.enumerated() { try writeTensor(t, into: c.outputs! + i, "io.outputs[\(i)]") }
        return
    }
    try writeTensor(v.hiddenStates, into: c.hidden_states, "io.hidden_states")
    if let e = v.encoderHiddenStates {
        guard c.encoder_hidden_states != nil else {
            throw DiffAttnError.state("a cache produced an encoder stream but io.encoder_hidden_states is NULL")
        }
        try writeTensor(e, into: c.encoder_hidden_states, "io.encoder_hidden_states")
    }
}

@_cdecl("da_model_module_begin")
public func da_model_module_begin(_ h: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ io: UnsafeMutablePointer<da_block_io>?,
                                  _ run: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded {
        let m = try model(h)
        let p = try cString(path, "path")
        let out = try output(run, "run")
        var (ptr, v) = try readIO(io, end: false)
        let r = try m.moduleBegin(p, &v)
        if !r || !v.outputForm { try writeIO(v, into: ptr) }
        out.pointee = r ? 1 : 0
    }
}

@_cdecl("da_model_module_end")
public func da_model_module_end(_ h: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ io: UnsafeMutablePointer<da_block_io>?) -> da_status {
    guarded {
        let m = try model(h)
        let p = try cString(path, "path")
        var (ptr, v) = try readIO(io, end: true)
        try m.moduleEnd(p, &v)
        try writeIO(v, into: ptr)
    }
}

@_cdecl("da_model_transformer_block_count")
public func da_model_transformer_block_count(_ h: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let m = try model(h); try output(count, "count").pointee = Int64(m.transformerBlockPaths.count) }
}

@_cdecl("da_model_transformer_block_path")
public func da_model_transformer_block_path(_ h: OpaquePointer?, _ index: Int64, _ path: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> da_status {
    guarded {
        let blocks = try model(h).transformerBlockPaths
        let out = try output(path, "path")
        out.pointee = internedCString(try element(blocks, at: index, "transformer blocks in this model"))
    }
}

@_cdecl("da_model_set_cache_context")
public func da_model_set_cache_context(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> da_status {
    guarded { try model(h).setCacheContext(name.map { String(cString: $0) }) }
}

@_cdecl("da_first_block_cache_config_init")
public func da_first_block_cache_config_init(_ c: UnsafeMutablePointer<da_first_block_cache_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") { var v = da_first_block_cache_config(); v.threshold = FirstBlockCacheConfig().threshold; return v }
}

func firstBlockCacheConfig(_ c: da_first_block_cache_config) -> FirstBlockCacheConfig { FirstBlockCacheConfig(threshold: c.threshold) }

@_cdecl("da_model_apply_first_block_cache")
public func da_model_apply_first_block_cache(_ h: OpaquePointer?, _ config: UnsafePointer<da_first_block_cache_config>?,
                                             _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let m = try model(h)
        setCount(hooked, try m.applyFirstBlockCache(firstBlockCacheConfig(try readStruct(config, "config"))).count)
    }
}

@_cdecl("da_mag_cache_config_init")
public func da_mag_cache_config_init(_ c: UnsafeMutablePointer<da_mag_cache_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") {
        let s = try MagCacheConfig(calibrate: true)  // the one form valid without ratios
        var v = da_mag_cache_config()
        v.threshold = s.threshold; v.max_skip_steps = Int64(s.maxSkipSteps); v.retention_ratio = s.retentionRatio
        v.num_inference_steps = Int64(s.numInferenceSteps)
        return v
    }
}

func magCacheConfig(_ c: da_mag_cache_config) throws -> MagCacheConfig {
    try MagCacheConfig(threshold: c.threshold, maxSkipSteps: Int(c.max_skip_steps), retentionRatio: c.retention_ratio,
                              numInferenceSteps: Int(c.num_inference_steps),
                              magRatios: try doubleList(c.mag_ratios, c.num_mag_ratios, "mag_ratios"), calibrate: c.calibrate != 0)
}

@_cdecl("da_model_apply_mag_cache")
public func da_model_apply_mag_cache(_ h: OpaquePointer?, _ config: UnsafePointer<da_mag_cache_config>?,
                                     _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let m = try model(h); setCount(hooked, try m.applyMagCache(try magCacheConfig(try readStruct(config, "config"))).count) }
}

@_cdecl("da_model_mag_cache_calibration")
public func da_model_mag_cache_calibration(_ h: OpaquePointer?, _ ratios: UnsafeMutablePointer<Double>?, _ capacity: Int64,
                                           _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let m = try model(h)
        let out = try output(count, "count")
        guard capacity >= 0, ratios != nil || capacity == 0 else { throw DiffAttnError.argument("ratios is NULL with capacity \(capacity)") }
        guard let r = m.magCacheCalibrationRatios else { throw DiffAttnError.state("no MagCache calibration run has completed on this model") }
        out.pointee = Int64(r.count)
        for (i, v) in r.prefix(Int(clamping: capacity)).enumerated() { ratios![i] = v }
    }
}

@_cdecl("da_teacache_config_init")
public func da_teacache_config_init(_ c: UnsafeMutablePointer<da_teacache_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") {
        let s = try TeaCacheConfig()
        var v = da_teacache_config()
        v.rel_l1_thresh = s.relL1Thresh; v.num_inference_steps = Int64(s.numInferenceSteps)
        return v
    }
}

func teaCacheConfig(_ c: da_teacache_config) throws -> TeaCacheConfig {
    try TeaCacheConfig(relL1Thresh: c.rel_l1_thresh,
                              coefficients: try doubleList(c.coefficients, c.num_coefficients, "coefficients") ?? TeaCacheConfig.fluxCoefficients,
                              numInferenceSteps: Int(c.num_inference_steps))
}

@_cdecl("da_model_apply_teacache")
public func da_model_apply_teacache(_ h: OpaquePointer?, _ config: UnsafePointer<da_teacache_config>?,
                                    _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let m = try model(h); setCount(hooked, try m.applyTeaCache(try teaCacheConfig(try readStruct(config, "config"))).count) }
}

@_cdecl("da_model_enable_cache")
public func da_model_enable_cache(_ h: OpaquePointer?, _ kind: Int32, _ config: UnsafeRawPointer?) -> da_status {
    guarded {
        let m = try model(h)
        guard let k = CacheKind(rawValue: kind) else { throw DiffAttnError.value("Cache config kind \(kind) is not supported.") }
        guard let config else { throw DiffAttnError.argument("config is NULL") }
        try m.enableCache(k) {
            switch k {
            case .fasterCache: _ = try applyFasterCacheC(m, config.assumingMemoryBound(to: da_faster_cache_config.self))
            case .firstBlockCache: _ = try m.applyFirstBlockCache(firstBlockCacheConfig(try readStruct(config.assumingMemoryBound(to: da_first_block_cache_config.self), "config")))
            case .magCache: _ = try m.applyMagCache(try magCacheConfig(try readStruct(config.assumingMemoryBound(to: da_mag_cache_config.self), "config")))
            case .pyramidAttentionBroadcast: _ = try applyPyramidAttentionBroadcastC(m, config.assumingMemoryBound(to: da_pab_config.self))
            case .taylorSeerCache: _ = try applyTaylorSeerC(m, config.assumingMemoryBound(to: da_taylorseer_cache_config.self))
            case .teaCache: _ = try m.applyTeaCache(try teaCacheConfig(try readStruct(config.assumingMemoryBound(to: da_teacache_config.self), "config")))
            case .seaCache: _ = try m.applySeaCache(seaCacheConfig(try readStruct(config.assumingMemoryBound(to: da_sea_cache_config.self), "config")))
            case .textKVCache:
                _ = try readStruct(config.assumingMemoryBound(to: da_text_kv_cache_config.self), "config")
                _ = try m.applyTextKVCache(TextKVCacheConfig())
            }
        }
    }
}

@_cdecl("da_model_disable_cache")
public func da_model_disable_cache(_ h: OpaquePointer?) -> da_status { guarded { _ = try model(h).disableCache() } }

@_cdecl("da_model_enabled_cache")
public func da_model_enabled_cache(_ h: OpaquePointer?, _ kind: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded { let m = try model(h); try output(kind, "kind").pointee = m.enabledCache?.rawValue ?? DA_CACHE_NONE }
}
