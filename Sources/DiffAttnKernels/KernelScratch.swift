// 64-byte aligned scratch for the kernels, counted so that the benchmark can report the real peak
// extra memory of each algorithm rather than an estimate.
import Glibc
import Synchronization

private let liveBytes = Atomic<Int>(0)
private let peakBytes = Atomic<Int>(0)

public enum KernelScratch {
    /// Largest number of scratch bytes the kernels held at once since the last `resetPeak()`.
    public static var peak: Int { peakBytes.load(ordering: .relaxed) }
    /// Scratch bytes held right now.
    public static var live: Int { liveBytes.load(ordering: .relaxed) }
    public static func resetPeak() { peakBytes.store(liveBytes.load(ordering: .relaxed), ordering: .relaxed) }

    static func allocate(floats: Int) -> UnsafeMutablePointer<Float> {
        guard let p = tryAllocate(floats: floats) else { fatalError("diffattn: out of memory (\(floats) floats)") }
        return p
    }

    /// `allocate`, or nil when the memory is not there (for buffers a kernel can do without).
    static func tryAllocate(floats: Int) -> UnsafeMutablePointer<Float>? {
        let (bytes, overflow) = max(floats, 16).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        var raw: UnsafeMutableRawPointer?
        guard !overflow, posix_memalign(&raw, 64, bytes) == 0, let raw else { return nil }
        let now = liveBytes.add(bytes, ordering: .relaxed).newValue
        var seen = peakBytes.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = peakBytes.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
        return raw.bindMemory(to: Float.self, capacity: bytes / 4)
    }

    static func free(_ p: UnsafeMutablePointer<Float>, floats: Int) {
        liveBytes.subtract(max(floats, 16) * MemoryLayout<Float>.stride, ordering: .relaxed)
        Glibc.free(p)
    }
}

/// One scratch buffer per worker slot, allocated by the worker on first use and freed together.
final class ScratchSlots: @unchecked Sendable {
    let floats: Int
    let slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>

    init(floats: Int) {
        self.floats = floats
        slots = .allocate(capacity: Parallel.maxThreads)
        slots.initialize(repeating: nil, count: Parallel.maxThreads)
    }

    /// Only worker `worker` touches slot `worker`, so no lock is needed.
    func buffer(for worker: Int) -> UnsafeMutablePointer<Float> {
        if let p = slots[worker] { return p }
        let p = KernelScratch.allocate(floats: floats)
        slots[worker] = p
        return p
    }

    deinit {
        for i in 0..<Parallel.maxThreads { if let p = slots[i] { KernelScratch.free(p, floats: floats) } }
        slots.deallocate()
    }
}
