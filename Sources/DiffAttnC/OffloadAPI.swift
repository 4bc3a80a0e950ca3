import CDiffAttnHeader
import DiffAttn

// Thunks for group offloading and pyramid attention broadcast.


/// `count` C strings, or nil for a NULL list.
func stringList(_ p: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int64, _ name: String) throws -> [String]? {
    guard let p else {
        guard count == 0 else { throw DiffAttnError.argument("\(name) is NULL with count \(count)") }
        return nil
    }
    guard count >= 0, count <= 1 << 16 else { throw DiffAttnError.argument("num_\(name) must be in 0...\(1 << 16), got \(count)") }
    return try (0..<Int(count)).map { try cString(p[$0], "\(name)[\($0)]") }
}

private func optionalRange(_ v: Int64, _ name: String) throws -> Int? {
    guard v >= 0 else { throw DiffAttnError.argument("\(name) must be 0 (None) or positive, got \(v)") }
    return v == 0 ? nil : Int(clamping: v)
}

@_cdecl("da_group_offload_config_init")
public func da_group_offload_config_init(_ c: UnsafeMutablePointer<da_group_offload_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") {
        let s = GroupOffloadConfig()
        var v = da_group_offload_config()
        v.offload_type = s.offloadType.rawValue
        v.num_blocks_per_group = Int64(s.numBlocksPerGroup ?? 0)
        v.non_blocking = s.nonBlocking ? 1 : 0; v.use_stream = s.useStream ? 1 : 0
        v.record_stream = s.recordStream ? 1 : 0; v.low_cpu_mem_usage = s.lowCPUMemUsage ? 1 : 0
        return v
    }
}

@_cdecl("da_model_enable_group_offload")
public func da_model_enable_group_offload(_ h: OpaquePointer?, _ device: UnsafePointer<CChar>?,
                                          _ config: UnsafePointer<da_group_offload_config>?) -> da_status {
    guarded {
        let m = try model(h)
        let c = try readStruct(config, "config")
        var s = GroupOffloadConfig()
        if let device { s.onloadDevice = String(cString: device) }
        guard let type = GroupOffloadingType(rawValue: c.offload_type) else {
            throw DiffAttnError.value("'\(c.offload_type)' is not a valid GroupOffloadingType (DA_OFFLOAD_BLOCK_LEVEL or DA_OFFLOAD_LEAF_LEVEL)")
        }
        s.offloadType = type
        guard c.num_blocks_per_group >= 0 else { throw DiffAttnError.argument("num_blocks_per_group must be 0 (None) or positive, got \(c.num_blocks_per_group)") }
        s.numBlocksPerGroup = c.num_blocks_per_group == 0 ? nil : Int(clamping: c.num_blocks_per_group)
        s.nonBlocking = c.non_blocking != 0
        s.useStream = c.use_stream != 0
        s.recordStream = c.record_stream != 0
        s.lowCPUMemUsage = c.low_cpu_mem_usage != 0
        s.offloadToDiskPath = c.offload_to_disk_path.map { String(cString: $0) }
        s.blockModules = try stringList(c.block_modules, c.num_block_modules, "block_modules")
        s.excludeKwargs = try stringList(c.exclude_kwargs, c.num_exclude_kwargs, "exclude_kwargs")
        try m.enableGroupOffload(s)
    }
}

@_cdecl("da_model_disable_group_offload")
public func da_model_disable_group_offload(_ h: OpaquePointer?) -> da_status {
    guarded { try model(h).disableGroupOffload() }
}

@_cdecl("da_model_group_offload_stats")
public func da_model_group_offload_stats(_ h: OpaquePointer?, _ stats: UnsafeMutablePointer<da_group_offload_stats>?) -> da_status {
    guarded {
        let m = try model(h)
        let out = try writableStruct(stats, "stats")
        guard let s = m.groupOffloadStats else { throw DiffAttnError.state("group offloading is not enabled on this model") }
        out.pointee.order_learned = s.orderLearned ? 1 : 0
        out.pointee.groups = Int64(s.groups)
        out.pointee.resident_groups = Int64(s.residentGroups)
        out.pointee.resident_bytes = Int64(s.residentBytes)
        out.pointee.peak_resident_bytes = Int64(s.peakResidentBytes)
        out.pointee.total_bytes = Int64(s.totalBytes)
        out.pointee.onloads = Int64(s.onloads)
        out.pointee.prefetched = Int64(s.prefetched)
    }
}

