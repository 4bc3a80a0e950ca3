import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for the Attention module: parse, validate, call, translate the error. No math here.

@_cdecl("da_attention_config_init")
public func da_attention_config_init(_ config: UnsafeMutablePointer<da_attention_config>?, _ size: Int) -> da_status {
    initStruct(config, size, "config") {
        var c = da_attention_config()
        cConfig(AttentionConfig(queryDim: 0), into: &c)
        return c
    }
}

@_cdecl("da_attention_create")
public func da_attention_create(_ config: UnsafePointer<da_attention_config>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guarded {
        guard let out else { throw DiffAttnError.argument("out is NULL; expected a da_attention* to receive the module") }
        out.pointee = nil
        let configValue = try readStruct(config, "config")
        let attention = try Attention(try swiftConfig(configValue))
        out.pointee = attentionHandles.insert(attention)
    }
}

@_cdecl("da_attention_destroy")
public func da_attention_destroy(_ attention: OpaquePointer?) {
    if let a = try? attentionHandles.lookup(attention), a.hookRegistry?.model == nil, let r = a.hookRegistry {
        releaseRegistryHandles([r])  // a standalone module's registry goes with it
    }
    attentionHandles.remove(attention)
}

@_cdecl("da_attention_get_config")
public func da_attention_get_config(_ attention: OpaquePointer?, _ config: UnsafeMutablePointer<da_attention_config>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let configOut = try writableStruct(config, "config")
        cConfig(a.config, into: &configOut.pointee)
    }
}

@_cdecl("da_attention_get_info")
public func da_attention_get_info(_ attention: OpaquePointer?, _ info: UnsafeMutablePointer<da_attention_info>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let infoOut = try writableStruct(info, "info")
        let d = a.derived
        infoOut.pointee.is_cross_attention = d.isCrossAttention ? 1 : 0
        infoOut.pointee.heads = Int64(d.heads)
        infoOut.pointee.inner_dim = Int64(d.innerDim)
        infoOut.pointee.inner_kv_dim = Int64(d.innerKVDim)
        infoOut.pointee.sliceable_head_dim = Int64(d.sliceableHeadDim)
        infoOut.pointee.cross_attention_dim = Int64(d.crossAttentionDim)
        infoOut.pointee.out_dim = Int64(d.outDim)
        infoOut.pointee.out_context_dim = Int64(d.outContextDim)
        infoOut.pointee.scale = a.config.scaleQK ? 1 / Double(a.config.dimHead).squareRoot() : 1
        infoOut.pointee.fused_projections = a.fusedProjections ? 1 : 0
        infoOut.pointee.processor = a.processor.kind.rawValue
    }
}

@_cdecl("da_attention_set_processor")
public func da_attention_set_processor(_ attention: OpaquePointer?, _ processor: UnsafePointer<da_processor_config>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let processorValue = try readStruct(processor, "processor")
        try a.setProcessor(try swiftProcessor(processorValue, for: a))
    }
}

@_cdecl("da_attention_get_processor")
public func da_attention_get_processor(_ attention: OpaquePointer?, _ processor: UnsafeMutablePointer<da_processor_config>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let processorOut = try writableStruct(processor, "processor")
        cProcessor(a.processor, into: &processorOut.pointee)
    }
}

@_cdecl("da_attention_update_processor")
public func da_attention_update_processor(_ attention: OpaquePointer?, _ processor: UnsafePointer<da_processor_config>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let processorValue = try readStruct(processor, "processor")
        try a.updateProcessor(try swiftProcessor(processorValue))
    }
}

@_cdecl("da_attention_get_ip_adapter_scale")
public func da_attention_get_ip_adapter_scale(_ attention: OpaquePointer?, _ scales: UnsafeMutablePointer<Double>?,
                                              _ capacity: Int64, _ counts: UnsafeMutablePointer<Int32>?,
                                              _ numAdapters: Int32, _ numValues: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        guard a.processor.hasIPAdapterScale else {
            throw DiffAttnError.state("\(a.processor.kind.name) has no IP-Adapter scale")
        }
        let scale = a.processor.scale
        let values: [Double] = scale.flatMap { s -> [Double] in
            switch s { case .uniform(let u): return [Double(u)]; case .perImage(let l): return l.map(Double.init) }
        }
        numValues?.pointee = Int64(values.count)
        if let scales {
            guard capacity >= Int64(values.count) else { throw DiffAttnError.argument("capacity \(capacity) is smaller than the \(values.count) scale values") }
            for (i, v) in values.enumerated() { scales[i] = v }
        }
        if let counts {
            guard Int(numAdapters) >= scale.count else { throw DiffAttnError.argument("num_adapters \(numAdapters) is smaller than the \(scale.count) adapters") }
            for (k, s) in scale.enumerated() {
                if case .perImage(let l) = s { counts[k] = Int32(l.count) } else { counts[k] = 0 }
            }
        }
    }
}

// MARK: Switches

private func withAttention(_ attention: OpaquePointer?, _ body: (Attention) throws -> Void) -> da_status {
    guarded { try body(try attentionHandles.lookup(attention)) }
}

