import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for FasterCache, TaylorSeer and layer skip (configs with lists and callbacks).


@_cdecl("da_faster_cache_config_init")
public func da_faster_cache_config_init(_ c: UnsafeMutablePointer<da_faster_cache_config>?, _ size: Int) -> da_status {
    initGrownStruct(c, size, "config", since: \da_faster_cache_config.low_frequency_weight_callback) {
        let s = FasterCacheConfig()
        var v = da_faster_cache_config()
        v.spatial_attention_block_skip_range = Int64(s.spatialAttentionBlockSkipRange ?? 0)
        v.temporal_attention_block_skip_range = Int64(s.temporalAttentionBlockSkipRange ?? 0)
        v.spatial_attention_timestep_skip_range = s.spatialAttentionTimestepSkipRange
        v.temporal_attention_timestep_skip_range = s.temporalAttentionTimestepSkipRange
        v.low_frequency_weight_update_timestep_range = s.lowFrequencyWeightUpdateTimestepRange
        v.high_frequency_weight_update_timestep_range = s.highFrequencyWeightUpdateTimestepRange
        v.alpha_low_frequency = s.alphaLowFrequency; v.alpha_high_frequency = s.alphaHighFrequency
        v.unconditional_batch_skip_range = Int64(s.unconditionalBatchSkipRange)
        v.unconditional_batch_timestep_skip_range = s.unconditionalBatchTimestepSkipRange
        v.is_guidance_distilled = s.isGuidanceDistilled ? 1 : 0
        return v
    }
}

@discardableResult
func applyFasterCacheC(_ m: Model, _ config: UnsafePointer<da_faster_cache_config>?) throws -> Int {
    let c = try readGrownStruct(config, "config", since: \da_faster_cache_config.low_frequency_weight_callback)
    var s = FasterCacheConfig()
    for (v, n) in [(c.spatial_attention_block_skip_range, "spatial"), (c.temporal_attention_block_skip_range, "temporal")] where v < 0 {
        throw DiffAttnError.argument("\(n)_attention_block_skip_range must be 0 (None) or positive, got \(v)")
    }
    s.spatialAttentionBlockSkipRange = c.spatial_attention_block_skip_range == 0 ? nil : Int(clamping: c.spatial_attention_block_skip_range)
    s.temporalAttentionBlockSkipRange = c.temporal_attention_block_skip_range == 0 ? nil : Int(clamping: c.temporal_attention_block_skip_range)
    s.spatialAttentionTimestepSkipRange = c.spatial_attention_timestep_skip_range
    s.temporalAttentionTimestepSkipRange = c.temporal_attention_timestep_skip_range
    s.lowFrequencyWeightUpdateTimestepRange = c.low_frequency_weight_update_timestep_range
    s.highFrequencyWeightUpdateTimestepRange = c.high_frequency_weight_update_timestep_range
    s.alphaLowFrequency = c.alpha_low_frequency; s.alphaHighFrequency = c.alpha_high_frequency
    s.unconditionalBatchSkipRange = Int(clamping: c.unconditional_batch_skip_range)
    s.unconditionalBatchTimestepSkipRange = c.unconditional_batch_timestep_skip_range
    if let l = try stringList(c.spatial_attention_block_identifiers, c.num_spatial_attention_block_identifiers, "spatial_attention_block_identifiers") { s.spatialAttentionBlockIdentifiers = l }
    if let l = try stringList(c.temporal_attention_block_identifiers, c.num_temporal_attention_block_identifiers, "temporal_attention_block_identifiers") { s.temporalAttentionBlockIdentifiers = l }
    if let f = c.tensor_format { s.tensorFormat = String(cString: f) }
    s.isGuidanceDistilled = c.is_guidance_distilled != 0
    if let cb = c.current_timestep_callback { s.currentTimestepCallback = timestepCallback(cb, c.callback_user_data) }
    if let cb = c.attention_weight_callback {
        let user = UncheckedPointer(c.callback_user_data)
        s.attentionWeightCallback = { path in
            var w = 0.0
            try checkCallback(path.withCString { cb(user.raw, $0, &w) }, "attention_weight_callback")
            return w
        }
    }
    let user = UncheckedPointer(c.callback_user_data)
    for (cb, name, low) in [(c.low_frequency_weight_callback, "low_frequency_weight_callback", true),
                            (c.high_frequency_weight_callback, "high_frequency_weight_callback", false)] {
        guard let cb else { continue }
        let f: () throws -> Double = {
            var w = 0.0
            let status = cb(user.raw, &w)
            guard status == DA_OK else { throw callbackError(status, name) }
            return w
        }
        if low { s.lowFrequencyWeightCallback = f } else { s.highFrequencyWeightCallback = f }
    }
    return try m.applyFasterCache(&s).count
}

