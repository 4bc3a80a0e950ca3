import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for cache contexts with fields, SeaCache and smoothed energy guidance (issue 16).
// No logic beyond parse, validate, call.


@_cdecl("da_cache_context_init")
public func da_cache_context_init(_ c: UnsafeMutablePointer<da_cache_context>?, _ size: Int) -> da_status {
    initStruct(c, size, "context") {
        da_cache_context(struct_size: 0, name: nil, step_index: -1, num_inference_steps: -1, timestep: .nan, sigma: .nan)
    }
}

@_cdecl("da_model_enter_cache_context")
public func da_model_enter_cache_context(_ h: OpaquePointer?, _ c: UnsafePointer<da_cache_context>?) -> da_status {
    guarded {
        let m = try model(h)
        let v = try readStruct(c, "context")
        guard v.step_index >= -1, v.num_inference_steps >= -1 else {
            throw DiffAttnError.argument("context.step_index and context.num_inference_steps must be -1 (None) or non-negative")
        }
        let info = CacheContextInfo(stepIndex: v.step_index < 0 ? nil : Int(v.step_index),
                                    numInferenceSteps: v.num_inference_steps < 0 ? nil : Int(v.num_inference_steps),
                                    timestep: v.timestep.isNaN ? nil : v.timestep, sigma: v.sigma.isNaN ? nil : v.sigma)
        m.enterCacheContext(v.name.map { String(cString: $0) }, info)
    }
}

// MARK: SeaCache

@_cdecl("da_sea_cache_config_init")
public func da_sea_cache_config_init(_ c: UnsafeMutablePointer<da_sea_cache_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") {
        let d = SeaCacheConfig()
        return da_sea_cache_config(struct_size: 0, threshold: d.threshold, residual_order: Int32(d.residualOrder),
                                   retention_steps: Int32(d.retentionSteps), cache_end_steps: Int32(d.cacheEndSteps),
                                   max_consecutive_cached: Int32(d.maxConsecutiveCached), power_exp: d.powerExp)
    }
}

func seaCacheConfig(_ c: da_sea_cache_config) -> SeaCacheConfig {
    var s = SeaCacheConfig()
    s.threshold = c.threshold; s.residualOrder = Int(c.residual_order); s.retentionSteps = Int(c.retention_steps)
    s.cacheEndSteps = Int(c.cache_end_steps); s.maxConsecutiveCached = Int(c.max_consecutive_cached); s.powerExp = c.power_exp
    return s
}

@_cdecl("da_model_apply_sea_cache")
public func da_model_apply_sea_cache(_ h: OpaquePointer?, _ c: UnsafePointer<da_sea_cache_config>?,
                                     _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let m = try model(h)
        let paths = try m.applySeaCache(seaCacheConfig(try readStruct(c, "config")))
        hooked?.pointee = Int64(paths.count)
    }
}

@_cdecl("da_model_set_raw_vision")
public func da_model_set_raw_vision(_ h: OpaquePointer?, _ latents: UnsafePointer<DLTensor>?, _ count: Int64) -> da_status {
    guarded {
        let m = try model(h)
        guard count >= 0, count <= 4096 else { throw DiffAttnError.argument("count must be in 0...4096, got \(count)") }
        guard count == 0 || latents != nil else { throw DiffAttnError.argument("latents is NULL with count \(count)") }
        let list = try (0..<Int(count)).map { try readTensor(latents! + $0, "latents[\($0)]") }
        try m.setRawVision(list.isEmpty ? nil : list)
    }
}

@_cdecl("da_sea_filter")
public func da_sea_filter(_ latent: UnsafePointer<DLTensor>?, _ sigma: Double, _ powerExp: Double,
                          _ out: UnsafeMutablePointer<DLTensor>?) -> da_status {
    guarded {
        let x = try readTensor(latent, "latent")
        guard powerExp.isFinite, powerExp > 0 else { throw DiffAttnError.value("`power_exp` must be positive, got \(powerExp).") }
        guard sigma.isFinite else { throw DiffAttnError.value("sigma must be finite, got \(sigma)") }
        try writeTensor(try SeaFilter.apply(x, sigma: sigma, powerExp: powerExp), into: out, "out")
    }
}

