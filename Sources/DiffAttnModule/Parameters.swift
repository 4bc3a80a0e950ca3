import DiffAttnKernels

/// One state-dict entry: diffusers' name and shape.
public struct ParameterSpec: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
}

/// How an entry starts out, mirroring torch's default initialisation so that an un-loaded
/// module is usable (and deterministic) rather than all zeros.
package enum ParameterInit {
    case ones, zeros
    /// U(-1/√fanIn, 1/√fanIn), torch's default for Linear/Conv weights and biases.
    case uniform(fanIn: Int)
}

/// A weight kept in 16-bit storage: bf16 or fp16 bit patterns.
package struct NarrowedValue: Sendable {
    package var format: LinearWeightFormat
    package var bits: [UInt16]
}

/// A weight read in place from the caller's memory (da_attention_borrow_weight): contiguous,
/// `count` elements of `format`, valid while the caller keeps the memory alive.
package struct BorrowedValue: @unchecked Sendable {
    package var base: UnsafeRawPointer
    package var format: LinearWeightFormat
    package var count: Int
}

/// The named weights of a module, in diffusers' registration order.
public struct ParameterTable: Sendable {
    public private(set) var specs: [ParameterSpec] = []
    private(set) var values: [Tensor] = []
    private var indexByName: [String: Int] = [:]
    private var seed: UInt64
    /// Set while group offloading manages these weights: values may be released (empty storage).
    package var offloadOwner: String?
    /// Entries a checkpoint load left at their random initialisation while the caller did not opt
    /// into that (DiffAttnModels/Pretrained.swift): a forward refuses, naming the first. Setting
    /// an entry (`set`) removes it.
    package var unloaded: Set<String> = []
    /// Layerwise casting: entries stored as 16-bit bit patterns (their `values` slot is empty).
    package private(set) var narrowed: [String: NarrowedValue] = [:]
    /// Entries read from the caller's memory (their `values` slot is empty).
    package private(set) var borrowed: [String: BorrowedValue] = [:]

    init(seed: UInt64) { self.seed = seed }

    package mutating func add(_ name: String, _ shape: [Int], _ initial: ParameterInit) {
        var tensor = Tensor(shape: shape, repeating: 0)
        switch initial {
        case .zeros: break
        case .ones: tensor.storage = [Float](repeating: 1, count: tensor.count)
        case .uniform(let fanIn):
            let bound = 1 / Double(max(fanIn, 1)).squareRoot()
            for i in 0..<tensor.count { tensor.storage[i] = Float((nextUnit() * 2 - 1) * bound) }
        }
        indexByName[name] = specs.count
        specs.append(ParameterSpec(name: name, shape: shape))
        values.append(tensor)
    }

    /// A Linear layer's `weight` (out × in) and, when `bias`, its `bias`.
    mutating func addLinear(_ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool) {
        add(prefix + ".weight", [outFeatures, inFeatures], .uniform(fanIn: inFeatures))
        if bias { add(prefix + ".bias", [outFeatures], .uniform(fanIn: inFeatures)) }
    }

    /// A LayerNorm/GroupNorm/RMSNorm affine pair (weight ones, bias zeros).
    mutating func addNorm(_ prefix: String, width: Int, weight: Bool, bias: Bool) {
        if weight { add(prefix + ".weight", [width], .ones) }
        if bias { add(prefix + ".bias", [width], .zeros) }
    }

    package mutating func removeAll(withPrefix prefix: String) {
        let keep = specs.indices.filter { !specs[$0].name.hasPrefix(prefix) }
        specs = keep.map { specs[$0] }
        values = keep.map { values[$0] }
        narrowed = narrowed.filter { !$0.key.hasPrefix(prefix) }
        borrowed = borrowed.filter { !$0.key.hasPrefix(prefix) }
        indexByName = [:]
        for (i, spec) in specs.enumerated() { indexByName[spec.name] = i }
    }

    public func contains(_ name: String) -> Bool { indexByName[name] != nil }
    public func spec(named name: String) -> ParameterSpec? { indexByName[name].map { specs[$0] } }
    public subscript(name: String) -> Tensor? {
        guard let i = indexByName[name] else { return nil }
        if let b = borrowed[name] {   // a copy: only projections read borrowed weights in place
            return Tensor(shape: specs[i].shape) { out in
                if b.format == .float32 {
                    out.update(from: b.base.assumingMemoryBound(to: Float.self), count: b.count)
                } else {
                    widenToFloat32(b.base.assumingMemoryBound(to: UInt16.self), count: b.count, format: b.format, into: out)
                }
            }
        }
        guard let n = narrowed[name] else { return values[i] }
        return Tensor(shape: specs[i].shape) { out in
            n.bits.withUnsafeBufferPointer { widenToFloat32($0.baseAddress!, count: n.bits.count, format: n.format, into: out) }
        }
    }