@_cdecl("da_model_apply_faster_cache")
public func da_model_apply_faster_cache(_ h: OpaquePointer?, _ config: UnsafePointer<da_faster_cache_config>?,
                                        _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let n = try applyFasterCacheC(try model(h), config); hooked?.pointee = Int64(n) }
}

@_cdecl("da_model_faster_cache_skips_unconditional")
public func da_model_faster_cache_skips_unconditional(_ h: OpaquePointer?, _ skip: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded { let m = try model(h); try output(skip, "skip").pointee = m.fasterCacheSkipsUnconditional ? 1 : 0 }
}

@_cdecl("da_model_faster_cache_denoiser_output")
public func da_model_faster_cache_denoiser_output(_ h: OpaquePointer?, _ out: UnsafePointer<DLTensor>?,
                                                  _ full: UnsafeMutablePointer<DLTensor>?) -> da_status {
    guarded {
        let m = try model(h)
        let x = try readTensor(out, "output")
        _ = try geometry(UnsafePointer(full), "full_output")
        try writeTensor(try m.fasterCacheDenoiserOutput(x), into: full, "full_output")
    }
}

@_cdecl("da_taylorseer_cache_config_init")
public func da_taylorseer_cache_config_init(_ c: UnsafeMutablePointer<da_taylorseer_cache_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") {
        let s = TaylorSeerCacheConfig()
        var v = da_taylorseer_cache_config()
        v.cache_interval = Int64(s.cacheInterval); v.disable_cache_before_step = Int64(s.disableCacheBeforeStep)
        v.disable_cache_after_step = Int64(s.disableCacheAfterStep ?? -1); v.max_order = Int64(s.maxOrder)
        v.taylor_factors_float32 = s.taylorFactorsBFloat16 ? 0 : 1; v.use_lite_mode = s.useLiteMode ? 1 : 0
        return v
    }
}

@discardableResult
func applyTaylorSeerC(_ m: Model, _ config: UnsafePointer<da_taylorseer_cache_config>?) throws -> Int {
    let c = try readStruct(config, "config")
    var s = TaylorSeerCacheConfig()
    guard c.disable_cache_after_step >= -1 else { throw DiffAttnError.argument("disable_cache_after_step must be -1 (None) or non-negative, got \(c.disable_cache_after_step)") }
    s.cacheInterval = Int(c.cache_interval); s.disableCacheBeforeStep = Int(c.disable_cache_before_step)
    s.disableCacheAfterStep = c.disable_cache_after_step < 0 ? nil : Int(clamping: c.disable_cache_after_step)
    s.maxOrder = Int(c.max_order); s.taylorFactorsBFloat16 = c.taylor_factors_float32 == 0
    s.skipPredictIdentifiers = try stringList(c.skip_predict_identifiers, c.num_skip_predict_identifiers, "skip_predict_identifiers")
    s.cacheIdentifiers = try stringList(c.cache_identifiers, c.num_cache_identifiers, "cache_identifiers")
    s.useLiteMode = c.use_lite_mode != 0
    return try m.applyTaylorSeerCache(s).count
}

@_cdecl("da_model_apply_taylorseer_cache")
public func da_model_apply_taylorseer_cache(_ h: OpaquePointer?, _ config: UnsafePointer<da_taylorseer_cache_config>?,
                                            _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let n = try applyTaylorSeerC(try model(h), config); hooked?.pointee = Int64(n) }
}

@_cdecl("da_layer_skip_config_init")
public func da_layer_skip_config_init(_ c: UnsafeMutablePointer<da_layer_skip_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") {
        let s = try LayerSkipConfig(indices: [])
        var v = da_layer_skip_config()
        v.skip_attention = s.skipAttention ? 1 : 0; v.skip_attention_scores = s.skipAttentionScores ? 1 : 0
        v.skip_ff = s.skipFF ? 1 : 0; v.dropout = s.dropout
        return v
    }
}

@_cdecl("da_model_apply_layer_skip")
public func da_model_apply_layer_skip(_ h: OpaquePointer?, _ config: UnsafePointer<da_layer_skip_config>?,
                                      _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let m = try model(h)
        let c = try readStruct(config, "config")
        guard c.num_indices >= 0, c.num_indices <= 1 << 16, c.indices != nil || c.num_indices == 0 else {
            throw DiffAttnError.argument("indices/num_indices are invalid (\(c.num_indices))")
        }
        let idx = c.indices.map { p in (0..<Int(c.num_indices)).map { Int(clamping: p[$0]) } } ?? []
        var s = try LayerSkipConfig(indices: idx, fqn: c.fqn.map { String(cString: $0) } ?? LayerSkipConfig(indices: []).fqn, skipAttention: c.skip_attention != 0,
                                    skipAttentionScores: c.skip_attention_scores != 0, skipFF: c.skip_ff != 0, dropout: c.dropout)
        let plan = try m.applyLayerSkip(&s, name: c.name.map { String(cString: $0) })
        hooked?.pointee = Int64(plan.count)
    }
}
