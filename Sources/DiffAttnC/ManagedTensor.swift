import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels
import Glibc

// Tensors the library allocates for the caller: one 64-byte-aligned block holding the
// DLManagedTensor, its shape array and the data, released by its deleter (or da_tensor_free).

private let deleter: @convention(c) (UnsafeMutablePointer<DLManagedTensor>?) -> Void = { free($0) }

private func managedBlock(shape: [Int], elementBytes: Int, dtype: DLDataType) throws -> UnsafeMutablePointer<DLManagedTensor> {
    let header = (MemoryLayout<DLManagedTensor>.stride + shape.count * 8 + 63) & ~63
    let count = shape.reduce(1, *)
    var raw: UnsafeMutableRawPointer?
    guard posix_memalign(&raw, 64, header + max(count * elementBytes, 1)) == 0, let raw else {
        throw DiffAttnError(.outOfMemory, "could not allocate \(count * elementBytes) bytes for an output tensor")
    }
    let managed = raw.bindMemory(to: DLManagedTensor.self, capacity: 1)
    let shapePointer = (raw + MemoryLayout<DLManagedTensor>.stride).bindMemory(to: Int64.self, capacity: max(shape.count, 1))
    for (i, s) in shape.enumerated() { shapePointer[i] = Int64(s) }
    managed.initialize(to: DLManagedTensor(
        dl_tensor: DLTensor(data: raw + header, device: DLDevice(device_type: kDLCPU, device_id: 0),
                            ndim: Int32(shape.count), dtype: dtype, shape: shapePointer, strides: nil, byte_offset: 0),
        manager_ctx: nil, deleter: deleter))
    return managed
}

/// A new library-owned copy of `value`.
func makeManaged(_ value: Tensor) throws -> UnsafeMutablePointer<DLManagedTensor> {
    let m = try managedBlock(shape: value.shape, elementBytes: 4, dtype: DLDataType(code: 2, bits: 32, lanes: 1))
    let data = m.pointee.dl_tensor.data.assumingMemoryBound(to: Float.self)
    value.withUnsafeElements { if value.count > 0 { data.update(from: $0.baseAddress!, count: value.count) } }
    return m
}

/// A new library-owned copy of a mask, keeping its dtype (bool masks as DLPack bool, code 6).
func makeManaged(_ mask: AttentionMask) throws -> UnsafeMutablePointer<DLManagedTensor> {
    switch mask {
    case .additive(let t): return try makeManaged(t)
    case .boolean(let t):
        let m = try managedBlock(shape: t.shape, elementBytes: 1, dtype: DLDataType(code: 6, bits: 8, lanes: 1))
        let data = m.pointee.dl_tensor.data.assumingMemoryBound(to: UInt8.self)
        t.withUnsafeElements { if t.count > 0 { data.update(from: $0.baseAddress!, count: t.count) } }
        return m
    }
}

/// Releases a tensor through its own deleter (tensors of other producers included).
func release(_ tensor: UnsafeMutablePointer<DLManagedTensor>?) {
    guard let tensor, let d = tensor.pointee.deleter else { return }
    d(tensor)
}

@_cdecl("da_tensor_free")
public func da_tensor_free(_ tensor: UnsafeMutablePointer<DLManagedTensor>?) { release(tensor) }

/// Stores a new tensor into a caller's out-pointer after checking it.
func deliver(_ value: () throws -> UnsafeMutablePointer<DLManagedTensor>,
             to out: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?) throws {
    guard let out else { throw DiffAttnError.argument("out is NULL; expected a DLManagedTensor** to receive the result") }
    out.pointee = nil
    out.pointee = try value()
}
