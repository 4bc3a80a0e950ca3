import Glibc

/// A model's weights, counted before any is allocated: the model tree is first built in a dry
/// run whose modules count their weights instead of creating them, so a config that asks for more
/// weights than the machine has memory is refused with a message instead of ending the host
/// process on a failed (or overcommitted) allocation.
enum WeightBudget {
    private struct Slot { var remainingBytes: Int; var dryRun: Bool }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The ceiling for one model's weights: physical memory, or `DIFFATTN_MAX_WEIGHT_BYTES` when a
    /// host (or a fuzzer) wants a smaller one.
    static var physicalBytes: Int {
        if let text = getenv("DIFFATTN_MAX_WEIGHT_BYTES").map({ String(cString: $0) }), let n = Int(text), n > 0 { return n }
        return Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Builds twice: a dry run that only counts (and throws past `bytes`), then the real build.
    static func build<R>(within bytes: Int, _ make: () throws -> R) throws -> R {
        try withSlot(Slot(remainingBytes: bytes, dryRun: true)) { _ = try make() }
        return try make()
    }

    /// Whether modules being created now should only count their weights.
    static var isDryRun: Bool { current?.pointee.dryRun ?? false }

    /// Takes `weights` float32 weights from the current dry run's budget (no-op otherwise).
    static func spend(weights: Int) throws {
        guard let slot = current, slot.pointee.dryRun else { return }
        let (bytes, overflow) = weights.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        guard !overflow, bytes <= slot.pointee.remainingBytes else {
            throw DiffAttnError(.outOfMemory, "this model's weights would need more than \(physicalBytes >> 20) MiB (the machine's memory, or DIFFATTN_MAX_WEIGHT_BYTES); its config is too large to build here")
        }
        slot.pointee.remainingBytes -= bytes
    }

    private static var current: UnsafeMutablePointer<Slot>? {
        pthread_getspecific(key)?.bindMemory(to: Slot.self, capacity: 1)
    }

    private static func withSlot(_ value: Slot, _ body: () throws -> Void) rethrows {
        let previous = pthread_getspecific(key)
        let slot = UnsafeMutablePointer<Slot>.allocate(capacity: 1)
        slot.initialize(to: value)
        pthread_setspecific(key, slot)
        defer { pthread_setspecific(key, previous); slot.deallocate() }
        try body()
    }
}
