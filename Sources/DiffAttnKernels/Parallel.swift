// A small persistent thread pool (ggml style): a job is split into more tasks than threads and
// the tasks are claimed through an atomic counter, so no thread waits for the slowest one.
// The caller runs tasks too, and waits only for helpers that joined the job: a helper the OS has
// not scheduled yet (a busy machine) finds the job closed when it wakes and skips it, so a
// descheduled thread never holds the caller back (issue 15: with one core taken by another
// process, a fixed share per worker, or waiting for every worker, ran at the slowest one's pace). One job at a time: a call made while another job is running (from
// another host thread, or nested inside a task) runs its tasks inline on the calling thread, so
// neither case can deadlock.
import Glibc
import Synchronization

public enum Parallel {
    /// Upper bound on `threadCount`.
    public static let maxThreads = 256

    /// Threads a job uses, the caller included. Starts from `DIFFATTN_NUM_THREADS` when it holds a
    /// positive integer, else the number of online CPUs. Values are clamped to 1...maxThreads.
    public static var threadCount: Int {
        get { configuredThreads.load(ordering: .relaxed) }
        set { configuredThreads.store(min(max(newValue, 1), maxThreads), ordering: .relaxed) }
    }

    /// Runs `body(task)` for every task in `0..<count`, spread over the pool; returns when all are done.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        forEachWorker(count) { task, _ in body(task) }
    }

    /// Like `forEach`, also passing the index (< maxThreads) of the worker running the task, for
    /// per-worker scratch. A worker runs its tasks one after another.
    public static func forEachWorker(_ count: Int, _ body: (_ task: Int, _ worker: Int) -> Void) {
        guard count > 0 else { return }
        let threads = threadCount
        if threads == 1 || count == 1 || pthread_mutex_trylock(pool.submitLock) != 0 {
            for task in 0..<count { body(task, 0) }
            return
        }
        defer { pthread_mutex_unlock(pool.submitLock) }
        withoutActuallyEscaping(body) { escapable in
            var job: (Int, Int) -> Void = escapable
            withUnsafeMutablePointer(to: &job) { pool.run(UnsafeRawPointer($0), count: count, helpers: min(threads, count) - 1) }
        }
    }
}

private let configuredThreads = Atomic<Int>(initialThreadCount())

private func initialThreadCount() -> Int {
    if let text = getenv("DIFFATTN_NUM_THREADS"), let n = Int(String(cString: text)), n > 0 {
        return min(n, Parallel.maxThreads)
    }
    return min(max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1), Parallel.maxThreads)
}

private let pool = WorkerPool()

private final class WorkerPool: @unchecked Sendable {
    /// Held by the one caller whose job is running.
    let submitLock = makeMutex()
    /// Guards `generation`, `job`, `count`, `helpers` and the two conditions.
    let lock = makeMutex()
    let wake = makeCondition(), done = makeCondition()
    var generation = 0
    var job: UnsafeRawPointer?
    var count = 0, helpers = 0
    var threads = 0                  // only touched with submitLock held
    let nextTask = Atomic<Int>(0)
    /// The running job's generation, whether it is closed, and how many helpers are inside it.
    let joinState = Atomic<Int>(0)
    let published = Atomic<Int>(0)   // generation, readable without the lock while spinning

    init() {
        // A forked child has only the thread that called fork(): without this, its first job
        // would wait forever for workers that exist only in the parent.
        pthread_atfork(nil, nil, { pool.restartAfterFork() })
    }

    /// In a forked child: no workers yet (the next job spawns them), locks and conditions fresh
    /// (a vanished thread may have held them).
    func restartAfterFork() {
        pthread_mutex_init(submitLock, nil)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
        threads = 0
        job = nil
    }

    func run(_ job: UnsafeRawPointer, count: Int, helpers: Int) {
        while threads < helpers { spawn(index: threads + 1); threads += 1 }
        pthread_mutex_lock(lock)
        self.job = job; self.count = count; self.helpers = helpers
        nextTask.store(0, ordering: .relaxed)
        generation += 1
        joinState.store(generation << JoinState.generationShift, ordering: .relaxed)
        published.store(generation, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(lock)

        work(job, count: count, worker: 0)
        // Every task is claimed: close the job to latecomers, then wait for the helpers inside it
        // (each is finishing the task it holds). Tasks are usually long; spin briefly, then sleep.
        _ = joinState.bitwiseOr(JoinState.closed, ordering: .acquiringAndReleasing)
        var spins = 0
        while joinState.load(ordering: .acquiring) & JoinState.activeMask != 0 && spins < 20_000 { spins += 1 }
        pthread_mutex_lock(lock)
        while joinState.load(ordering: .acquiring) & JoinState.activeMask != 0 { pthread_cond_wait(done, lock) }
        self.job = nil
        pthread_mutex_unlock(lock)
    }

    func work(_ job: UnsafeRawPointer, count: Int, worker: Int) {
        let body = job.assumingMemoryBound(to: ((Int, Int) -> Void).self)
        while true {
            let task = nextTask.add(1, ordering: .relaxed).oldValue
            if task >= count { break }
            body.pointee(task, worker)
        }
    }

    /// Enters job `generation` unless it was closed or replaced meanwhile.
    func join(generation: Int) -> Bool {
        var state = joinState.load(ordering: .relaxed)
        while state >> JoinState.generationShift == generation && state & JoinState.closed == 0 {
            let (exchanged, current) = joinState.compareExchange(expected: state, desired: state + 1,
                                                                 ordering: .acquiringAndReleasing)
            if exchanged { return true }
            state = current
        }
        return false
    }

    func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while published.load(ordering: .acquiring) == seen && spins < 20_000 { spins += 1 }
            pthread_mutex_lock(lock)
            while generation == seen { pthread_cond_wait(wake, lock) }
            seen = generation
            // Read under the lock: the next `run` rewrites these.
            let job = self.job, count = self.count, helpers = self.helpers, joins = index <= helpers
            pthread_mutex_unlock(lock)
            guard joins, let job, join(generation: seen) else { continue }
            work(job, count: count, worker: index)
            let left = joinState.subtract(1, ordering: .acquiringAndReleasing).newValue
            if left & JoinState.closed != 0 && left & JoinState.activeMask == 0 {
                pthread_mutex_lock(lock)
                pthread_cond_signal(done)
                pthread_mutex_unlock(lock)
            }
        }
    }

    private func spawn(index: Int) {
        let context = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        context.initialize(to: index)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, 1 << 20)
        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { raw in
            let context = raw!.assumingMemoryBound(to: Int.self)
            let index = context.pointee
            context.deallocate()
            pool.workerLoop(index: index)
            return nil
        }, context)
        pthread_attr_destroy(&attributes)
        precondition(status == 0, "diffattn: cannot start a worker thread")
        pthread_detach(thread)
    }
}

/// Bit layout of `WorkerPool.joinState`: generation above bit 20, a closed flag, an active count.
private enum JoinState {
    static let generationShift = 20
    static let closed = 1 << 19
    static let activeMask = (1 << 19) - 1
}

private func makeMutex() -> UnsafeMutablePointer<pthread_mutex_t> {
    let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(m, nil)
    return m
}

private func makeCondition() -> UnsafeMutablePointer<pthread_cond_t> {
    let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    pthread_cond_init(c, nil)
    return c
}
