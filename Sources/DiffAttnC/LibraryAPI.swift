import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Library-wide thunks: versions, threads, processor names.

private let versionCString = staticCString("\(DA_VERSION_MAJOR).\(DA_VERSION_MINOR).\(DA_VERSION_PATCH)")

@_cdecl("da_version")
public func da_version() -> UnsafePointer<CChar>? { versionCString }

@_cdecl("da_version_number")
public func da_version_number() -> UInt32 { UInt32(DA_VERSION_MAJOR * 10000 + DA_VERSION_MINOR * 100 + DA_VERSION_PATCH) }

@_cdecl("da_abi_version")
public func da_abi_version() -> UInt32 { UInt32(DA_ABI_VERSION) }

@_cdecl("da_check_abi")
public func da_check_abi(_ headerABI: UInt32) -> Int32 {
    guarded {
        guard headerABI == UInt32(DA_ABI_VERSION) else {
            throw DiffAttnError(.unsupported, "the caller was compiled against ABI \(headerABI) but this libdiffattn provides ABI \(DA_ABI_VERSION)")
        }
    }
}

@_cdecl("da_set_num_threads")
public func da_set_num_threads(_ n: Int32) -> da_status {
    guarded {
        guard n >= 1 && n <= 1024 else { throw DiffAttnError.argument("num_threads must be in 1...1024, got \(n)") }
        Parallel.threadCount = Int(n)  // GEMMs run single-threaded inside the library's own workers
    }
}

@_cdecl("da_get_num_threads")
public func da_get_num_threads() -> Int32 { Int32(Parallel.threadCount) }

private let processorNames: [Int32: UnsafePointer<CChar>] = Dictionary(
    uniqueKeysWithValues: ProcessorKind.allCases.map { ($0.rawValue, staticCString($0.name)) })

@_cdecl("da_processor_name")
public func da_processor_name(_ kind: Int32) -> UnsafePointer<CChar>? { processorNames[kind] }

@_cdecl("da_processor_kind_from_name")
public func da_processor_kind_from_name(_ name: UnsafePointer<CChar>?, _ kind: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded {
        guard let name, let kind else { throw DiffAttnError.argument("name and kind must not be NULL") }
        let s = String(cString: name)
        guard let k = ProcessorKind(name: s) else { throw DiffAttnError(.notFound, "no diffusers processor class is named '\(s)'") }
        kind.pointee = k.rawValue
    }
}

@_cdecl("da_processor_is_implemented")
public func da_processor_is_implemented(_ kind: Int32) -> Int32 {
    guard let k = ProcessorKind(rawValue: kind) else { return 0 }
    return ProcessorConfig.isImplemented(k) ? 1 : 0
}

@_cdecl("da_processor_config_init")
public func da_processor_config_init(_ config: UnsafeMutablePointer<da_processor_config>?, _ size: Int, _ kind: Int32) -> da_status {
    initStruct(config, size, "config") {
        var c = da_processor_config()
        // DA_PROCESSOR_DEFAULT: the fields every kind shares; the kind is resolved per module when set.
        let named = kind == DA_PROCESSOR_DEFAULT ? ProcessorKind.attnProcessor2_0 : try processorKind(kind, "kind")
        cProcessor(ProcessorConfig(kind: named), into: &c)
        c.kind = kind
        return c
    }
}

// MARK: Capabilities

@_cdecl("da_cpu_features")
public func da_cpu_features() -> UnsafePointer<CChar>? { internedCString(CPUFeatures.current.summary) }

@_cdecl("da_kernel_paths")
public func da_kernel_paths() -> UnsafePointer<CChar>? {
    internedCString(KernelPath.allCases.filter(\.isSupported).map(\.name).joined(separator: ","))
}

@_cdecl("da_kernel_path")
public func da_kernel_path() -> UnsafePointer<CChar>? { internedCString(KernelPath.selected.name) }

@_cdecl("da_set_kernel_path")
public func da_set_kernel_path(_ name: UnsafePointer<CChar>?) -> da_status {
    guarded {
        guard let name else { throw DiffAttnError.argument("name is NULL; expected one of da_kernel_paths()") }
        let wanted = String(cString: name)
        guard let path = KernelPath.allCases.first(where: { $0.name == wanted }), path.isSupported else {
            throw DiffAttnError(.unsupported, "kernel path '\(wanted)' is not one this CPU can run; expected one of: \(KernelPath.allCases.filter(\.isSupported).map(\.name).joined(separator: ", "))")
        }
        KernelPath.selected = path
    }
}
