import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels
import Glibc

// Reading and writing caller-owned DLTensors. Everything a caller controls (pointers, rank,
// sizes, strides, dtype, device) is checked here before any arithmetic on it.

let maxElements = 1 << 40

/// The checked geometry of a DLTensor: its shape and element strides.
struct TensorGeometry {
    var shape: [Int]
    var strides: [Int]
    var count: Int
    var base: UnsafeMutableRawPointer?
    var elementBytes: Int
}

enum ElementKind { case float32, boolean, bfloat16 }

func dtypeName(_ t: DLDataType) -> String {
    let names: [UInt8: String] = [0: "int", 1: "uint", 2: "float", 4: "bfloat", 5: "complex", 6: "bool"]
    return "\(names[t.code] ?? "code\(t.code)")\(t.bits)" + (t.lanes == 1 ? "" : "x\(t.lanes)")
}

func elementKind(_ t: DLDataType) -> ElementKind? {
    if t.lanes != 1 { return nil }
    if t.code == 2 && t.bits == 32 { return .float32 }
    if (t.code == 1 || t.code == 6) && t.bits == 8 { return .boolean }
    if t.code == 4 && t.bits == 16 { return .bfloat16 }
    return nil
}

/// Validates a DLTensor's pointers, device, rank, sizes and strides.
func geometry(_ p: UnsafePointer<DLTensor>?, _ name: String, allowBoolean: Bool = false,
              allowBFloat16: Bool = false) throws -> TensorGeometry {
    guard let p else { throw DiffAttnError.argument("\(name) is NULL; expected a DLTensor") }
    let t = p.pointee
    guard t.device.device_type == kDLCPU else {
        throw DiffAttnError.dtype("\(name) must be on the CPU (device_type kDLCPU = 1), got device_type \(t.device.device_type.rawValue)")
    }
    guard let kind = elementKind(t.dtype),
          kind == .float32 || (kind == .boolean && allowBoolean) || (kind == .bfloat16 && allowBFloat16) else {
        let also = allowBoolean ? " or bool" : allowBFloat16 ? " or bfloat16" : ""
        throw DiffAttnError.dtype("\(name) must be float32\(also), got \(dtypeName(t.dtype))")
    }
    guard t.ndim >= 0 && t.ndim <= Int32(DA_MAX_NDIM) else {
        throw DiffAttnError.shape("\(name) has ndim \(t.ndim); expected 0...\(DA_MAX_NDIM)")
    }
    let rank = Int(t.ndim)
    guard rank == 0 || t.shape != nil else { throw DiffAttnError.argument("\(name).shape is NULL with ndim \(rank)") }
    var shape = [Int](), count = 1
    for i in 0..<rank {
        let s = t.shape[i]
        guard s >= 0, s <= Int64(maxElements) else { throw DiffAttnError.shape("\(name).shape[\(i)] = \(s) is out of range") }
        shape.append(Int(s))
        let (product, overflow) = count.multipliedReportingOverflow(by: Int(s))
        guard !overflow, product <= maxElements else { throw DiffAttnError.shape("\(name) has too many elements (shape \(shape))") }
        count = product
    }
    var strides = contiguousStrides(shape)
    if let st = t.strides, count > 0 {
        for i in 0..<rank {
            let s = st[i]
            guard s >= -Int64(maxElements), s <= Int64(maxElements) else { throw DiffAttnError.shape("\(name).strides[\(i)] = \(s) is out of range") }
            strides[i] = Int(s)
        }
        // The farthest element must be addressable without overflow.
        var span = 0
        for i in 0..<rank where shape[i] > 1 {
            let (reach, o1) = abs(strides[i]).multipliedReportingOverflow(by: shape[i] - 1)
            let (sum, o2) = span.addingReportingOverflow(reach)
            guard !o1, !o2, sum <= maxElements else { throw DiffAttnError.shape("\(name) strides reach beyond any buffer") }
            span = sum
        }
    }
    guard count == 0 || t.data != nil else { throw DiffAttnError.argument("\(name).data is NULL") }
    guard t.byte_offset <= UInt64(maxElements) * 8 else { throw DiffAttnError.argument("\(name).byte_offset is out of range") }
    let base = t.data.map { $0 + Int(t.byte_offset) }
    return TensorGeometry(shape: shape, strides: strides, count: count, base: base, elementBytes: Int(t.dtype.bits) / 8)
}

