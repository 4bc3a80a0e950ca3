import DiffAttn
import DiffAttnKernels

/// Maps opaque C handles to Swift objects. A handle encodes a slot index and that slot's
/// generation, so a destroyed handle (whose slot's generation has moved on), a handle of another
/// kind, or a made-up value is recognised and answered with a status — never dereferenced.
final class HandleTable<Object: AnyObject & Sendable>: Sendable {
    private struct Slot {
        var generation: UInt32 = 1
        var object: Object?
        /// Lent out by an owner (a model's attention module): only the owner removes it.
        var borrowed = false
    }
    private struct State {
        var slots: [Slot] = []
        var free: [Int] = []
    }
    private let state = Locked(State())
    /// Distinguishes handle kinds: a `da_attention` is never mistaken for another kind's handle.
    private let tag: UInt64
    let kindName: String
    /// The name C declarations give a parameter of this kind; errors name it.
    let argument: String

    init(tag: UInt8, kindName: String, argument: String) {
        self.tag = UInt64(tag) << 56
        self.kindName = kindName
        self.argument = argument
    }

    func insert(_ object: Object, borrowed: Bool = false) -> OpaquePointer {
        state.withLock { s in
            let index: Int
            if let reused = s.free.popLast() { index = reused } else { index = s.slots.count; s.slots.append(Slot()) }
            s.slots[index].object = object
            s.slots[index].borrowed = borrowed
            let bits = tag | UInt64(index + 1) << 24 | UInt64(s.slots[index].generation & 0xFF_FFFF)
            return OpaquePointer(bitPattern: UInt(bits))!
        }
    }

    private func decode(_ handle: OpaquePointer?) -> (index: Int, generation: UInt32)? {
        guard let handle else { return nil }
        let bits = UInt64(UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle))))
        guard bits & (0xFF << 56) == tag else { return nil }
        let index = Int((bits >> 24) & 0xFFFF_FFFF) - 1
        return index >= 0 ? (index, UInt32(bits & 0xFF_FFFF)) : nil
    }

    /// The live object behind a caller's handle, or an error naming the parameter.
    func lookup(_ handle: OpaquePointer?) throws -> Object {
        guard handle != nil else { throw DiffAttnError(.invalidHandle, "\(argument) is NULL; expected a live \(kindName)") }
        let found: Object? = state.withLock { s in
            guard let (i, g) = decode(handle), i < s.slots.count, s.slots[i].generation & 0xFF_FFFF == g else { return nil }
            return s.slots[i].object
        }
        guard let found else {
            throw DiffAttnError(.invalidHandle, "\(argument) is not a live \(kindName) (destroyed, of another kind, or never created)")
        }
        return found
    }

    /// Removes the object; unknown or stale handles are ignored (destroy accepts anything), and
    /// so are borrowed ones unless their owner (`owner: true`) removes them.
    func remove(_ handle: OpaquePointer?, owner: Bool = false) {
        state.withLock { s in
            guard let (i, g) = decode(handle), i < s.slots.count, s.slots[i].generation & 0xFF_FFFF == g,
                  s.slots[i].object != nil, owner || !s.slots[i].borrowed else { return }
            s.slots[i].object = nil
            s.slots[i].generation &+= 1
            if s.slots[i].generation & 0xFF_FFFF == 0 { s.slots[i].generation = 1 }
            s.free.append(i)
        }
    }
}

let attentionHandles = HandleTable<Attention>(tag: 0xA1, kindName: "da_attention", argument: "attention")
let modelHandles = HandleTable<ModelBox>(tag: 0xA2, kindName: "da_model", argument: "model")
let pipelineHandles = HandleTable<Pipeline>(tag: 0xA3, kindName: "da_pipeline", argument: "pipeline")
let hookHandles = HandleTable<HookBox>(tag: 0xA4, kindName: "da_hook", argument: "hook")
let registryHandles = HandleTable<HookRegistry>(tag: 0xA5, kindName: "da_hook_registry", argument: "registry")

/// The model behind a `da_model` handle (its table holds it with the attention handles it lent).
func model(_ h: OpaquePointer?) throws -> Model { try modelHandles.lookup(h).model }
