/// A dense, row-major, host-owned array with a shape. Float tensors carry data; `UInt8` tensors
/// carry boolean masks (non-zero = true). Kernels take raw pointers; this type only owns memory.
public struct NDArray<Element: BitwiseCopyable & Sendable>: Sendable {
    public var shape: [Int]
    public var storage: [Element]

    public init(shape: [Int], storage: [Element]) {
        precondition(shape.reduce(1, *) == storage.count, "NDArray: storage does not match shape")
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], repeating value: Element) {
        self.shape = shape
        self.storage = [Element](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor whose every element `fill` writes (no zero fill first: the kernels' outputs).
    public init(shape: [Int], filledBy fill: (UnsafeMutablePointer<Element>) -> Void) {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.storage = [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { fill(buffer.baseAddress!) }
            initialized = count
        }
    }

    public var rank: Int { shape.count }
    public var count: Int { storage.count }

    /// Row-major strides in elements.
    public var strides: [Int] { contiguousStrides(shape) }

    /// The same elements under another shape of equal element count (a view in torch terms).
    public func reshaped(_ newShape: [Int]) -> NDArray {
        NDArray(shape: newShape, storage: storage)
    }
}

public typealias Tensor = NDArray<Float>
public typealias BoolTensor = NDArray<UInt8>

/// Row-major strides for `shape`, in elements.
public func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = running
        running *= shape[axis]
    }
    return strides
}

/// Strides that read `shape` as if broadcast to `target` by trailing-axis rules (stride 0 on
/// broadcast axes), or nil when the shapes are not broadcast-compatible (torch's rule).
public func broadcastStrides(shape: [Int], strides: [Int], to target: [Int]) -> [Int]? {
    if shape.count > target.count { return nil }
    var result = [Int](repeating: 0, count: target.count)
    let offset = target.count - shape.count
    for axis in 0..<shape.count {
        let size = shape[axis], want = target[axis + offset]
        if size == want { result[axis + offset] = size == 1 ? 0 : strides[axis] }
        else if size == 1 { result[axis + offset] = 0 }
        else { return nil }
    }
    return result
}

/// Torch's broadcast of two shapes, or nil when incompatible.
public func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if x == y || y == 1 { out[i] = x } else if x == 1 { out[i] = y } else { return nil }
    }
    return out
}
