import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels
import Glibc

// Thunks for argument and output lists (da_hook_values), new_forward's `original`, and
// da_model_call_module (include/diffattn.h, "argument and output lists"; issue 16).

/// One entry of a list as C sees it: a tensor entry exposed through da_hook_values_tensor gets a
/// buffer the caller may write through, read back when the list is turned into `HookArgs`.
final class ValueSlot: @unchecked Sendable {
    let entry: HookArgs.Entry
    let cName: UnsafeMutablePointer<CChar>
    private var view: (data: UnsafeMutableBufferPointer<Float>, dims: UnsafeMutableBufferPointer<Int64>)?

    init(_ entry: HookArgs.Entry) {
        self.entry = entry
        cName = strdup(entry.name)!
    }

    deinit {
        free(cName)
        if let v = view { v.data.deallocate(); v.dims.deallocate() }
    }

    /// The value, with edits made through the view.
    var value: HookValue {
        guard let v = view, case .tensor(let t) = entry.value else { return entry.value }
        return .tensor(Tensor(shape: t.shape, storage: Array(v.data.prefix(t.count))))
    }

    func dlTensor() throws -> DLTensor {
        guard case .tensor(let t) = entry.value else {
            throw DiffAttnError.type("value '\(entry.name)' is not a tensor")
        }
        if view == nil {
            let data = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, t.count))
            _ = t.withUnsafeElements { data.initialize(from: $0) }
            let dims = UnsafeMutableBufferPointer<Int64>.allocate(capacity: max(1, t.shape.count))
            for (i, d) in t.shape.enumerated() { dims[i] = Int64(d) }
            view = (data, dims)
        }
        return DLTensor(data: UnsafeMutableRawPointer(view!.data.baseAddress), device: DLDevice(device_type: kDLCPU, device_id: 0),
                        ndim: Int32(t.shape.count), dtype: DLDataType(code: UInt8(kDLFloat.rawValue), bits: 32, lanes: 1),
                        shape: view!.dims.baseAddress, strides: nil, byte_offset: 0)
    }
}

/// A da_hook_values: the slots of one list.
final class ValuesBox: @unchecked Sendable {
    private(set) var slots: [ValueSlot]

    init(_ args: HookArgs = HookArgs()) { slots = args.entries.map { ValueSlot($0) } }

    var args: HookArgs {
        get throws {
            var a = HookArgs()
            for s in slots { try a.append(s.entry.name, positional: s.entry.positional, s.value) }
            return a
        }
    }

    func replace(with args: HookArgs) { slots = args.entries.map { ValueSlot($0) } }

    func slot(_ index: Int64) throws -> ValueSlot {
        guard index >= 0, index < slots.count else {
            throw DiffAttnError.argument("index \(index) is outside the \(slots.count) values")
        }
        return slots[Int(index)]
    }

    func set(_ index: Int64, _ value: HookValue) throws {
        let old = try slot(index).entry
        slots[Int(index)] = ValueSlot(HookArgs.Entry(old.name, positional: old.positional, value))
    }

    func insert(_ index: Int64, _ entry: HookArgs.Entry) throws {
        var a = try args
        guard index >= 0, index <= slots.count else {
            throw DiffAttnError.argument("index \(index) is outside 0...\(slots.count)")
        }
        try a.insert(entry, at: Int(index))   // validates the order and keyword uniqueness
        slots.insert(ValueSlot(entry), at: Int(index))
    }

    func remove(_ index: Int64) throws {
        _ = try slot(index)
        slots.remove(at: Int(index))
    }

    func clear() { slots.removeAll() }
}

let valuesHandles = HandleTable<ValuesBox>(tag: 0xA6, kindName: "da_hook_values", argument: "values")

private func values(_ h: OpaquePointer?) throws -> ValuesBox { try valuesHandles.lookup(h) }

/// `body(handle)` with `box` lent to C for the call's duration.
func lending<T>(_ box: ValuesBox, _ body: (OpaquePointer) throws -> T) rethrows -> T {
    let h = valuesHandles.insert(box)
    defer { valuesHandles.remove(h) }
    return try body(h)
}

/// The error for a callback's non-zero status: the message a nested library call left on this
/// thread when there is one (so a host's forward passing on a failure keeps its text), else `what`.
func callbackError(_ status: Int32, _ what: String) -> DiffAttnError {
    let kind = DiffAttnError.Kind(rawValue: status) ?? .internal
    let left = String(cString: currentErrorMessage())
    return DiffAttnError(kind, left.isEmpty ? "\(what) returned \(status)" : left)
}

@_cdecl("da_hook_values_create")
public func da_hook_values_create(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guarded {
        let out = try output(out, "out")
        out.pointee = valuesHandles.insert(ValuesBox())
    }
}

@_cdecl("da_hook_values_destroy")
public func da_hook_values_destroy(_ h: OpaquePointer?) { valuesHandles.remove(h) }

@_cdecl("da_hook_values_count")
public func da_hook_values_count(_ h: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    guarded { let v = try values(h); try output(count, "count").pointee = Int64(v.slots.count) }
}