// MARK: smoothed energy guidance

@_cdecl("da_smoothed_energy_guidance_config_init")
public func da_smoothed_energy_guidance_config_init(_ c: UnsafeMutablePointer<da_smoothed_energy_guidance_config>?,
                                                    _ size: Int) -> da_status {
    initStruct(c, size, "config") {
        da_smoothed_energy_guidance_config(struct_size: 0, indices: nil, num_indices: 0, fqn: nil, query_proj_identifiers: nil,
                                           num_query_proj_identifiers: 0, mapping: DA_SEG_DIFFUSERS_0_42_1)
    }
}

private func blurMapping(_ raw: Int32) throws -> QueryBlurMapping {
    guard let m = QueryBlurMapping(rawValue: raw) else {
        throw DiffAttnError.argument("mapping must be DA_SEG_DIFFUSERS_0_42_1 (0) or DA_SEG_CORRECTED (1), got \(raw)")
    }
    return m
}

@_cdecl("da_model_apply_smoothed_energy_guidance")
public func da_model_apply_smoothed_energy_guidance(_ h: OpaquePointer?, _ c: UnsafePointer<da_smoothed_energy_guidance_config>?,
                                                    _ blurSigma: Double, _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let m = try model(h)
        let v = try readStruct(c, "config")
        guard v.num_indices >= 0, v.num_indices <= 1 << 16, v.num_indices == 0 || v.indices != nil else {
            throw DiffAttnError.argument("config.indices / num_indices are inconsistent (\(v.num_indices))")
        }
        var config = SmoothedEnergyGuidanceConfig(indices: (0..<Int(v.num_indices)).map { Int(v.indices![$0]) })
        if let f = v.fqn { config.fqn = String(cString: f) }
        if v.num_query_proj_identifiers > 0 {
            guard let ids = v.query_proj_identifiers, v.num_query_proj_identifiers <= 64 else {
                throw DiffAttnError.argument("config.query_proj_identifiers is NULL or too long")
            }
            config.queryProjIdentifiers = try (0..<Int(v.num_query_proj_identifiers)).map { try cString(ids[$0], "query_proj_identifiers[\($0)]") }
        }
        let paths = try m.applySmoothedEnergyGuidance(&config, blurSigma: blurSigma, mapping: try blurMapping(v.mapping))
        hooked?.pointee = Int64(paths.count)
    }
}

@_cdecl("da_model_remove_smoothed_energy_guidance")
public func da_model_remove_smoothed_energy_guidance(_ h: OpaquePointer?) -> da_status {
    guarded { try model(h).removeSmoothedEnergyGuidance() }
}

@_cdecl("da_seg_blur_query")
public func da_seg_blur_query(_ q: UnsafePointer<DLTensor>?, _ sigma: Double, _ mapping: Int32,
                              _ out: UnsafeMutablePointer<DLTensor>?) -> da_status {
    guarded {
        let x = try readTensor(q, "query")
        try writeTensor(try QueryBlur.apply(x, sigma: sigma, mapping: try blurMapping(mapping)), into: out, "out")
    }
}

// MARK: text K/V cache

@_cdecl("da_text_kv_cache_config_init")
public func da_text_kv_cache_config_init(_ c: UnsafeMutablePointer<da_text_kv_cache_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") { da_text_kv_cache_config(struct_size: 0, reserved: 0) }
}

@_cdecl("da_model_apply_text_kv_cache")
public func da_model_apply_text_kv_cache(_ h: OpaquePointer?, _ c: UnsafePointer<da_text_kv_cache_config>?,
                                         _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let m = try model(h)
        _ = try readStruct(c, "config")
        hooked?.pointee = Int64(try m.applyTextKVCache(TextKVCacheConfig()).count)
    }
}

@_cdecl("da_model_text_kv_cache_counts")
public func da_model_text_kv_cache_counts(_ h: OpaquePointer?, _ hits: UnsafeMutablePointer<Int64>?,
                                          _ misses: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let m = try model(h)
        guard let (hit, miss) = m.textKVCacheCounts else { throw DiffAttnError.state("TextKVCache is not applied to this model") }
        try output(hits, "hits").pointee = Int64(hit)
        try output(misses, "misses").pointee = Int64(miss)
    }
}
