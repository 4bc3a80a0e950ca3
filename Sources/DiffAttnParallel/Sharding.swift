// Sharding a sequence across ranks and gathering it back (diffusers' equipartition sharder and
// gather hook, hooks/context_parallel.py: EquipartitionSharder), for hosts that drive their own blocks.
import Glibc

/// Chunk `rank` of `length` tokens split equally over `ranks`.
public func shardRange(length: Int, ranks: Int, rank: Int) throws -> Range<Int> {
    guard ranks >= 1, rank >= 0, rank < ranks, length >= 0 else {
        throw ParallelError(.invalidArgument, "rank \(rank) of \(ranks) ranks is out of range")
    }
    guard length % ranks == 0 else {
        throw ParallelError(.shape, "sequence length \(length) is not divisible by the \(ranks) ranks "
                            + "(uneven shards are not supported)")
    }
    let n = length / ranks
    return (rank * n)..<((rank + 1) * n)
}

/// A strided float32 tensor of up to 8 axes.
public struct StridedTensor {
    public var data: UnsafeMutablePointer<Float>?
    public var shape: [Int], strides: [Int]
    public init(data: UnsafeMutablePointer<Float>?, shape: [Int], strides: [Int]) {
        self.data = data; self.shape = shape; self.strides = strides
    }

    /// Visits every element offset in row-major order.
    func forEachOffset(_ body: (Int) -> Void) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count), offset = 0
        for _ in 0..<count {
            body(offset)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1; offset += strides[axis]
                if index[axis] < shape[axis] { break }
                offset -= strides[axis] * shape[axis]; index[axis] = 0; axis -= 1
            }
        }
    }
}

/// Gathers every rank's `local` along `dim` into `full` in rank order. Collective; every rank's
/// shape (or its local error, `.failure`) is exchanged first so all ranks fail alike.
public func gatherSequence(_ local: Result<(StridedTensor, dim: Int, full: StridedTensor), ParallelError>,
                           comm: Communicator) throws {
    let slots = 12, bytes = slots * 8
    var mine = [Int64](repeating: 0, count: slots)
    if case let .failure(e) = local { mine[0] = Int64(e.kind.rawValue) }
    if case let .success((t, dim, _)) = local {
        mine[1] = Int64(t.shape.count); mine[2] = Int64(dim)
        for (i, s) in t.shape.enumerated() { mine[3 + i] = Int64(s) }
    }
    var all = [Int64](repeating: 0, count: slots * comm.size)
    try mine.withUnsafeBytes { m in
        try all.withUnsafeMutableBytes { a in
            try comm.allGather(group: Array(0..<comm.size), send: m.baseAddress!, receive: a.baseAddress!, blockBytes: bytes)
        }
    }
    for g in 0..<comm.size where all[g * slots] != 0 {
        if case let .failure(e) = local, g == comm.rank { throw ParallelError(e.kind, "gather, rank \(g): \(e.message)") }
        let kind = ParallelError.Kind(rawValue: Int32(truncatingIfNeeded: all[g * slots])) ?? .invalidArgument
        throw ParallelError(kind, "gather: rank \(g) passed bad arguments")
    }
    for g in 1..<max(comm.size, 1) where Array(all[(g * slots)..<(g * slots + slots)]) != Array(all[0..<slots]) {
        throw ParallelError(.shape, "gather: rank \(g)'s local shape or axis differs from rank 0's")
    }
    guard case let .success((t, dim, full)) = local else { return }
    let count = t.shape.reduce(1, *)
    let packed = try FloatBuffer(count: count, what: "the gather's send buffer")
    let received = try FloatBuffer(count: count * comm.size, what: "the gather's receive buffer")
    var i = 0
    if let data = t.data { t.forEachOffset { packed.pointer[i] = data[$0]; i += 1 } }
    try comm.allGather(group: Array(0..<comm.size), send: packed.pointer, receive: received.pointer, blockBytes: count * 4)
    guard let out = full.data else { return }
    for g in 0..<comm.size {
        var view = full
        view.shape[dim] = t.shape[dim]
        view.data = out + g * t.shape[dim] * full.strides[dim]
        var j = 0
        let source = received.pointer + g * count
        view.forEachOffset { out in view.data![out] = source[j]; j += 1 }
    }
}
