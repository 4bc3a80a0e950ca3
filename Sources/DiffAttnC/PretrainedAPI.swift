import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for loading a model folder (DiffAttnModels/Pretrained.swift) and the load's key lists.

@_cdecl("da_model_load_pretrained")
public func da_model_load_pretrained(_ directory: UnsafePointer<CChar>?, _ className: UnsafePointer<CChar>?,
                                     _ flags: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                                     _ loadReport: UnsafeMutablePointer<da_load_report>?) -> da_status {
    guarded {
        let out = try output(out, "out")
        out.pointee = nil
        guard flags & ~(DA_LOAD_STRICT | DA_LOAD_SKIP_OTHERS | DA_LOAD_ALLOW_RANDOM_INIT) == 0 else {
            throw DiffAttnError.argument("flags \(flags) has bits other than DA_LOAD_STRICT | DA_LOAD_SKIP_OTHERS | DA_LOAD_ALLOW_RANDOM_INIT")
        }
        if loadReport != nil { _ = try writableStruct(loadReport, "report") }
        let (m, load) = try Model.fromPretrained(
            directory: try cString(directory, "directory"), className: try className.map { _ in try cString(className, "class_name") },
            strict: flags & DA_LOAD_STRICT != 0, keepOtherWeights: flags & DA_LOAD_SKIP_OTHERS == 0, allowRandomInit: flags & DA_LOAD_ALLOW_RANDOM_INIT != 0)
        try fill(loadReport, load.report)
        out.pointee = modelHandles.insert(ModelBox(m))
    }
}

private func keys(_ m: Model, _ which: Int32) throws -> [String] {
    switch which {
    case DA_KEYS_MISSING: return m.lastLoadReport?.missing ?? []
    case DA_KEYS_UNEXPECTED: return m.lastLoadReport?.unexpected ?? []
    case DA_KEYS_UNLOADED: return m.unloadedWeights
    default: throw DiffAttnError.argument("which \(which) is not a DA_KEYS_* value")
    }
}

@_cdecl("da_model_load_key_count")
public func da_model_load_key_count(_ h: OpaquePointer?, _ which: Int32, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded {
        let m = try model(h)
        let out = try output(count, "count")
        out.pointee = Int64(try keys(m, which).count)
    }
}

@_cdecl("da_model_load_key")
public func da_model_load_key(_ h: OpaquePointer?, _ which: Int32, _ index: Int64,
                              _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> da_status {
    guarded {
        let m = try model(h)
        let out = try output(name, "name")
        out.pointee = internedCString(try element(try keys(m, which), at: index, "keys of this kind"))
    }
}