    /// The entry's spec, or a not-found error that lists the names the module has.
    public func requireSpec(named name: String) throws -> ParameterSpec {
        guard let i = indexByName[name] else {
            throw DiffAttnError(.notFound, "unknown weight '\(name)'; expected one of: "
                                + specs.map(\.name).joined(separator: ", "))
        }
        return specs[i]
    }

    package mutating func set(_ name: String, _ tensor: Tensor) throws {
        _ = try requireSpec(named: name)
        if offloadOwner != nil {
            throw DiffAttnError.state("weight '\(name)' cannot be changed while group offloading manages it; remove the offloading first (diffusers would silently lose the edit, hooks/group_offloading.py:ModuleGroup)")
        }
        let i = indexByName[name]!
        guard tensor.shape == specs[i].shape else {
            throw DiffAttnError.shape("weight '\(name)' must have shape \(describe(specs[i].shape)), got \(describe(tensor.shape))")
        }
        values[i] = tensor
        borrowed[name] = nil
        unloaded.remove(name)
        if let format = narrowed[name]?.format { castStorage(name, to: format) }
    }

    /// Reads entry `name` from `base` (contiguous, the entry's element count of `format`) from now
    /// on, instead of an own copy; `set` or another borrow replaces it.
    mutating func borrow(_ name: String, base: UnsafeRawPointer, format: LinearWeightFormat) throws {
        let spec = try requireSpec(named: name)
        if offloadOwner != nil {
            throw DiffAttnError.state("weight '\(name)' cannot be borrowed while group offloading manages it")
        }
        let i = indexByName[name]!
        narrowed[name] = nil
        values[i] = Tensor(shape: [0], storage: [])
        borrowed[name] = BorrowedValue(base: base, format: format, count: spec.shape.reduce(1, *))
    }

    // MARK: layerwise casting (LayerwiseCasting.swift)

    /// Stores entry `name` as `format` (float32 puts it back as float32).
    mutating func castStorage(_ name: String, to format: LinearWeightFormat) {
        guard let i = indexByName[name], let current = self[name] else { return }
        narrowed[name] = nil
        borrowed[name] = nil
        guard format != .float32 else { values[i] = current; return }
        let bits = current.withUnsafeElements { src in
            [UInt16](unsafeUninitializedCapacity: src.count) { dst, n in
                if src.count > 0 { narrowFromFloat32(src.baseAddress!, count: src.count, format: format, into: dst.baseAddress!) }
                n = src.count
            }
        }
        narrowed[name] = NarrowedValue(format: format, bits: bits)
        values[i] = Tensor(shape: [0], storage: [])
    }

    // MARK: group offloading (DiffAttnHooks/ModuleGroup.swift)

    /// The values, in spec order, for an offload store.
    package var residentValues: [Tensor] { specs.map { self[$0.name]! } }

    /// Drops the values' storage (shapes stay in `specs`): the weights now live in a store.
    package mutating func releaseValues() {
        for i in values.indices { values[i] = Tensor(shape: [0], storage: []) }
    }

    /// Puts values back from a store, checking every size against the spec.
    package mutating func installValues(_ restored: [Tensor]) throws {
        guard restored.count == specs.count else {
            throw DiffAttnError(.io, "offload store holds \(restored.count) tensors, the module has \(specs.count)")
        }
        for (i, t) in restored.enumerated() where t.count != specs[i].shape.reduce(1, *) {
            throw DiffAttnError(.io, "offloaded '\(specs[i].name)' came back with \(t.count) elements, expected \(specs[i].shape.reduce(1, *))")
        }
        values = zip(restored, specs).map { Tensor(shape: $1.shape, storage: $0.storage) }
        for (name, n) in narrowed { castStorage(name, to: n.format) }
    }

    /// An error (not a trap) when the weights are released: the forward would read nothing.
    package func checkResident(owner: String) throws {
        if !unloaded.isEmpty, let first = specs.first(where: { unloaded.contains($0.name) }) {
            throw DiffAttnError.state("weight '\(owner.isEmpty ? "" : owner + ".")\(first.name)' was not loaded (missing from the checkpoint); load it, or opt into random initialisation of what is missing")
        }
        for (i, spec) in specs.enumerated() where narrowed[spec.name] == nil && borrowed[spec.name] == nil && values[i].count != spec.shape.reduce(1, *) {
            throw DiffAttnError.state("the weights of '\(owner)' are offloaded (group offloading); call the module through its model so the group is onloaded, or remove the offloading")
        }
    }

    /// splitmix64 → [0, 1): a fixed-seed generator, so two modules built alike start alike.
    private mutating func nextUnit() -> Double {
        seed &+= 0x9E37_79B9_7F4A_7C15
        var z = seed
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}
