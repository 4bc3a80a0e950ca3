// Before any data moves, every rank all-gathers one small descriptor (its configuration, its shard
// shapes, or the error it already hit) and runs the same checks over all of them, so a bad input on
// any rank becomes the same error on every rank at once — no rank is left waiting in an exchange.

/// What one rank brings to a call: 16 integers and up to 256 bytes of its own error message.
struct CallDescriptor {
    static let integers = 16, messageBytes = 256
    static var bytes: Int { integers * 8 + messageBytes }
    static let magic: Int64 = 0x4441_4350_0001   // "DACP", version 1

    var status: Int64 = 0        // 0, or the ParallelError.Kind raw value of a local error
    var ring: Int64 = 0, ulysses: Int64 = 0
    var shape: [Int64] = Array(repeating: 0, count: 7)   // B, H, Hkv, Nq, Nk, D, Dv
    var mask: Int64 = 0
    var scaleBits: Int64 = -1    // -1: default scale
    var message = ""

    init(error: ParallelError, config: ContextParallelConfig) {
        status = Int64(error.kind.rawValue); message = error.message
        ring = Int64(config.ringDegree); ulysses = Int64(config.ulyssesDegree)
    }

    init(_ s: ShardedAttention, config: ContextParallelConfig) {
        ring = Int64(config.ringDegree); ulysses = Int64(config.ulyssesDegree)
        shape = [s.batch, s.heads, s.keyValueHeads, s.queryLength, s.keyLength, s.headDim, s.valueDim].map(Int64.init)
        mask = s.keyMask.code
        if let scale = config.scale { scaleBits = Int64(scale.bitPattern) }
    }

    func encode(into p: UnsafeMutableRawPointer) {
        let ints = [Self.magic, status, ring, ulysses] + shape + [mask, scaleBits]
        for i in 0..<Self.integers { p.storeBytes(of: i < ints.count ? ints[i] : 0, toByteOffset: i * 8, as: Int64.self) }
        let text = Array(message.utf8.prefix(Self.messageBytes - 1)) + [0]
        let m = p + Self.integers * 8
        for i in 0..<Self.messageBytes { m.storeBytes(of: i < text.count ? text[i] : 0, toByteOffset: i, as: UInt8.self) }
    }

    init?(decoding p: UnsafeRawPointer) {
        let ints = (0..<Self.integers).map { p.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
        guard ints[0] == Self.magic else { return nil }
        status = ints[1]; ring = ints[2]; ulysses = ints[3]
        shape = Array(ints[4..<11]); mask = ints[11]; scaleBits = ints[12]
        let m = (p + Self.integers * 8).assumingMemoryBound(to: UInt8.self)
        var bytes: [UInt8] = []
        for i in 0..<(Self.messageBytes - 1) { if m[i] == 0 { break }; bytes.append(m[i]) }
        message = String(decoding: bytes, as: UTF8.self)
    }

    var shapeText: String {
        let s = shape
        return "query (\(s[0]), \(s[1]), \(s[3]), \(s[5])), key (\(s[0]), \(s[2]), \(s[4]), \(s[5])), value (\(s[0]), \(s[2]), \(s[4]), \(s[6]))"
    }
}

/// The checks every rank runs over all ranks' descriptors; the same list gives the same error.
func validate(_ all: [CallDescriptor], size: Int) -> ParallelError? {
    if let g = all.firstIndex(where: { $0.status != 0 }) {
        let kind = ParallelError.Kind(rawValue: Int32(truncatingIfNeeded: all[g].status)) ?? .invalidArgument
        return ParallelError(kind, "context parallel attention, rank \(g): \(all[g].message)")
    }
    let first = all[0]
    for (g, d) in all.enumerated() where d.ring != first.ring || d.ulysses != first.ulysses {
        return ParallelError(.value, "context parallel attention: ranks disagree on the configuration: rank 0 has "
                             + "ring_degree=\(first.ring), ulysses_degree=\(first.ulysses); rank \(g) has "
                             + "ring_degree=\(d.ring), ulysses_degree=\(d.ulysses)")
    }
    let (r, u) = (first.ring, first.ulysses)
    guard r >= 1, u >= 1 else {
        return ParallelError(.value, "context parallel attention: ring_degree and ulysses_degree must be >= 1, got \(r) and \(u)")
    }
    guard r * u == Int64(size) else {
        return ParallelError(.value, "context parallel attention: ring_degree × ulysses_degree = \(r) × \(u) = \(r * u) "
                             + "must equal the communicator's size \(size)")
    }
    for (g, d) in all.enumerated() where d.shape != first.shape {
        return ParallelError(.shape, "context parallel attention: shard shapes differ across ranks (uneven shards are "
                             + "not supported; every rank holds an equal chunk): rank 0 has \(first.shapeText), rank \(g) has \(d.shapeText)")
    }
    for (g, d) in all.enumerated() where d.mask != first.mask {
        let name = ["no mask", "an additive mask", "a boolean mask"]
        return ParallelError(.value, "context parallel attention: rank 0 passes \(name[Int(first.mask)]) but rank \(g) "
                             + "passes \(name[Int(d.mask)]); every rank must pass one of the same kind or none")
    }
    for (g, d) in all.enumerated() where d.scaleBits != first.scaleBits {
        return ParallelError(.value, "context parallel attention: ranks disagree on the scale (rank 0 vs rank \(g))")
    }
    let heads = first.shape[1], kvHeads = first.shape[2]
    guard heads % u == 0, kvHeads % u == 0 else {
        return ParallelError(.value, "context parallel attention: query heads (\(heads)) and key/value heads (\(kvHeads)) "
                             + "must be divisible by ulysses_degree (\(u)); heads are not padded")
    }
    return nil
}

extension Communicator {
    /// All-gathers this rank's descriptor over the whole communicator and validates the lot.
    func agree(on mine: CallDescriptor) throws {
        let n = CallDescriptor.bytes
        let send = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 8)
        let receive = UnsafeMutableRawPointer.allocate(byteCount: n * size, alignment: 8)
        defer { send.deallocate(); receive.deallocate() }
        mine.encode(into: send)
        try allGather(group: Array(0..<size), send: send, receive: receive, blockBytes: n)
        var all: [CallDescriptor] = []
        for g in 0..<size {
            guard let d = CallDescriptor(decoding: receive + g * n) else {
                throw ParallelError(.io, "context parallel attention: rank \(g) sent an unreadable descriptor (is it running another call?)")
            }
            all.append(d)
        }
        if let error = validate(all, size: size) { throw error }
    }
}
