import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels
import DiffAttnParallel

// Context parallelism at the C boundary: communicator handles, the config struct, and thunks that
// parse tensors and hand them to DiffAttnParallel. A rank whose arguments fail to parse still takes
// part in the call's validation exchange, so the other ranks fail with it instead of waiting.

let communicatorHandles = HandleTable<Communicator>(tag: 0xA6, kindName: "da_communicator", argument: "comm")

/// `guarded` that also translates the parallel layer's errors.
private func parallelGuarded(_ body: () throws -> Void) -> da_status {
    guarded {
        do { try body() } catch let e as ParallelError {
            throw DiffAttnError(DiffAttnError.Kind(rawValue: e.kind.rawValue) ?? .internal, e.message)
        }
    }
}

private func createLocal(_ n: Int32, _ link: LinkModel, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    parallelGuarded {
        guard let out else { throw DiffAttnError.argument("out_array is NULL") }
        guard n >= 1, n <= 4096 else { throw DiffAttnError.argument("n must be in 1...4096, got \(n)") }
        let comms = try makeLocalCommunicators(size: Int(n), link: link)
        for (i, c) in comms.enumerated() { out[i] = communicatorHandles.insert(c) }
    }
}

@_cdecl("da_communicator_create_local")
public func da_communicator_create_local(_ n: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    createLocal(n, LinkModel(), out)
}

@_cdecl("da_communicator_create_local_with_link")
public func da_communicator_create_local_with_link(_ n: Int32, _ latency: Double, _ bandwidth: Double,
                                                   _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    guard latency.isFinite, latency >= 0, bandwidth.isFinite, bandwidth >= 0 else {
        return fail(DiffAttnError.argument("latency_seconds and bandwidth_bytes_per_second must be finite and >= 0, got \(latency) and \(bandwidth)"))
    }
    return createLocal(n, LinkModel(latency: latency, bandwidth: bandwidth), out)
}

