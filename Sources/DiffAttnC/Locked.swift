import Glibc

/// A value behind a pthread mutex. Used instead of `Synchronization.Mutex` at the C boundary
/// because ThreadSanitizer sees pthread locks (and not Mutex's raw futex calls), so the thread
/// tests under `make sanitize-thread` check real ordering rather than report false races.
final class Locked<State>: @unchecked Sendable {
    private var state: State
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init(_ initial: State) {
        state = initial
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
