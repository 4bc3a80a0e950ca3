// The communicator: an opaque group of ranks and the one primitive the schemes need — post a batch
// of point-to-point sends and receives, then wait for all of them (MPI_Isend/MPI_Irecv/MPI_Waitall).
// All-to-all, all-gather and the ring's neighbour exchange are built on it here, once, so a transport
// (in-process threads, the MPI plugin) implements only posting and waiting.
import Synchronization

/// One message of an exchange: `bytes` from (send) or into (receive) `buffer`, with rank `peer`.
public struct Transfer {
    public var peer: Int
    public var bytes: Int
    public var buffer: UnsafeMutableRawPointer
    public init(peer: Int, bytes: Int, buffer: UnsafeMutableRawPointer) {
        self.peer = peer; self.bytes = bytes; self.buffer = buffer
    }
}

/// A posted exchange; `wait` completes every transfer (send buffers are then free to reuse).
public protocol PendingExchange: AnyObject {
    func wait(timeout: Double) throws
}

/// How messages move. Messages between one pair of ranks with one tag arrive in posting order.
public protocol Transport: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    func post(sends: [Transfer], receives: [Transfer], tag: Int) throws -> PendingExchange
}

/// A transport plus what every call shares: the tag sequence (every rank makes the same calls in the
/// same order, so the n-th call uses the same tag everywhere), byte counters and the timeout that
/// covers a rank that never calls. Use one communicator from one thread at a time.
public final class Communicator: @unchecked Sendable {
    public let transport: Transport
    public var rank: Int { transport.rank }
    public var size: Int { transport.size }
    /// Seconds a wait may block before the call fails (a peer that never calls).
    public var timeout: Double = 120
    private let sent = Atomic<Int>(0), received = Atomic<Int>(0), waitedNanoseconds = Atomic<Int>(0)
    private var tagCounter = 0

    public init(_ transport: Transport) { self.transport = transport }

    /// Bytes this rank has sent to and received from other ranks (self-copies not counted).
    public var bytesSent: Int { sent.load(ordering: .relaxed) }
    public var bytesReceived: Int { received.load(ordering: .relaxed) }
    /// Total time spent blocked in waits: the communication not hidden behind compute.
    public var secondsWaiting: Double { Double(waitedNanoseconds.load(ordering: .relaxed)) * 1e-9 }

    public func resetCounters() {
        sent.store(0, ordering: .relaxed); received.store(0, ordering: .relaxed)
        waitedNanoseconds.store(0, ordering: .relaxed)
    }

    /// The next message tag; MPI guarantees tags up to 32767.
    func nextTag() -> Int {
        tagCounter = (tagCounter + 1) % 32000
        return tagCounter + 1
    }

    func post(sends: [Transfer], receives: [Transfer], tag: Int) throws -> PendingExchange {
        for t in sends + receives {
            guard t.peer >= 0, t.peer < size, t.peer != rank, t.bytes >= 0 else {
                throw ParallelError(.invalidArgument, "transfer with rank \(t.peer) of \(t.bytes) bytes on rank \(rank) of \(size)")
            }
        }
        let exchange = try transport.post(sends: sends, receives: receives, tag: tag)
        sent.add(sends.reduce(0) { $0 + $1.bytes }, ordering: .relaxed)
        received.add(receives.reduce(0) { $0 + $1.bytes }, ordering: .relaxed)
        return exchange
    }

    func wait(_ exchange: PendingExchange) throws {
        let start = monotonicSeconds()
        defer { waitedNanoseconds.add(Int((monotonicSeconds() - start) * 1e9), ordering: .relaxed) }
        try exchange.wait(timeout: timeout)
    }

    /// Every rank of `group` (world ranks, this rank among them) sends `blockBytes` from `send` and
    /// receives each member's block into `receive` at index (position in group) · blockBytes.
    func allGather(group: [Int], send: UnsafeRawPointer, receive: UnsafeMutableRawPointer, blockBytes: Int) throws {
        guard let me = group.firstIndex(of: rank) else { preconditionFailure("rank not in its group") }
        (receive + me * blockBytes).copyMemory(from: send, byteCount: blockBytes)
        let tag = nextTag()
        var sends: [Transfer] = [], receives: [Transfer] = []
        for (i, peer) in group.enumerated() where peer != rank {
            sends.append(Transfer(peer: peer, bytes: blockBytes, buffer: UnsafeMutableRawPointer(mutating: send)))
            receives.append(Transfer(peer: peer, bytes: blockBytes, buffer: receive + i * blockBytes))
        }
        try wait(post(sends: sends, receives: receives, tag: tag))
    }

    /// Block i of `send` goes to group[i]; the block from group[i] lands at block i of `receive`.
    func allToAll(group: [Int], send: UnsafeRawPointer, receive: UnsafeMutableRawPointer, blockBytes: Int) throws {
        guard let me = group.firstIndex(of: rank) else { preconditionFailure("rank not in its group") }
        (receive + me * blockBytes).copyMemory(from: send + me * blockBytes, byteCount: blockBytes)
        let tag = nextTag()
        var sends: [Transfer] = [], receives: [Transfer] = []
        for (i, peer) in group.enumerated() where peer != rank {
            sends.append(Transfer(peer: peer, bytes: blockBytes, buffer: UnsafeMutableRawPointer(mutating: send + i * blockBytes)))
            receives.append(Transfer(peer: peer, bytes: blockBytes, buffer: receive + i * blockBytes))
        }
        try wait(post(sends: sends, receives: receives, tag: tag))
    }
}
