import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for hooks: user hooks from C, registries, step bracketing. No logic beyond the calls.

/// A C hook: the caller's callbacks behind diffusers' `ModelHook`.
final class CHook: ModelHook, @unchecked Sendable {
    let cb: da_hook_callbacks

    init(_ cb: da_hook_callbacks) { self.cb = cb }
    deinit { cb.destroy?(cb.user_data) }

    override var isStateful: Bool { cb.is_stateful != 0 }
    override var hookDescription: String { "CHook" }
    override var usesArgumentLists: Bool {
        cb.pre_forward_args != nil || cb.new_forward != nil || cb.post_forward_args != nil
    }
    override var hasNewForward: Bool { cb.new_forward != nil }

    override func preForward(_ module: HookRegistry, arguments: inout HookArgs) throws {
        guard let f = cb.pre_forward_args else { return }
        let box = ValuesBox(arguments)
        let status = lending(box) { h in withPath(module.path) { f(cb.user_data, $0, h) } }
        guard status == DA_OK else { throw callbackError(status, "hook pre_forward on '\(module.path)'") }
        arguments = try box.args
    }

    override func newForward(_ module: HookRegistry, arguments: HookArgs,
                             _ original: (HookArgs) throws -> HookArgs) throws -> HookArgs {
        guard let f = cb.new_forward else { return try original(arguments) }
        return try withoutActuallyEscaping(original) { run in
            let call = OriginalCall(run)
            let args = ValuesBox(arguments), out = ValuesBox()
            let context = Unmanaged.passUnretained(call).toOpaque()
            let status = withExtendedLifetime(call) {
                lending(args) { ah in lending(out) { oh in
                    withPath(module.path) { f(cb.user_data, $0, ah, oh, originalThunk, context) }
                } }
            }
            guard status == DA_OK else {
                if let e = call.error, e.kind.rawValue == status { throw e }
                throw callbackError(status, "hook new_forward on '\(module.path)'")
            }
            return try out.args
        }
    }

    override func postForward(_ module: HookRegistry, outputs: inout HookArgs) throws {
        guard let f = cb.post_forward_args else { return }
        let box = ValuesBox(outputs)
        let status = lending(box) { h in withPath(module.path) { f(cb.user_data, $0, h) } }
        guard status == DA_OK else { throw callbackError(status, "hook post_forward on '\(module.path)'") }
        outputs = try box.args
    }

    private func check(_ status: da_status, _ what: String, _ path: String) throws {
        guard status == DA_OK else {
            let kind = DiffAttnError.Kind(rawValue: status) ?? .internal
            throw DiffAttnError(kind, "hook \(what) on '\(path)' returned \(status)")
        }
    }

    private func withPath<T>(_ path: String, _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try path.withCString(body)
    }

    override func initializeHook(_ module: HookRegistry) throws {
        guard let f = cb.initialize_hook else { return }
        try check(withPath(module.path) { f(cb.user_data, $0) }, "initialize_hook", module.path)
    }

    override func deinitializeHook(_ module: HookRegistry) throws {
        guard let f = cb.deinitialize_hook else { return }
        try check(withPath(module.path) { f(cb.user_data, $0) }, "deinitialize_hook", module.path)
    }

    override func resetState(_ module: HookRegistry) throws {
        guard let f = cb.reset_state else { return try super.resetState(module) }  // stateful without it: diffusers' error
        try check(withPath(module.path) { f(cb.user_data, $0) }, "reset_state", module.path)
    }

    override func preForward(_ module: HookRegistry, _ inputs: inout AttentionInputs?) throws {
        if usesArgumentLists, inputs == nil {  // a host-run module's half (enter / begin_step): no arguments
            var none = HookArgs()
            return try preForward(module, arguments: &none)
        }
        guard let f = cb.pre_forward else { return }
        guard var args = inputs else {
            try check(withPath(module.path) { f(cb.user_data, $0, nil) }, "pre_forward", module.path)
            return
        }
        let (status, edited) = try withEditable([args.hiddenStates]) { dl, _ in
            withPath(module.path) { f(cb.user_data, $0, dl) }
        }
        try check(status, "pre_forward", module.path)
        args.hiddenStates = edited[0]
        inputs = args
    }

