// Context-parallel attention through in-process communicators, one thread per rank: every rank's
// output equals the single-process kernel on the whole sequence, and a bad input on one rank is the
// same error on every rank.
import DiffAttnKernels
import DiffAttnParallel
import Foundation
import XCTest

final class ContextParallelTests: XCTestCase {
    /// Runs `body(comm)` on `n` threads, one per rank; returns each rank's result.
    private func onRanks<T>(_ n: Int, link: LinkModel = LinkModel(), _ body: @escaping (Communicator) throws -> T) -> [Result<T, Error>] {
        let comms = try! makeLocalCommunicators(size: n, link: link)
        let results = UnsafeMutableBufferPointer<Result<T, Error>?>.allocate(capacity: n)
        results.initialize(repeating: nil)
        defer { _ = results.deinitialize(); results.deallocate() }
        let done = DispatchSemaphore(value: 0)
        for i in 0..<n {
            let t = Thread { results[i] = Result { try body(comms[i]) }; done.signal() }
            t.start()
        }
        for _ in 0..<n { done.wait() }
        return results.map { $0! }
    }

    func testRingUlyssesAndUnifiedEqualWholeSequence() {
        let (b, h, n, d, p) = (2, 4, 11, 16, 4)
        let total = n * p
        var rng = SeededNumbers(state: 42)
        let q = (0..<(b * h * total * d)).map { _ in rng.next() * 2 }
        let k = (0..<(b * h * total * d)).map { _ in rng.next() * 2 }
        let v = (0..<(b * h * total * d)).map { _ in rng.next() }
        // Key-padding mask; batch 0 drops every key of rank 0's chunk (wrong if masks did not travel).
        let keep: [UInt8] = (0..<(b * total)).map { i in i < n ? 0 : UInt8((i * 7) % 5 != 0 ? 1 : 0) }
        let full = Strides4.contiguous(heads: h, tokens: total, channels: d)
        var expected = [Float](repeating: 0, count: b * h * total * d)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            keep.withUnsafeBufferPointer { mp in expected.withUnsafeMutableBufferPointer { op in
                scaledDotProductAttention(SDPAProblem(
                    batch: b, queryHeads: h, keyValueHeads: h, queryLength: total, keyLength: total, headDim: d, valueDim: d,
                    query: SDPAOperand(data: qp.baseAddress!, strides: full), key: SDPAOperand(data: kp.baseAddress!, strides: full),
                    value: SDPAOperand(data: vp.baseAddress!, strides: full), output: op.baseAddress!, outputStrides: full,
                    mask: .boolean(mp.baseAddress!, Strides4(batch: total, head: 0, token: 0, channel: 1)), scale: 0.25),
                    algorithm: .flash)
            } } } } }
        for (ring, ulysses) in [(4, 1), (1, 4), (2, 2)] {
            let outputs = onRanks(p) { comm -> [Float] in
                let g = comm.rank
                var out = [Float](repeating: .nan, count: b * h * n * d)
                try q.withUnsafeBufferPointer { qp in try k.withUnsafeBufferPointer { kp in try v.withUnsafeBufferPointer { vp in
                    try keep.withUnsafeBufferPointer { mp in try out.withUnsafeMutableBufferPointer { op in
                        let shard = ShardedAttention(
                            batch: b, heads: h, keyValueHeads: h, queryLength: n, keyLength: n, headDim: d, valueDim: d,
                            query: SDPAOperand(data: qp.baseAddress! + g * n * d, strides: full),
                            key: SDPAOperand(data: kp.baseAddress! + g * n * d, strides: full),
                            value: SDPAOperand(data: vp.baseAddress! + g * n * d, strides: full),
                            keyMask: .boolean(mp.baseAddress! + g * n, batchStride: total, keyStride: 1),
                            output: op.baseAddress!, outputStrides: .contiguous(heads: h, tokens: n, channels: d))
                        try contextParallelAttention(.success(shard), config: ContextParallelConfig(ringDegree: ring, ulyssesDegree: ulysses, scale: 0.25), comm: comm)
                    } }
                } } }
                return out
            }
            for (g, result) in outputs.enumerated() {
                guard case let .success(out) = result else { XCTFail("R=\(ring) U=\(ulysses) rank \(g): \(result)"); continue }
                var worst: Float = 0
                for bb in 0..<b { for hh in 0..<h { for i in 0..<n { for c in 0..<d {
                    let diff = abs(out[((bb * h + hh) * n + i) * d + c] - expected[((bb * h + hh) * total + g * n + i) * d + c])
                    worst = diff.isNaN ? .infinity : max(worst, diff)
                } } } }
                XCTAssertLessThanOrEqual(worst, 1e-5, "R=\(ring) U=\(ulysses) rank \(g)")
            }
        }
    }

    func testOneRankWithAnotherConfigFailsEveryRankAlike() {
        let x = [Float](repeating: 1, count: 2 * 4 * 8)
        let results = onRanks(2) { comm -> Void in
            var out = [Float](repeating: 0, count: x.count)
            try x.withUnsafeBufferPointer { xp in try out.withUnsafeMutableBufferPointer { op in
                let s = Strides4.contiguous(heads: 2, tokens: 4, channels: 8)
                let shard = ShardedAttention(batch: 1, heads: 2, keyValueHeads: 2, queryLength: 4, keyLength: 4, headDim: 8,
                                             valueDim: 8, query: SDPAOperand(data: xp.baseAddress!, strides: s),
                                             key: SDPAOperand(data: xp.baseAddress!, strides: s),
                                             value: SDPAOperand(data: xp.baseAddress!, strides: s),
                                             output: op.baseAddress!, outputStrides: s)
                let config = comm.rank == 0 ? ContextParallelConfig(ringDegree: 2) : ContextParallelConfig(ulyssesDegree: 2)
                try contextParallelAttention(.success(shard), config: config, comm: comm)
            } }
        }
        let messages = results.map { r -> String in
            if case let .failure(e as ParallelError) = r { return e.message }
            return "no ParallelError: \(r)"
        }
        XCTAssertEqual(messages[0], messages[1])
        XCTAssertTrue(messages[0].contains("ranks disagree on the configuration"), messages[0])
    }

    func testInjectedDelayIsCountedAsWaitingWithoutCompute() {
        // 20 ms per message and nothing to overlap it with (a tiny block): the wait shows it.
        let results = onRanks(2, link: LinkModel(latency: 0.02)) { comm -> Double in
            var buffer = [Float](repeating: Float(comm.rank), count: 4)
            try buffer.withUnsafeMutableBufferPointer { p in
                try gatherSequence(.success((StridedTensor(data: p.baseAddress!, shape: [2], strides: [1]), dim: 0,
                                             full: StridedTensor(data: p.baseAddress! , shape: [4], strides: [1]))), comm: comm)
            }
            return comm.secondsWaiting
        }
        for r in results { XCTAssertGreaterThanOrEqual((try? r.get()) ?? 0, 0.02) }
    }
}