@_cdecl("da_hook_values_info")
public func da_hook_values_info(_ h: OpaquePointer?, _ index: Int64, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                _ kind: UnsafeMutablePointer<Int32>?, _ positional: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded {
        let s = try values(h).slot(index)
        name?.pointee = UnsafePointer(s.cName)
        switch s.entry.value {
        case .none: kind?.pointee = DA_VALUE_NONE
        case .tensor: kind?.pointee = DA_VALUE_TENSOR
        case .number: kind?.pointee = DA_VALUE_NUMBER
        }
        positional?.pointee = s.entry.positional ? 1 : 0
    }
}

@_cdecl("da_hook_values_tensor")
public func da_hook_values_tensor(_ h: OpaquePointer?, _ index: Int64, _ out: UnsafeMutablePointer<DLTensor>?) -> da_status {
    guarded {
        let s = try values(h).slot(index)
        let out = try output(out, "out")
        out.pointee = try s.dlTensor()
    }
}

@_cdecl("da_hook_values_number")
public func da_hook_values_number(_ h: OpaquePointer?, _ index: Int64, _ out: UnsafeMutablePointer<Double>?) -> da_status {
    guarded {
        let s = try values(h).slot(index)
        guard case .number(let x) = s.entry.value else { throw DiffAttnError.type("value '\(s.entry.name)' is not a number") }
        try output(out, "out").pointee = x
    }
}

private func tensorValue(_ t: UnsafePointer<DLTensor>?) throws -> HookValue {
    t == nil ? .none : .tensor(try readTensor(t, "tensor"))
}

@_cdecl("da_hook_values_set_tensor")
public func da_hook_values_set_tensor(_ h: OpaquePointer?, _ index: Int64, _ t: UnsafePointer<DLTensor>?) -> da_status {
    guarded { let v = try values(h); try v.set(index, try tensorValue(t)) }
}

@_cdecl("da_hook_values_set_number")
public func da_hook_values_set_number(_ h: OpaquePointer?, _ index: Int64, _ x: Double) -> da_status {
    guarded { let v = try values(h); try v.set(index, .number(x)) }
}

@_cdecl("da_hook_values_insert_tensor")
public func da_hook_values_insert_tensor(_ h: OpaquePointer?, _ index: Int64, _ name: UnsafePointer<CChar>?,
                                         _ positional: Int32, _ t: UnsafePointer<DLTensor>?) -> da_status {
    guarded {
        let v = try values(h)
        try v.insert(index, HookArgs.Entry(try cString(name, "name"), positional: positional != 0, try tensorValue(t)))
    }
}

@_cdecl("da_hook_values_insert_number")
public func da_hook_values_insert_number(_ h: OpaquePointer?, _ index: Int64, _ name: UnsafePointer<CChar>?,
                                         _ positional: Int32, _ x: Double) -> da_status {
    guarded {
        let v = try values(h)
        try v.insert(index, HookArgs.Entry(try cString(name, "name"), positional: positional != 0, .number(x)))
    }
}

@_cdecl("da_hook_values_remove")
public func da_hook_values_remove(_ h: OpaquePointer?, _ index: Int64) -> da_status {
    guarded { try values(h).remove(index) }
}

@_cdecl("da_hook_values_clear")
public func da_hook_values_clear(_ h: OpaquePointer?) -> da_status {
    guarded { try values(h).clear() }
}

/// What a C `original` call runs: the inner chain, and the error it raised (rethrown as is when
/// the hook passes its status on).
final class OriginalCall: @unchecked Sendable {
    let run: (HookArgs) throws -> HookArgs
    var error: DiffAttnError?
    init(_ run: @escaping (HookArgs) throws -> HookArgs) { self.run = run }
}

/// The `da_forward_fn` handed to a C new_forward as `original`.
let originalThunk: da_forward_fn = { context, _, args, outputs in
    guarded {
        guard let context else { throw DiffAttnError.argument("original_context is NULL") }
        let call = Unmanaged<OriginalCall>.fromOpaque(context).takeUnretainedValue()
        let inputs = try values(args), out = try values(outputs)
        do {
            out.replace(with: try call.run(try inputs.args))
        } catch let e as DiffAttnError {
            call.error = e
            throw e
        }
    }
}

@_cdecl("da_model_call_module")
public func da_model_call_module(_ h: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ args: OpaquePointer?,
                                 _ outputs: OpaquePointer?, _ forward: da_forward_fn?,
                                 _ context: UnsafeMutableRawPointer?) -> da_status {
    guarded {
        let m = try model(h)
        let p = try cString(path, "path")
        let inputs = try values(args), out = try values(outputs)
        guard let forward else { throw DiffAttnError.argument("forward is NULL") }
        let result = try m.callModule(p, try inputs.args) { a in
            let callBox = ValuesBox(a), resultBox = ValuesBox()
            let status = lending(callBox) { ch in lending(resultBox) { rh in p.withCString { forward(context, $0, ch, rh) } } }
            guard status == DA_OK else { throw callbackError(status, "the forward of '\(p)'") }
            return try resultBox.args
        }
        out.replace(with: result)
    }
}
