import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for model weights and checkpoints, and for da_pipeline.


func fill(_ report: UnsafeMutablePointer<da_load_report>?, _ r: LoadReport) throws {
    guard report != nil else { return }
    let report = try writableStruct(report, "report")
    report.pointee.attention_loaded = Int64(r.attentionLoaded)
    report.pointee.attention_missing = Int64(r.missing.count)
    report.pointee.unexpected = Int64(r.unexpected.count)
    report.pointee.weights_kept = Int64(r.weightsKept)
    report.pointee.skipped = Int64(r.skipped)
}

private func loadFlags(_ flags: Int32) throws -> (strict: Bool, keep: Bool) {
    guard flags & ~(DA_LOAD_STRICT | DA_LOAD_SKIP_OTHERS) == 0 else {
        throw DiffAttnError.argument("flags \(flags) has bits other than DA_LOAD_STRICT | DA_LOAD_SKIP_OTHERS")
    }
    return (flags & DA_LOAD_STRICT != 0, flags & DA_LOAD_SKIP_OTHERS == 0)
}

@_cdecl("da_model_load_safetensors")
public func da_model_load_safetensors(_ h: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ flags: Int32,
                                      _ report: UnsafeMutablePointer<da_load_report>?) -> da_status {
    guarded {
        let m = try model(h)
        let f = try loadFlags(flags)
        if report != nil { _ = try writableStruct(report, "report") }
        try fill(report, try m.loadSafeTensors(path: try cString(path, "path"), strict: f.strict, keepOtherWeights: f.keep))
    }
}

@_cdecl("da_model_load_state_dict")
public func da_model_load_state_dict(_ h: OpaquePointer?, _ names: UnsafePointer<UnsafePointer<CChar>?>?,
                                     _ tensors: UnsafePointer<DLTensor>?, _ count: Int64, _ flags: Int32,
                                     _ report: UnsafeMutablePointer<da_load_report>?) -> da_status {
    guarded {
        let m = try model(h)
        let f = try loadFlags(flags)
        if report != nil { _ = try writableStruct(report, "report") }
        guard count >= 0, count <= 1 << 24 else { throw DiffAttnError.argument("count must be in 0...\(1 << 24), got \(count)") }
        guard count == 0 || (names != nil && tensors != nil) else { throw DiffAttnError.argument("names and tensors must not be NULL") }
        var keys: [String] = [], shapes: [[Int]] = []
        for i in 0..<Int(count) {
            keys.append(try cString(names![i], "names[\(i)]"))
            shapes.append(try geometry(tensors! + i, "tensors[\(i)]").shape)
        }
        try fill(report, try m.loadStateDict(keys, strict: f.strict, keepOtherWeights: f.keep,
                                             tensor: { try readTensor(tensors! + $0, "tensors[\($0)]") }, shapeOf: { shapes[$0] }))
    }
}

@_cdecl("da_model_weight_count")
public func da_model_weight_count(_ h: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let m = try model(h); try output(count, "count").pointee = Int64(m.stateDictSpecs.count) }
}

@_cdecl("da_model_weight_info")
public func da_model_weight_info(_ h: OpaquePointer?, _ index: Int64, _ info: UnsafeMutablePointer<da_weight_info>?) -> da_status {
    guarded {
        let specs = try model(h).stateDictSpecs
        let info = try writableStruct(info, "info")
        let (name, shape) = try element(specs, at: index, "weights in this model")
        try fillWeightInfo(info, name: name, shape: shape)
    }
}

@_cdecl("da_model_get_weight")
public func da_model_get_weight(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<DLTensor>?) -> da_status {
    guarded {
        let m = try model(h)
        try writeTensor(try m.weight(named: try cString(name, "name")), into: out, "out")
    }
}

// MARK: Pipelines


@_cdecl("da_pipeline_create")
public func da_pipeline_create(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guarded { try output(out, "out").pointee = pipelineHandles.insert(Pipeline()) }
}

@_cdecl("da_pipeline_destroy")
public func da_pipeline_destroy(_ h: OpaquePointer?) { pipelineHandles.remove(h) }

@_cdecl("da_pipeline_add")
public func da_pipeline_add(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ m: OpaquePointer?) -> da_status {
    guarded { let p = try pipelineHandles.lookup(h); try p.add(try cString(name, "name"), try model(m)) }
}

@_cdecl("da_pipeline_fuse_qkv_projections")
public func da_pipeline_fuse_qkv_projections(_ h: OpaquePointer?, _ unet: Int32, _ vae: Int32) -> da_status {
    guarded { try pipelineHandles.lookup(h).fuseQKVProjections(unet: unet != 0, vae: vae != 0) }
}

@_cdecl("da_pipeline_unfuse_qkv_projections")
public func da_pipeline_unfuse_qkv_projections(_ h: OpaquePointer?, _ unet: Int32, _ vae: Int32) -> da_status {
    guarded { try pipelineHandles.lookup(h).unfuseQKVProjections(unet: unet != 0, vae: vae != 0) }
}

@_cdecl("da_pipeline_set_attention_slicing")
public func da_pipeline_set_attention_slicing(_ h: OpaquePointer?, _ mode: Int32, _ sizes: UnsafePointer<Int64>?, _ count: Int64) -> da_status {
    guarded { let p = try pipelineHandles.lookup(h); try p.setAttentionSlicing(try sliceRequest(mode, sizes, count)) }
}

@_cdecl("da_pipeline_set_use_memory_efficient_attention_xformers")
public func da_pipeline_set_use_memory_efficient_attention_xformers(_ h: OpaquePointer?, _ valid: Int32) -> da_status {
    guarded { try pipelineHandles.lookup(h).setUseMemoryEfficientAttentionXformers(valid != 0) }
}
