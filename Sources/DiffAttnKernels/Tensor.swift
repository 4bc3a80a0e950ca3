/// A dense, row-major array with a shape. Float tensors carry data; `UInt8` tensors carry boolean
/// masks (non-zero = true). Kernels take raw pointers; this type only holds memory: its own, or a
/// caller's lent for one call (`init(shape:lending:)`, the C boundary's zero-copy inputs).
public struct NDArray<Element: BitwiseCopyable & Sendable>: Sendable {
    public var shape: [Int]
    private var owned: [Element]
    /// Set only while the elements are the caller's memory, read in place.
    private var lent: LentElements<Element>?

    public init(shape: [Int], storage: [Element]) {
        precondition(shape.reduce(1, *) == storage.count, "NDArray: storage does not match shape")
        self.shape = shape
        self.owned = storage
    }

    public init(shape: [Int], repeating value: Element) {
        self.shape = shape
        self.owned = [Element](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor whose every element `fill` writes (no zero fill first: the kernels' outputs).
    public init(shape: [Int], filledBy fill: (UnsafeMutablePointer<Element>) -> Void) {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.owned = [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { fill(buffer.baseAddress!) }
            initialized = count
        }
    }

    /// A tensor over memory the caller lends (its element count must match `shape`): reads go to
    /// that memory in place; the first write, or a read through `storage`, takes a private copy.
    public init(shape: [Int], lending elements: LentElements<Element>) {
        precondition(shape.reduce(1, *) == elements.count, "NDArray: lent elements do not match shape")
        self.shape = shape
        self.owned = []
        self.lent = elements
    }

    /// The elements as an array. On a lent tensor, reading this copies the lent memory once (shared
    /// by every copy of the tensor) and mutating it makes the tensor its own; hot paths read through
    /// `withUnsafeElements` instead, which never copies.
    public var storage: [Element] {
        get { lent?.materialized() ?? owned }
        set { owned = newValue; lent = nil }
        _modify {
            if let l = lent { owned = l.materialized(); lent = nil }
            yield &owned
        }
    }

    /// The elements in place, lent or owned, for the duration of `body`.
    public func withUnsafeElements<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        if let lent { return try lent.withElements(body) }
        return try owned.withUnsafeBufferPointer(body)
    }

    public var rank: Int { shape.count }
    public var count: Int { lent?.count ?? owned.count }

    /// Row-major strides in elements.
    public var strides: [Int] { contiguousStrides(shape) }

    /// The same elements under another shape of equal element count (a view in torch terms).
    public func reshaped(_ newShape: [Int]) -> NDArray {
        precondition(newShape.reduce(1, *) == count, "NDArray: reshape changes the element count")
        var view = self
        view.shape = newShape
        return view
    }
}

/// A caller's memory lent to tensors for one call. The lender ends the loan (`endLoan`) before its
/// memory may go: a tensor that outlived the call (a hook kept it) then reads a private copy taken
/// at that moment, and `endLoan` waits for readers still inside the lent memory. `count` elements,
/// contiguous.
public final class LentElements<Element: BitwiseCopyable & Sendable>: @unchecked Sendable {
    public let count: Int
    // Guarded by `lock` (fields of this object, as GroupOffloader keeps its state, so that a
    // `wait` never spans an inout access).
    private let lock = Locked()
    private var base: UnsafePointer<Element>?
    private var copy: [Element]?
    private var readers = 0

    public init(base: UnsafePointer<Element>, count: Int) {
        self.count = count
        self.base = base
    }

    /// An array of the elements: one copy, taken at the first request and kept.
    func materialized() -> [Element] {
        lock.run {
            if let copy { return copy }
            let taken = Array(UnsafeBufferPointer(start: base!, count: count))
            copy = taken
            return taken
        }
    }

    func withElements<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        let (lentBase, kept): (UnsafePointer<Element>?, [Element]?) = lock.run {
            if copy == nil { readers += 1 }
            return (base, copy)
        }
        if let kept { return try kept.withUnsafeBufferPointer(body) }
        defer { lock.run { readers -= 1; if readers == 0 { lock.broadcast() } } }
        return try body(UnsafeBufferPointer(start: lentBase!, count: count))
    }

    /// The lender's memory is about to go: keep a copy for whoever still holds a tensor over it,
    /// and wait until no reader is inside the lent memory.
    public func endLoan() {
        lock.run {
            if copy == nil, let base { copy = Array(UnsafeBufferPointer(start: base, count: count)) }
            base = nil
            while readers > 0 { lock.wait() }
        }
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