/// Visits every element offset (in elements) of a strided geometry in row-major order.
func forEachOffset(_ g: TensorGeometry, _ body: (Int, Int) -> Void) {
    if g.count == 0 { return }
    let rank = g.shape.count
    var index = [Int](repeating: 0, count: rank), offset = 0
    for linear in 0..<g.count {
        body(linear, offset)
        var axis = rank - 1
        while axis >= 0 {
            index[axis] += 1
            offset += g.strides[axis]
            if index[axis] < g.shape[axis] { break }
            offset -= g.strides[axis] * g.shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}

/// Copies a float32 DLTensor into a dense Tensor (Loans.tensor reads one in place).
func readTensor(_ p: UnsafePointer<DLTensor>?, _ name: String) throws -> Tensor {
    let g = try geometry(p, name)
    guard let base = g.base?.assumingMemoryBound(to: Float.self) else { return Tensor(shape: g.shape, repeating: 0) }
    guard g.count <= maxWorkingElements else {
        throw DiffAttnError(.outOfMemory, "\(name) has \(g.count) elements (\(g.count * 4) bytes), more than the \(maxWorkingElements) one tensor may hold")
    }
    try reserveWorkingMemory(g.count * 4, "reading \(name)")
    return Tensor(shape: g.shape) { dst in
        if g.strides == contiguousStrides(g.shape) {   // the usual case: one copy, no index walk
            dst.update(from: base, count: g.count)
        } else {
            forEachOffset(g) { i, off in dst[i] = base[off] }
        }
    }
}

/// Row-major dense: every axis longer than 1 has its row-major stride (torch gives size-1 axes any
/// stride, e.g. after `unsqueeze`).
func isRowMajor(_ g: TensorGeometry) -> Bool {
    let dense = contiguousStrides(g.shape)
    return g.shape.indices.allSatisfy { g.shape[$0] <= 1 || g.strides[$0] == dense[$0] }
}

/// The caller's tensors a thunk reads in place for one call (`lendTensor`). `end` runs before the
/// thunk returns or writes an output (which may alias an input): a tensor over lent memory that
/// something still holds (a hook kept it) gets its private copy then.
struct Loans {
    private var lent: [LentElements<Float>] = []

    /// A contiguous, aligned, non-empty float32 tensor is read in place; any other is copied.
    mutating func tensor(_ p: UnsafePointer<DLTensor>?, _ name: String) throws -> Tensor {
        let g = try geometry(p, name)
        guard g.count > 0, g.count <= maxWorkingElements, isRowMajor(g),
              let base = g.base, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else {
            return try readTensor(p, name)
        }
        let elements = LentElements(base: UnsafePointer(base.assumingMemoryBound(to: Float.self)), count: g.count)
        lent.append(elements)
        return Tensor(shape: g.shape, lending: elements)
    }

    mutating func optionalTensor(_ p: UnsafePointer<DLTensor>?, _ name: String) throws -> Tensor? {
        p == nil ? nil : try tensor(p, name)
    }

    /// Ends the loans something still holds; the others end with their last tensor.
    mutating func end() {
        for i in lent.indices where !isKnownUniquelyReferenced(&lent[i]) { lent[i].endLoan() }
        lent = []
    }
}

/// Reads an optional tensor (NULL = None).
func readOptionalTensor(_ p: UnsafePointer<DLTensor>?, _ name: String) throws -> Tensor? {
    p == nil ? nil : try readTensor(p, name)
}

/// Reads a mask: float32 → additive, 8-bit bool → boolean (non-zero = attend).
func readMask(_ p: UnsafePointer<DLTensor>?, _ name: String) throws -> AttentionMask? {
    guard p != nil else { return nil }
    let g = try geometry(p, name, allowBoolean: true)
    if elementKind(p!.pointee.dtype) == .float32 { return .additive(try readTensor(p, name)) }
    var out = BoolTensor(shape: g.shape, repeating: 0)
    if let base = g.base?.assumingMemoryBound(to: UInt8.self) {
        out.storage.withUnsafeMutableBufferPointer { dst in
            forEachOffset(g) { i, off in dst[i] = base[off] != 0 ? 1 : 0 }
        }
    }
    return .boolean(out)
}

/// Copies `value` into the caller's float32 tensor, whose shape must match exactly.
func writeTensor(_ value: Tensor, into p: UnsafeMutablePointer<DLTensor>?, _ name: String) throws {
    let g = try checkedOutput(p, name, shape: value.shape)
    guard let base = g.base?.assumingMemoryBound(to: Float.self) else { return }
    value.withUnsafeElements { src in
        if g.strides == contiguousStrides(g.shape) {
            if g.count > 0 { base.update(from: src.baseAddress!, count: g.count) }
        } else {
            forEachOffset(g) { i, off in base[off] = src[i] }
        }
    }
}

/// Validates an output tensor's geometry against the expected shape.
func checkedOutput(_ p: UnsafeMutablePointer<DLTensor>?, _ name: String, shape: [Int]) throws -> TensorGeometry {
    let g = try geometry(UnsafePointer(p), name)
    guard g.shape == shape else {
        throw DiffAttnError.shape("\(name) must have shape \(shape), got \(g.shape)")
    }
    return g
}