@_cdecl("da_communicator_create_mpi")
public func da_communicator_create_mpi(_ fortranComm: Int64, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> da_status {
    parallelGuarded {
        guard let out else { throw DiffAttnError.argument("out is NULL") }
        out.pointee = nil
        out.pointee = communicatorHandles.insert(try makeMPICommunicator(fortranHandle: fortranComm))
    }
}

@_cdecl("da_communicator_destroy")
public func da_communicator_destroy(_ handle: OpaquePointer?) {
    communicatorHandles.remove(handle)
}

@_cdecl("da_communicator_rank")
public func da_communicator_rank(_ handle: OpaquePointer?, _ rank: UnsafeMutablePointer<Int32>?,
                                 _ size: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded {
        let c = try communicatorHandles.lookup(handle)
        guard let rank, let size else { throw DiffAttnError.argument("rank and size must not be NULL") }
        rank.pointee = Int32(c.rank); size.pointee = Int32(c.size)
    }
}

@_cdecl("da_communicator_set_timeout")
public func da_communicator_set_timeout(_ handle: OpaquePointer?, _ seconds: Double) -> da_status {
    guarded {
        let c = try communicatorHandles.lookup(handle)
        guard seconds.isFinite, seconds > 0 else { throw DiffAttnError.argument("seconds must be finite and > 0, got \(seconds)") }
        c.timeout = seconds
    }
}

@_cdecl("da_communicator_counters")
public func da_communicator_counters(_ handle: OpaquePointer?, _ sent: UnsafeMutablePointer<Int64>?,
                                     _ received: UnsafeMutablePointer<Int64>?, _ waiting: UnsafeMutablePointer<Double>?) -> da_status {
    guarded {
        let c = try communicatorHandles.lookup(handle)
        sent?.pointee = Int64(c.bytesSent); received?.pointee = Int64(c.bytesReceived)
        waiting?.pointee = c.secondsWaiting
    }
}

@_cdecl("da_communicator_reset_counters")
public func da_communicator_reset_counters(_ handle: OpaquePointer?) -> da_status {
    guarded { try communicatorHandles.lookup(handle).resetCounters() }
}

@_cdecl("da_context_parallel_config_init")
public func da_context_parallel_config_init(_ config: UnsafeMutablePointer<da_context_parallel_config>?, _ size: Int) -> da_status {
    initStruct(config, size, "config") {
        let defaults = ContextParallelConfig()
        var c = da_context_parallel_config()
        c.ring_degree = Int32(defaults.ringDegree); c.ulysses_degree = Int32(defaults.ulyssesDegree)
        return c
    }
}

@_cdecl("da_context_parallel_shard_range")
public func da_context_parallel_shard_range(_ length: Int64, _ ranks: Int32, _ rank: Int32,
                                            _ begin: UnsafeMutablePointer<Int64>?, _ count: UnsafeMutablePointer<Int64>?) -> da_status {
    parallelGuarded {
        guard let begin, let count else { throw DiffAttnError.argument("begin and count must not be NULL") }
        guard length >= 0, length <= Int64(maxElements) else { throw DiffAttnError.argument("length \(length) is out of range") }
        let r = try shardRange(length: Int(length), ranks: Int(ranks), rank: Int(rank))
        begin.pointee = Int64(r.lowerBound); count.pointee = Int64(r.count)
    }
}

/// Parses one rank's shard; any problem becomes a `.failure` that the collective reports everywhere.
private func parseShard(_ query: UnsafePointer<DLTensor>?, _ key: UnsafePointer<DLTensor>?, _ value: UnsafePointer<DLTensor>?,
                        _ mask: UnsafePointer<DLTensor>?, _ out: UnsafeMutablePointer<DLTensor>?) throws -> ShardedAttention {
    func four(_ p: UnsafePointer<DLTensor>?, _ name: String) throws -> (sizes: [Int], strides: Strides4, base: UnsafeMutableRawPointer?) {
        let g = try geometry(p, name)
        guard g.shape.count == 3 || g.shape.count == 4 else {
            throw DiffAttnError.shape("\(name) must be 4-D (batch, heads, tokens, head_dim) or 3-D, got shape \(g.shape)")
        }
        let sz = g.shape.count == 4 ? g.shape : [1] + g.shape, st = g.shape.count == 4 ? g.strides : [0] + g.strides
        return (sz, Strides4(batch: st[0], head: st[1], token: st[2], channel: st[3]), g.base)
    }
    let q = try four(query, "query"), k = try four(key, "key"), v = try four(value, "value")
    let o = try four(UnsafePointer(out), "out")
    let (b, h, n, d) = (q.sizes[0], q.sizes[1], q.sizes[2], q.sizes[3])
    let (hk, nk, dv) = (k.sizes[1], k.sizes[2], v.sizes[3])
    guard k.sizes[0] == b, k.sizes[3] == d else { throw DiffAttnError.shape("key shape \(k.sizes) does not match query shape \(q.sizes) (batch and head_dim)") }
    guard v.sizes[0] == b, v.sizes[1] == hk, v.sizes[2] == nk else {
        throw DiffAttnError.shape("value shape \(v.sizes) must match key shape \(k.sizes) except in its last axis")
    }
    guard hk > 0, h % hk == 0 else { throw DiffAttnError.shape("query heads (\(h)) must be a multiple of key/value heads (\(hk))") }
    guard o.sizes == [b, h, n, dv] else { throw DiffAttnError.shape("out must have shape \([b, h, n, dv]), got \(o.sizes)") }
    guard n > 0, nk > 0, d > 0 else { throw DiffAttnError.shape("query length, key length and head_dim must be positive, got \(n), \(nk), \(d)") }
    var keyMask = KeyMask.none
    if let mask {
        let mg = try geometry(mask, "key_mask", allowBoolean: true)
        guard mg.shape.count <= 4, let st = broadcastStrides(shape: mg.shape, strides: mg.strides, to: [b, 1, 1, nk]) else {
            throw DiffAttnError.shape("key_mask of shape \(mg.shape) does not broadcast to (batch, 1, 1, key tokens) = \([b, 1, 1, nk]); only key-padding masks travel with their keys")
        }
        if let base = mg.base {
            keyMask = elementKind(mask.pointee.dtype) == .float32
                ? .additive(UnsafePointer(base.assumingMemoryBound(to: Float.self)), batchStride: st[0], keyStride: st[3])
                : .boolean(UnsafePointer(base.assumingMemoryBound(to: UInt8.self)), batchStride: st[0], keyStride: st[3])
        }
    }
    func operand(_ x: (sizes: [Int], strides: Strides4, base: UnsafeMutableRawPointer?)) -> SDPAOperand {
        SDPAOperand(data: UnsafePointer(x.base!.assumingMemoryBound(to: Float.self)), strides: x.strides)
    }
    guard o.base != nil || b * h * n * dv == 0 else { throw DiffAttnError.argument("out.data is NULL") }
    return ShardedAttention(batch: b, heads: h, keyValueHeads: hk, queryLength: n, keyLength: nk, headDim: d, valueDim: dv,
                            query: operand(q), key: operand(k), value: operand(v), keyMask: keyMask,
                            output: o.base!.assumingMemoryBound(to: Float.self), outputStrides: o.strides)
}

private func asParallel(_ e: Error) -> ParallelError {
    if let e = e as? DiffAttnError { return ParallelError(ParallelError.Kind(rawValue: e.kind.rawValue) ?? .invalidArgument, e.message) }
    if let e = e as? ParallelError { return e }
    return ParallelError(.invalidArgument, "\(e)")
}

@_cdecl("da_context_parallel_attention")
public func da_context_parallel_attention(_ handle: OpaquePointer?, _ config: UnsafePointer<da_context_parallel_config>?,
                                          _ query: UnsafePointer<DLTensor>?, _ key: UnsafePointer<DLTensor>?,
                                          _ value: UnsafePointer<DLTensor>?, _ keyMask: UnsafePointer<DLTensor>?,
                                          _ out: UnsafeMutablePointer<DLTensor>?) -> da_status {
    parallelGuarded {
        let comm = try communicatorHandles.lookup(handle)
        var cp = ContextParallelConfig()
        let shard: Result<ShardedAttention, ParallelError>
        do {
            let c = try readStruct(config, "config")
            cp = ContextParallelConfig(ringDegree: Int(c.ring_degree), ulyssesDegree: Int(c.ulysses_degree))
            if c.has_scale != 0 {
                guard c.scale.isFinite else { throw DiffAttnError.argument("config->scale must be finite, got \(c.scale)") }
                cp.scale = Float(c.scale)
            }
            shard = .success(try parseShard(query, key, value, keyMask, out))
        } catch {
            shard = .failure(asParallel(error))
        }
        try contextParallelAttention(shard, config: cp, comm: comm)
    }
}

@_cdecl("da_context_parallel_gather")
public func da_context_parallel_gather(_ handle: OpaquePointer?, _ local: UnsafePointer<DLTensor>?, _ dim: Int32,
                                       _ full: UnsafeMutablePointer<DLTensor>?) -> da_status {
    parallelGuarded {
        let comm = try communicatorHandles.lookup(handle)
        let input: Result<(StridedTensor, dim: Int, full: StridedTensor), ParallelError>
        do {
            let l = try geometry(local, "local"), f = try geometry(UnsafePointer(full), "full")
            guard dim >= 0, Int(dim) < l.shape.count else { throw DiffAttnError.argument("dim \(dim) is out of range for local of shape \(l.shape)") }
            var expected = l.shape
            expected[Int(dim)] *= comm.size
            guard f.shape == expected else { throw DiffAttnError.shape("full must have shape \(expected), got \(f.shape)") }
            input = .success((StridedTensor(data: l.base?.assumingMemoryBound(to: Float.self), shape: l.shape, strides: l.strides),
                              Int(dim), StridedTensor(data: f.base?.assumingMemoryBound(to: Float.self), shape: f.shape, strides: f.strides)))
        } catch {
            input = .failure(asParallel(error))
        }
        try gatherSequence(input, comm: comm)
    }
}
