import DiffAttnKernels

/// An attention mask as diffusers receives it: additive float32 (0 keeps, large negative
/// removes) or boolean (true = may attend).
public enum AttentionMask: Sendable {
    case additive(Tensor)
    case boolean(BoolTensor)

    public var shape: [Int] {
        switch self {
        case .additive(let t): return t.shape
        case .boolean(let t): return t.shape
        }
    }

    var dtypeName: String {
        switch self {
        case .additive: return "float32"
        case .boolean: return "bool"
        }
    }

    package func map(_ f: (Tensor) throws -> Tensor, _ g: (BoolTensor) throws -> BoolTensor) rethrows -> AttentionMask {
        switch self {
        case .additive(let t): return .additive(try f(t))
        case .boolean(let t): return .boolean(try g(t))
        }
    }
}

/// diffusers' `prepare_attention_mask` (attention_processor.py:Attention.prepare_attention_mask), quirks included: a last axis whose length
/// differs from `targetLength` gets `targetLength` zeros appended (not the missing amount).
public func prepareAttentionMask(_ mask: AttentionMask, targetLength: Int, batchSize: Int,
                                 heads: Int, outDim: Int = 3) throws -> AttentionMask {
    guard mask.shape.count >= 1 else { throw DiffAttnError.shape("attention_mask must have at least one axis") }
    guard targetLength >= 0, batchSize >= 0 else {
        throw DiffAttnError.argument("target_length and batch_size must be non-negative")
    }
    return try mask.map({ try prepare($0, targetLength, batchSize, heads, outDim) },
                        { try prepare($0, targetLength, batchSize, heads, outDim) })
}

private func prepare<E>(_ m: NDArray<E>, _ target: Int, _ batch: Int, _ heads: Int, _ outDim: Int) throws -> NDArray<E> {
    var m = m
    let width = m.shape.last!
    let padded = width == target ? width : width + target
    let repeats = (outDim == 3 && m.shape[0] < batch * heads) || outDim == 4 ? heads : 1
    _ = try checkedElementCount(m.shape.dropLast() + [padded, repeats], "the prepared attention_mask")
    if width != target { m = padLastAxis(m, by: target) }
    if outDim == 3 {
        if m.shape[0] < batch * heads { m = repeatInterleave(m, heads, axis: 0) }
    } else if outDim == 4 {
        m = repeatInterleave(m.reshaped([m.shape[0], 1] + m.shape.dropFirst()), heads, axis: 1)
    }
    return m
}

/// Appends `extra` zeros (false) along the last axis.
func padLastAxis<E>(_ m: NDArray<E>, by extra: Int) -> NDArray<E> {
    let width = m.shape.last!, rows = m.shape.dropLast().reduce(1, *)
    let zero: E = zeroBits()
    var out = [E](); out.reserveCapacity(rows * (width + extra))
    for r in 0..<rows {
        out.append(contentsOf: m.storage[(r * width)..<((r + 1) * width)])
        out.append(contentsOf: repeatElement(zero, count: extra))
    }
    var shape = m.shape; shape[shape.count - 1] = width + extra
    return NDArray(shape: shape, storage: out)
}

/// The all-zero-bits value of a trivially copyable element (0.0 or false).
private func zeroBits<E: BitwiseCopyable>() -> E {
    withUnsafeTemporaryAllocation(of: E.self, capacity: 1) { buffer in
        UnsafeMutableRawPointer(buffer.baseAddress!).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<E>.size)
        return buffer[0]
    }
}

/// torch's `repeat_interleave(repeats, dim=axis)`: each slice along `axis` repeated in place.
func repeatInterleave<E>(_ m: NDArray<E>, _ repeats: Int, axis: Int) -> NDArray<E> {
    let outer = m.shape[..<axis].reduce(1, *), n = m.shape[axis]
    let inner = m.shape[(axis + 1)...].reduce(1, *)
    var out = [E](); out.reserveCapacity(m.count * repeats)
    for o in 0..<outer {
        for i in 0..<n {
            let start = (o * n + i) * inner
            for _ in 0..<repeats { out.append(contentsOf: m.storage[start..<(start + inner)]) }
        }
    }
    var shape = m.shape; shape[axis] = n * repeats
    return NDArray(shape: shape, storage: out)
}
