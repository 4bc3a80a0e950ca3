// The thread pool: every task runs exactly once, nested and concurrent calls complete.
import DiffAttnKernels
import Dispatch
import XCTest

final class KernelParallelTests: XCTestCase {
    private var saved = 1
    override func setUp() { saved = Parallel.threadCount }
    override func tearDown() { Parallel.threadCount = saved }

    func testEveryTaskRunsExactlyOnce() {
        for threads in [1, 2, 3, 5] {
            Parallel.threadCount = threads
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1000)
            defer { hits.deallocate() }
            hits.initialize(repeating: 0)
            Parallel.forEach(1000) { hits[$0] += 1 }
            XCTAssertTrue(hits.allSatisfy { $0 == 1 }, "\(threads) threads")
        }
    }

    func testWorkerIndicesStayBelowThreadCount() {
        Parallel.threadCount = 3
        let workers = UnsafeMutableBufferPointer<Int>.allocate(capacity: 300)
        defer { workers.deallocate() }
        Parallel.forEachWorker(300) { task, worker in workers[task] = worker }
        XCTAssertTrue(workers.allSatisfy { (0..<3).contains($0) })
    }

    func testNestedCallsRunInline() {
        Parallel.threadCount = 2
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 8 * 16)
        defer { hits.deallocate() }
        hits.initialize(repeating: 0)
        Parallel.forEach(8) { outer in Parallel.forEach(16) { inner in hits[outer * 16 + inner] += 1 } }
        XCTAssertTrue(hits.allSatisfy { $0 == 1 })
    }

    func testConcurrentCallersAllComplete() {
        Parallel.threadCount = 2
        let callers = 4, tasks = 500
        let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: callers * tasks)
        defer { sums.deallocate() }
        sums.initialize(repeating: 0)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for _ in 0..<20 { Parallel.forEach(tasks) { sums[caller * tasks + $0] += 1 } }
        }
        XCTAssertTrue(sums.allSatisfy { $0 == 20 })
    }

    func testThreadCountIsClamped() {
        Parallel.threadCount = 0
        XCTAssertEqual(Parallel.threadCount, 1)
        Parallel.threadCount = 100_000
        XCTAssertEqual(Parallel.threadCount, Parallel.maxThreads)
    }

    func testCPUFeaturesAndPathAgree() {
        let f = CPUFeatures.current
        XCTAssertTrue(KernelPath.portable.isSupported)
        if KernelPath.avx512.isSupported { XCTAssertTrue(f.avx512f && f.fma && f.avx2) }
        XCTAssertTrue(KernelPath.best.isSupported)
        XCTAssertEqual(KernelPath.selected, KernelPath.best)
    }
}