@_cdecl("da_attention_set_attention_slice")
public func da_attention_set_attention_slice(_ attention: OpaquePointer?, _ sliceSize: Int64) -> da_status {
    withAttention(attention) { a in
        guard sliceSize >= 0 else { throw DiffAttnError.value("slice_size must be DA_NONE (0) or positive, got \(sliceSize)") }
        try a.setAttentionSlice(sliceSize == 0 ? nil : Int(clamping: sliceSize))
    }
}

@_cdecl("da_attention_set_use_memory_efficient_attention_xformers")
public func da_attention_set_use_memory_efficient_attention_xformers(_ attention: OpaquePointer?, _ use: Int32) -> da_status {
    withAttention(attention) { try $0.setUseMemoryEfficientAttentionXFormers(use != 0) }
}

@_cdecl("da_attention_set_use_npu_flash_attention")
public func da_attention_set_use_npu_flash_attention(_ attention: OpaquePointer?, _ use: Int32) -> da_status {
    withAttention(attention) { try $0.setUseNPUFlashAttention(use != 0) }
}

@_cdecl("da_attention_set_use_xla_flash_attention")
public func da_attention_set_use_xla_flash_attention(_ attention: OpaquePointer?, _ use: Int32, _ isFlux: Int32) -> da_status {
    withAttention(attention) { try $0.setUseXLAFlashAttention(use != 0, isFlux: isFlux != 0) }
}

@_cdecl("da_attention_fuse_projections")
public func da_attention_fuse_projections(_ attention: OpaquePointer?, _ fuse: Int32) -> da_status {
    withAttention(attention) { try $0.fuseProjections(fuse: fuse != 0) }
}

@_cdecl("da_attention_unfuse_projections")
public func da_attention_unfuse_projections(_ attention: OpaquePointer?) -> da_status {
    withAttention(attention) { $0.unfuseProjections() }
}

// MARK: Weights

@_cdecl("da_attention_weight_count")
public func da_attention_weight_count(_ attention: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        guard let count else { throw DiffAttnError.argument("count is NULL") }
        count.pointee = Int64(a.parameters.specs.count)
    }
}

@_cdecl("da_attention_weight_info")
public func da_attention_weight_info(_ attention: OpaquePointer?, _ index: Int64, _ info: UnsafeMutablePointer<da_weight_info>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let infoOut = try writableStruct(info, "info")
        let spec = try element(a.parameters.specs, at: index, "weights in this module")
        try fillWeightInfo(infoOut, name: spec.name, shape: spec.shape)
    }
}

private func weightName(_ name: UnsafePointer<CChar>?) throws -> String {
    guard let name else { throw DiffAttnError.argument("name is NULL; expected a state-dict name such as \"to_q.weight\"") }
    return String(cString: name)
}

@_cdecl("da_attention_set_weight")
public func da_attention_set_weight(_ attention: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ value: UnsafePointer<DLTensor>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let key = try weightName(name)
        let spec = try a.parameters.requireSpec(named: key)
        let g = try geometry(value, "value")
        guard g.shape == spec.shape else {
            throw DiffAttnError.shape("weight '\(key)' must have shape \(spec.shape), got \(g.shape)")
        }
        try a.setWeight(key, try readTensor(value, "value"))
    }
}

@_cdecl("da_attention_borrow_weight")
public func da_attention_borrow_weight(_ attention: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ value: UnsafePointer<DLTensor>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let key = try weightName(name)
        let spec = try a.parameters.requireSpec(named: key)
        guard let value else { throw DiffAttnError.argument("value is NULL; expected a DLTensor") }
        let dtype = value.pointee.dtype
        let format: LinearWeightFormat
        switch (dtype.code, dtype.bits, dtype.lanes) {
        case (2, 32, 1): format = .float32
        case (4, 16, 1): format = .bfloat16
        default: throw DiffAttnError.dtype("value must be float32 or bfloat16 to be borrowed, got \(dtypeName(dtype))")
        }
        var probe = value.pointee      // geometry() checks float32 tensors; the sizes are what matter here
        probe.dtype = DLDataType(code: 2, bits: 32, lanes: 1)
        let g = try withUnsafePointer(to: &probe) { try geometry($0, "value") }
        guard g.shape == spec.shape else {
            throw DiffAttnError.shape("weight '\(key)' must have shape \(spec.shape), got \(g.shape)")
        }
        guard g.count > 0, let base = g.base else {
            try a.setWeight(key, Tensor(shape: spec.shape, repeating: 0))
            return
        }
        let dense = contiguousStrides(g.shape)
        guard zip(g.shape, zip(g.strides, dense)).allSatisfy({ $0 == 1 || $1.0 == $1.1 }) else {
            throw DiffAttnError.shape("a borrowed weight must be contiguous; weight '\(key)' has strides \(g.strides) (copy it with da_attention_set_weight)")
        }
        guard Int(bitPattern: base) % (format == .float32 ? 4 : 2) == 0 else {
            throw DiffAttnError.argument("value.data is not aligned to its element size")
        }
        try a.borrowWeight(key, base: UnsafeRawPointer(base), format: format)
    }
}

@_cdecl("da_attention_get_weight")
public func da_attention_get_weight(_ attention: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<DLTensor>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let key = try weightName(name)
        _ = try a.parameters.requireSpec(named: key)
        let value = a.parameters[key]!
        try writeTensor(value, into: out, "out")
    }
}
