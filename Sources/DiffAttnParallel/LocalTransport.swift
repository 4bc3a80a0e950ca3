// In-process ranks: n communicators over one shared fabric, each used from its own thread. A send
// copies its bytes into the receiver's mailbox at once (so posting never blocks); a receive waits for
// the matching message. An optional link model delays each message's arrival, to measure how much
// of the ring's communication hides behind its compute (docs/parallel.md).
import DiffAttnKernels
import Glibc

/// Injected link delay of the in-process transport: each rank's outgoing link carries one message
/// at a time, taking `latency + bytes / bandwidth` seconds (bandwidth 0 = infinite).
public struct LinkModel: Sendable {
    public var latency: Double
    public var bandwidth: Double
    public init(latency: Double = 0, bandwidth: Double = 0) { self.latency = latency; self.bandwidth = bandwidth }
    var isInstant: Bool { latency <= 0 && bandwidth <= 0 }
}

private final class Message {
    let source: Int, tag: Int, bytes: Int
    let data: UnsafeMutableRawPointer
    let arrival: Double
    init(source: Int, tag: Int, bytes: Int, data: UnsafeMutableRawPointer, arrival: Double) {
        self.source = source; self.tag = tag; self.bytes = bytes; self.data = data; self.arrival = arrival
    }
    deinit { free(data) }
}

private final class Mailbox: @unchecked Sendable {
    let lock = Locked()               // guards the two fields
    var messages: [Message] = []
    var linkFreeAt = 0.0              // this rank's outgoing link (monotonic seconds)
}

private final class Fabric: @unchecked Sendable {
    let boxes: [Mailbox]
    let link: LinkModel
    init(size: Int, link: LinkModel) { boxes = (0..<size).map { _ in Mailbox() }; self.link = link }
}

/// `size` communicators of one process; element i is rank i.
public func makeLocalCommunicators(size: Int, link: LinkModel = LinkModel()) throws -> [Communicator] {
    guard size >= 1, size <= 4096 else { throw ParallelError(.invalidArgument, "n must be in 1...4096, got \(size)") }
    let fabric = Fabric(size: size, link: link)
    return (0..<size).map { Communicator(LocalTransport(fabric: fabric, rank: $0)) }
}

final class LocalTransport: Transport, @unchecked Sendable {
    private let fabric: Fabric
    let rank: Int
    var size: Int { fabric.boxes.count }

    fileprivate init(fabric: Fabric, rank: Int) { self.fabric = fabric; self.rank = rank }

    func post(sends: [Transfer], receives: [Transfer], tag: Int) throws -> PendingExchange {
        let now = monotonicSeconds()
        var copies: [(Int, Message)] = []
        for s in sends {
            guard let data = malloc(max(s.bytes, 1)) else {
                throw ParallelError(.outOfMemory, "in-process send of \(s.bytes) bytes could not be buffered")
            }
            data.copyMemory(from: s.buffer, byteCount: s.bytes)
            var arrival = now
            if !fabric.link.isInstant {
                let own = fabric.boxes[rank]
                arrival = own.lock.run {
                    let start = max(now, own.linkFreeAt)
                    let duration = fabric.link.latency + (fabric.link.bandwidth > 0 ? Double(s.bytes) / fabric.link.bandwidth : 0)
                    own.linkFreeAt = start + duration
                    return own.linkFreeAt
                }
            }
            copies.append((s.peer, Message(source: rank, tag: tag, bytes: s.bytes, data: data, arrival: arrival)))
        }
        for (peer, message) in copies {
            let box = fabric.boxes[peer]
            box.lock.run { box.messages.append(message) }
            box.lock.broadcast()
        }
        return LocalExchange(box: fabric.boxes[rank], receives: receives, tag: tag, rank: rank)
    }
}

private final class LocalExchange: PendingExchange {
    let box: Mailbox, receives: [Transfer], tag: Int, rank: Int
    init(box: Mailbox, receives: [Transfer], tag: Int, rank: Int) {
        self.box = box; self.receives = receives; self.tag = tag; self.rank = rank
    }

    func wait(timeout: Double) throws {
        let deadline = Locked<Void>.realtimeSeconds() + timeout
        for r in receives {
            let message: Message? = box.lock.run {
                while true {
                    if let i = box.messages.firstIndex(where: { $0.source == r.peer && $0.tag == tag }) {
                        return box.messages.remove(at: i)
                    }
                    if Locked<Void>.realtimeSeconds() >= deadline { return nil }
                    box.lock.wait(until: deadline)
                }
            }
            guard let message else {
                throw ParallelError(.io, "rank \(rank): no message from rank \(r.peer) within \(timeout) s (has every rank made the same call?)")
            }
            guard message.bytes == r.bytes else {
                throw ParallelError(.io, "rank \(rank): rank \(r.peer) sent \(message.bytes) bytes where \(r.bytes) were expected")
            }
            sleep(until: message.arrival)
            r.buffer.copyMemory(from: message.data, byteCount: r.bytes)
        }
    }
}