    override func postForward(_ module: HookRegistry, _ output: inout [Tensor]) throws {
        if usesArgumentLists, output.isEmpty {
            var none = HookArgs()
            return try postForward(module, outputs: &none)
        }
        guard let f = cb.post_forward else { return }
        if output.isEmpty {
            try check(withPath(module.path) { f(cb.user_data, $0, nil, 0) }, "post_forward", module.path)
            return
        }
        let (status, edited) = try withEditable(output) { dl, n in
            withPath(module.path) { f(cb.user_data, $0, dl, n) }
        }
        try check(status, "post_forward", module.path)
        output = edited
    }
}

/// Writable float32 CPU DLTensors over copies of `tensors`, valid inside `body`; returns what
/// `body` returned and the (possibly edited) copies.
private func withEditable<T>(_ tensors: [Tensor], _ body: (UnsafeMutablePointer<DLTensor>, Int32) throws -> T) throws -> (T, [Tensor]) {
    let n = tensors.count
    let dl = UnsafeMutablePointer<DLTensor>.allocate(capacity: n)
    defer { dl.deallocate() }
    let dims = UnsafeMutablePointer<Int64>.allocate(capacity: max(1, tensors.reduce(0) { $0 + $1.shape.count }))
    defer { dims.deallocate() }
    let data = tensors.map { t -> UnsafeMutableBufferPointer<Float> in
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, t.count))
        _ = t.withUnsafeElements { b.initialize(from: $0) }
        return b
    }
    defer { data.forEach { $0.deallocate() } }
    var at = 0
    for (i, t) in tensors.enumerated() {
        for (j, d) in t.shape.enumerated() { dims[at + j] = Int64(d) }
        dl[i] = DLTensor(data: UnsafeMutableRawPointer(data[i].baseAddress), device: DLDevice(device_type: kDLCPU, device_id: 0),
                         ndim: Int32(t.shape.count), dtype: DLDataType(code: UInt8(kDLFloat.rawValue), bits: 32, lanes: 1),
                         shape: dims + at, strides: nil, byte_offset: 0)
        at += t.shape.count
    }
    let result = try body(dl, Int32(n))
    let edited = tensors.enumerated().map { i, t in Tensor(shape: t.shape, storage: Array(data[i].prefix(t.count))) }
    return (result, edited)
}

final class HookBox: Sendable { let hook: CHook; init(_ h: CHook) { hook = h } }

private let lentRegistries = Locked([ObjectIdentifier: OpaquePointer]())

/// The borrowed handle of a registry (one per registry, removed when its owner goes).
func registryHandle(_ r: HookRegistry) -> OpaquePointer {
    lentRegistries.withLock { table in
        if let h = table[ObjectIdentifier(r)] { return h }
        let h = registryHandles.insert(r, borrowed: true)
        table[ObjectIdentifier(r)] = h
        return h
    }
}

/// Forgets the handles of registries that belong to a destroyed model or attention module.
func releaseRegistryHandles(_ registries: [HookRegistry]) {
    lentRegistries.withLock { table in
        for r in registries {
            if let h = table.removeValue(forKey: ObjectIdentifier(r)) { registryHandles.remove(h, owner: true) }
        }
    }
}


@_cdecl("da_hook_callbacks_init")
public func da_hook_callbacks_init(_ cb: UnsafeMutablePointer<da_hook_callbacks>?, _ size: Int) -> da_status {
    initStruct(cb, size, "callbacks") { da_hook_callbacks() }
}

@_cdecl("da_hook_create")
public func da_hook_create(_ cb: UnsafePointer<da_hook_callbacks>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guarded {
        let out = try output(out, "out")
        out.pointee = nil
        out.pointee = hookHandles.insert(HookBox(CHook(try readGrownStruct(cb, "callbacks", since: \da_hook_callbacks.pre_forward_args))))
    }
}

@_cdecl("da_hook_destroy")
public func da_hook_destroy(_ h: OpaquePointer?) { hookHandles.remove(h) }

@_cdecl("da_model_hook_registry")
public func da_model_hook_registry(_ h: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                                   _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guarded {
        let m = try model(h)
        let out = try output(out, "out")
        out.pointee = nil
        out.pointee = registryHandle(try m.hookRegistry(at: try cString(path, "path")))
    }
}

@_cdecl("da_attention_hook_registry")
public func da_attention_hook_registry(_ h: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(h)
        let out = try output(out, "out")
        out.pointee = registryHandle(a.hooks())
    }
}