@_cdecl("da_pab_config_init")
public func da_pab_config_init(_ c: UnsafeMutablePointer<da_pab_config>?, _ size: Int) -> da_status {
    initStruct(c, size, "config") {
        let s = PyramidAttentionBroadcastConfig()
        var v = da_pab_config()
        v.spatial_attention_block_skip_range = Int64(s.spatialAttentionBlockSkipRange ?? 0)
        v.temporal_attention_block_skip_range = Int64(s.temporalAttentionBlockSkipRange ?? 0)
        v.cross_attention_block_skip_range = Int64(s.crossAttentionBlockSkipRange ?? 0)
        v.spatial_attention_timestep_skip_range = s.spatialAttentionTimestepSkipRange
        v.temporal_attention_timestep_skip_range = s.temporalAttentionTimestepSkipRange
        v.cross_attention_timestep_skip_range = s.crossAttentionTimestepSkipRange
        return v
    }
}

func applyPyramidAttentionBroadcastC(_ m: Model, _ config: UnsafePointer<da_pab_config>?) throws -> Int {
    let c = try readStruct(config, "config")
    var s = PyramidAttentionBroadcastConfig()
    s.spatialAttentionBlockSkipRange = try optionalRange(c.spatial_attention_block_skip_range, "spatial_attention_block_skip_range")
    s.temporalAttentionBlockSkipRange = try optionalRange(c.temporal_attention_block_skip_range, "temporal_attention_block_skip_range")
    s.crossAttentionBlockSkipRange = try optionalRange(c.cross_attention_block_skip_range, "cross_attention_block_skip_range")
    s.spatialAttentionTimestepSkipRange = c.spatial_attention_timestep_skip_range
    s.temporalAttentionTimestepSkipRange = c.temporal_attention_timestep_skip_range
    s.crossAttentionTimestepSkipRange = c.cross_attention_timestep_skip_range
    if let l = try stringList(c.spatial_attention_block_identifiers, c.num_spatial_attention_block_identifiers, "spatial_attention_block_identifiers") { s.spatialAttentionBlockIdentifiers = l }
    if let l = try stringList(c.temporal_attention_block_identifiers, c.num_temporal_attention_block_identifiers, "temporal_attention_block_identifiers") { s.temporalAttentionBlockIdentifiers = l }
    if let l = try stringList(c.cross_attention_block_identifiers, c.num_cross_attention_block_identifiers, "cross_attention_block_identifiers") { s.crossAttentionBlockIdentifiers = l }
    if let cb = c.current_timestep_callback {
        s.currentTimestepCallback = timestepCallback(cb, c.callback_user_data)
    } else {
        s.useStepTimestep = true
    }
    return try m.applyPyramidAttentionBroadcast(&s).count
}

@_cdecl("da_model_apply_pyramid_attention_broadcast")
public func da_model_apply_pyramid_attention_broadcast(_ h: OpaquePointer?, _ config: UnsafePointer<da_pab_config>?,
                                                       _ hooked: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let n = try applyPyramidAttentionBroadcastC(try model(h), config); hooked?.pointee = Int64(n) }
}

/// A caller's user-data pointer carried into a closure (the caller owns its thread safety).
struct UncheckedPointer: @unchecked Sendable { let raw: UnsafeMutableRawPointer? ; init(_ p: UnsafeMutableRawPointer?) { raw = p } }

/// A status a caller's callback returned, as the error it stands for (`what` names the callback).
func checkCallback(_ status: Int32, _ what: String) throws {
    guard status == DA_OK else { throw DiffAttnError(DiffAttnError.Kind(rawValue: status) ?? .internal, "\(what) returned \(status)") }
}

/// A C `current_timestep_callback` as the closure the cache configs take.
func timestepCallback(_ cb: da_timestep_callback, _ userData: UnsafeMutableRawPointer?) -> () throws -> Double {
    let user = UncheckedPointer(userData)
    return {
        var t = 0.0
        try checkCallback(cb(user.raw, &t), "current_timestep_callback")
        return t
    }
}
