import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for da_model: parse, validate, call, translate the error. No math here.

/// A model plus the da_attention handles it has lent out (one per path, removed on destroy).
final class ModelBox: Sendable {
    let model: Model
    private let lent = Locked([String: OpaquePointer]())

    init(_ model: Model) { self.model = model }

    func borrow(_ path: String) throws -> OpaquePointer {
        let a = try model.attention(at: path)
        return lent.withLock { table in
            if let h = table[path] { return h }
            let h = attentionHandles.insert(a, borrowed: true)
            table[path] = h
            return h
        }
    }

    func releaseLent() {
        lent.withLock { table in
            for h in table.values { attentionHandles.remove(h, owner: true) }
            table = [:]
        }
    }
}

func cString(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String {
    guard let p else { throw DiffAttnError.argument("\(name) is NULL") }
    return String(cString: p)
}

func output<T>(_ p: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
    guard let p else { throw DiffAttnError.argument("\(name) is NULL") }
    return p
}


/// DA_SLICE_* + sizes → the Swift request (validated before use).
func sliceRequest(_ mode: Int32, _ sizes: UnsafePointer<Int64>?, _ count: Int64) throws -> SliceRequest {
    switch mode {
    case DA_SLICE_NONE: return .none
    case DA_SLICE_AUTO: return .auto
    case DA_SLICE_MAX: return .max
    case DA_SLICE_SIZE, DA_SLICE_LIST:
        guard let sizes, count >= 1, count <= 1 << 20 else {
            throw DiffAttnError.argument("sizes must point to count (1...\(1 << 20)) entries, got count \(count)")
        }
        let values = (0..<Int(count)).map { sizes[$0] }
        if mode == DA_SLICE_SIZE {
            guard count == 1 else { throw DiffAttnError.argument("DA_SLICE_SIZE takes exactly one size, got \(count)") }
            return .size(Int(clamping: values[0]))
        }
        return .list(values.map { $0 == 0 ? nil : Int(clamping: $0) })
    default: throw DiffAttnError.argument("mode \(mode) is not a DA_SLICE_* value")
    }
}

@_cdecl("da_model_create")
public func da_model_create(_ className: UnsafePointer<CChar>?, _ json: UnsafePointer<CChar>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guarded {
        let out = try output(out, "out")
        out.pointee = nil
        let m = try Model(className: try cString(className, "class_name"), config: try cString(json, "config_json"))
        out.pointee = modelHandles.insert(ModelBox(m))
    }
}

@_cdecl("da_model_destroy")
public func da_model_destroy(_ handle: OpaquePointer?) {
    guard let box = try? modelHandles.lookup(handle) else { return }
    box.releaseLent()
    releaseRegistryHandles(box.model.allHookRegistries)
    modelHandles.remove(handle)
}

@_cdecl("da_model_class_name")
public func da_model_class_name(_ h: OpaquePointer?, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> da_status {
    guarded { let m = try model(h); try output(name, "name").pointee = internedCString(m.modelClass.name) }
}

@_cdecl("da_model_attn_processor_count")
public func da_model_attn_processor_count(_ h: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let m = try model(h); try output(count, "count").pointee = Int64(m.attentionPaths.count) }
}

@_cdecl("da_model_attn_processor_name")
public func da_model_attn_processor_name(_ h: OpaquePointer?, _ index: Int64,
                                         _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> da_status {
    guarded {
        let m = try model(h)
        let out = try output(name, "name")
        out.pointee = internedCString(try element(m.attentionPaths, at: index, "attention modules in this model") + ".processor")
    }
}

private func attentionPath(_ key: String) -> String {
    key.hasSuffix(".processor") ? String(key.dropLast(".processor".count)) : key
}

@_cdecl("da_model_attn_processor_get")
public func da_model_attn_processor_get(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                        _ processor: UnsafeMutablePointer<da_processor_config>?) -> da_status {
    guarded {
        let m = try model(h)
        let key = try cString(name, "name")
        let out = try writableStruct(processor, "processor")
        let a = try m.attention(at: attentionPath(key))
        cProcessor(a.processor, into: &out.pointee)
    }
}

/// The processor for attn_processors key `key`; DA_PROCESSOR_DEFAULT is the default of that module's
/// class (an unknown key gets a stand-in: setAttnProcessors reports the key).
private func processorArgument(_ p: UnsafePointer<da_processor_config>?, _ name: String, _ m: Model,
                               key: String) throws -> ProcessorConfig {
    let value = try readStruct(p, name)
    guard value.kind == DA_PROCESSOR_DEFAULT else { return try swiftProcessor(value) }
    guard let a = try? m.attention(at: attentionPath(key)) else { return ProcessorConfig(kind: .attnProcessor2_0) }
    return Attention.defaultProcessor(a.config)
}

@_cdecl("da_model_set_attn_processor")
public func da_model_set_attn_processor(_ h: OpaquePointer?, _ processor: UnsafePointer<da_processor_config>?) -> da_status {
    guarded {
        let m = try model(h)
        guard try readStruct(processor, "processor").kind == DA_PROCESSOR_DEFAULT else {
            return try m.setAttnProcessor(try swiftProcessor(try readStruct(processor, "processor")))
        }
        try m.setAttnProcessors(try m.attnProcessors.map { key, _ in (key, try processorArgument(processor, "processor", m, key: key)) })
    }
}

@_cdecl("da_model_set_attn_processors")
public func da_model_set_attn_processors(_ h: OpaquePointer?, _ names: UnsafePointer<UnsafePointer<CChar>?>?,
                                         _ processors: UnsafePointer<da_processor_config>?, _ count: Int64) -> da_status {
    guarded {
        let m = try model(h)
        guard count >= 0, count <= 1 << 24 else { throw DiffAttnError.argument("count must be in 0...\(1 << 24), got \(count)") }
        guard count == 0 || (names != nil && processors != nil) else { throw DiffAttnError.argument("names and processors must not be NULL") }
        var map: [(String, ProcessorConfig)] = []
        for i in 0..<Int(count) {
            let p = processors! + i
            let key = try cString(names![i], "names[\(i)]")
            map.append((key, try processorArgument(p, "processors[\(i)]", m, key: key)))
        }
        try m.setAttnProcessors(map)
    }
}

@_cdecl("da_model_set_default_attn_processor")
public func da_model_set_default_attn_processor(_ h: OpaquePointer?) -> da_status {
    guarded { try model(h).setDefaultAttnProcessor() }
}

@_cdecl("da_model_fuse_qkv_projections")
public func da_model_fuse_qkv_projections(_ h: OpaquePointer?) -> da_status {
    guarded { try model(h).fuseQKVProjections() }
}

@_cdecl("da_model_unfuse_qkv_projections")
public func da_model_unfuse_qkv_projections(_ h: OpaquePointer?) -> da_status {
    guarded { try model(h).unfuseQKVProjections() }
}

@_cdecl("da_model_set_use_memory_efficient_attention_xformers")
public func da_model_set_use_memory_efficient_attention_xformers(_ h: OpaquePointer?, _ valid: Int32) -> da_status {
    guarded { try model(h).setUseMemoryEfficientAttentionXformers(valid != 0) }
}

@_cdecl("da_model_set_attention_slice")
public func da_model_set_attention_slice(_ h: OpaquePointer?, _ mode: Int32, _ sizes: UnsafePointer<Int64>?, _ count: Int64) -> da_status {
    guarded { let m = try model(h); try m.setAttentionSlice(try sliceRequest(mode, sizes, count)) }
}

@_cdecl("da_model_get_attention")
public func da_model_get_attention(_ h: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                                   _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guarded {
        let box = try modelHandles.lookup(h)
        let out = try output(out, "out")
        out.pointee = nil
        out.pointee = try box.borrow(attentionPath(try cString(path, "path")))  // attn_processors keys too
    }
}

private func moduleKind(_ raw: Int32) throws -> ModuleKind {
    guard let k = ModuleKind(rawValue: raw) else { throw DiffAttnError.argument("kind \(raw) is not a DA_MODULE_* value") }
    return k
}

@_cdecl("da_model_module_count")
public func da_model_module_count(_ h: OpaquePointer?, _ kind: Int32, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let m = try model(h); let k = try moduleKind(kind); try output(count, "count").pointee = Int64(m.modules(of: k).count) }
}

@_cdecl("da_model_module_path")
public func da_model_module_path(_ h: OpaquePointer?, _ kind: Int32, _ index: Int64,
                                 _ path: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> da_status {
    guarded {
        let m = try model(h)
        let paths = m.modules(of: try moduleKind(kind))
        let out = try output(path, "path")
        out.pointee = internedCString(try element(paths, at: index, "modules of this kind in this model"))
    }
}

@_cdecl("da_model_module_class")
public func da_model_module_class(_ h: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                                  _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> da_status {
    guarded {
        let m = try model(h)
        let node = try m.module(at: try cString(path, "path"))
        try output(name, "class_name").pointee = internedCString(node.moduleClass)
    }
}

// MARK: layerwise casting

@_cdecl("da_cpu_has_bf16_instructions")
public func da_cpu_has_bf16_instructions() -> Int32 { LayerwiseCasting.usesBFloat16Instructions ? 1 : 0 }

/// The storage format and skip patterns of a layerwise-casting call (NULL patterns = defaults).
private func castingArguments(_ storage: Int32, _ patterns: UnsafePointer<UnsafePointer<CChar>?>?,
                              _ count: Int) throws -> (LinearWeightFormat, [String]) {
    guard let format = LinearWeightFormat(rawValue: Int(storage)) else {
        throw DiffAttnError.argument("storage_dtype must be DA_STORAGE_FLOAT32, DA_STORAGE_BFLOAT16 or DA_STORAGE_FLOAT16, got \(storage)")
    }
    return (format, try stringList(patterns, Int64(count), "skip_patterns") ?? LayerwiseCasting.defaultSkipModulesPattern)
}

@_cdecl("da_attention_enable_layerwise_casting")
public func da_attention_enable_layerwise_casting(_ attention: OpaquePointer?, _ storage: Int32,
                                                  _ patterns: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let (format, skip) = try castingArguments(storage, patterns, count)
        try a.enableLayerwiseCasting(storage: format, skipModulesPattern: skip)
    }
}

@_cdecl("da_model_enable_layerwise_casting")
public func da_model_enable_layerwise_casting(_ handle: OpaquePointer?, _ storage: Int32,
                                              _ patterns: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int) -> da_status {
    guarded {
        let m = try model(handle)
        let (format, skip) = try castingArguments(storage, patterns, count)
        try m.enableLayerwiseCasting(storage: format, skipModulesPattern: skip)
    }
}
