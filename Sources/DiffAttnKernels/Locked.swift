import Glibc

/// The library's one lock: a value behind a pthread mutex, with a condition variable for the few
/// owners that wait (group offloading's prefetch thread). The mutex and condition live on the heap,
/// never at the address of a stored property, which Swift may move or access through a temporary.
/// Used instead of `Synchronization.Mutex` because ThreadSanitizer sees pthread locks (and not
/// Mutex's raw futex calls), so the thread tests under `make sanitize-thread` check real ordering
/// rather than report false races.
public final class Locked<State>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Last: an empty `State` (Locked<Void>) has no storage, and declared first it would share its
    /// address with `mutex`, so ThreadSanitizer took `withLock`'s inout access to it for a write of
    /// `mutex` racing with other threads' unlocked read of the pointer (a false "access race").
    private var state: State

    public init(_ initial: State) {
        state = initial
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Inside `withLock` only: releases the lock until `broadcast`, then holds it again.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Inside `withLock` only: as `wait`, but returns at `deadline` (seconds on the realtime clock,
    /// `Locked.realtimeSeconds()`) at the latest; the caller re-checks its condition and the time.
    /// For waits that must end (context parallelism's receive timeout).
    public func wait(until deadline: Double) {
        var ts = timespec(tv_sec: Int(deadline), tv_nsec: Int((deadline - Double(Int(deadline))) * 1e9))
        pthread_cond_timedwait(condition, mutex, &ts)
    }

    /// Seconds on the clock `wait(until:)` uses.
    public static func realtimeSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Wakes every `wait`er (they re-check their condition under the lock).
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// Inside `withLock` only: runs `body` with the lock released (a slow read), then holds it again.
    public func unlocked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_unlock(mutex)
        defer { pthread_mutex_lock(mutex) }
        return try body()
    }
}

extension Locked where State == Void {
    /// A lock guarding state kept by its owner (the fields of the object holding it).
    public convenience init() { self.init(()) }

    public func run<R>(_ body: () throws -> R) rethrows -> R { try withLock { _ in try body() } }
}