@_cdecl("da_hook_registry_register")
public func da_hook_registry_register(_ r: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ hook: OpaquePointer?) -> da_status {
    guarded {
        let reg = try registryHandles.lookup(r)
        let n = try cString(name, "name")
        try reg.register(try hookHandles.lookup(hook).hook, name: n)
    }
}

@_cdecl("da_hook_registry_remove")
public func da_hook_registry_remove(_ r: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ recurse: Int32) -> da_status {
    guarded { let reg = try registryHandles.lookup(r); try reg.remove(try cString(name, "name"), recurse: recurse != 0) }
}

@_cdecl("da_hook_registry_has_hook")
public func da_hook_registry_has_hook(_ r: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ present: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded {
        let reg = try registryHandles.lookup(r)
        let n = try cString(name, "name")
        try output(present, "present").pointee = reg.hook(named: n) == nil ? 0 : 1
    }
}

@_cdecl("da_hook_registry_hook_count")
public func da_hook_registry_hook_count(_ r: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let reg = try registryHandles.lookup(r); try output(count, "count").pointee = Int64(reg.hookNames.count) }
}

@_cdecl("da_hook_registry_hook_name")
public func da_hook_registry_hook_name(_ r: OpaquePointer?, _ index: Int64, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> da_status {
    guarded {
        let names = try registryHandles.lookup(r).hookNames
        let out = try output(name, "name")
        out.pointee = internedCString(try element(names, at: index, "hooks in this registry"))
    }
}

@_cdecl("da_hook_registry_reset_stateful_hooks")
public func da_hook_registry_reset_stateful_hooks(_ r: OpaquePointer?, _ recurse: Int32) -> da_status {
    guarded { try registryHandles.lookup(r).resetStatefulHooks(recurse: recurse != 0) }
}

@_cdecl("da_hook_registry_enter")
public func da_hook_registry_enter(_ r: OpaquePointer?) -> da_status { guarded { try registryHandles.lookup(r).enter() } }

@_cdecl("da_hook_registry_exit")
public func da_hook_registry_exit(_ r: OpaquePointer?) -> da_status { guarded { try registryHandles.lookup(r).exit() } }

@_cdecl("da_model_begin_step")
public func da_model_begin_step(_ h: OpaquePointer?, _ timestep: Double) -> da_status {
    guarded { try model(h).beginStep(timestep: timestep) }
}

@_cdecl("da_model_end_step")
public func da_model_end_step(_ h: OpaquePointer?) -> da_status {
    guarded { try model(h).endStep() }
}

/// Reads a struct that grew: a caller compiled against an older header passes the shorter size
/// (up to the field `since`); the newer fields then read as zero (NULL callbacks).
func readGrownStruct<T>(_ p: UnsafePointer<T>?, _ name: String, since field: PartialKeyPath<T>) throws -> T {
    guard let p else { throw DiffAttnError.argument("\(name) is NULL") }
    let size = Int(UnsafeRawPointer(p).load(as: UInt32.self))
    let oldSize = MemoryLayout<T>.offset(of: field) ?? MemoryLayout<T>.size
    guard size == oldSize || size >= MemoryLayout<T>.size else {
        throw DiffAttnError.argument("\(name)->struct_size is \(size); expected \(oldSize) (older header) or at least \(MemoryLayout<T>.size) (initialise it with its *_init function or sizeof)")
    }
    if size >= MemoryLayout<T>.size { return p.pointee }
    let value = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
    defer { value.deallocate() }
    value.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
    value.copyMemory(from: UnsafeRawPointer(p), byteCount: size)
    return value.load(as: T.self)
}

/// A `*_init` thunk for a struct that grew: the older size gets only its fields written.
func initGrownStruct<T>(_ p: UnsafeMutablePointer<T>?, _ size: Int, _ name: String, since field: PartialKeyPath<T>,
                        _ defaults: () throws -> T) -> da_status {
    let oldSize = MemoryLayout<T>.offset(of: field) ?? MemoryLayout<T>.size
    guard size == oldSize, let p else { return initStruct(p, size, name, defaults) }
    return guarded {
        var value = try defaults()
        withUnsafeMutableBytes(of: &value) { raw in
            raw.storeBytes(of: UInt32(oldSize), as: UInt32.self)
            UnsafeMutableRawPointer(p).copyMemory(from: raw.baseAddress!, byteCount: oldSize)
        }
    }
}
