import Glibc

/// A model's weights, counted before any is allocated: the model tree is first built in a dry
/// run whose modules count their weights instead of creating them, so a config that asks for more
/// weights than the machine has memory is refused with a message instead of ending the host
/// process on a failed (or overcommitted) allocation. A module is built in the dry run when it is
/// given a budget at construction (`Attention.init(_:budget:)`).
public final class WeightBudget: @unchecked Sendable {
    private let ceilingBytes: Int
    private var remainingBytes: Int

    /// A budget of `bytes` (one build's; not shared between threads).
    public init(bytes: Int) {
        ceilingBytes = bytes
        remainingBytes = bytes
    }

    /// The ceiling for one model's weights: physical memory, or `DIFFATTN_MAX_WEIGHT_BYTES` when a
    /// host (or a fuzzer) wants a smaller one.
    public static var physicalBytes: Int {
        if let text = getenv("DIFFATTN_MAX_WEIGHT_BYTES").map({ String(cString: $0) }), let n = Int(text), n > 0 { return n }
        return Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Takes `weights` float32 weights from the budget.
    func spend(weights: Int) throws {
        let (bytes, overflow) = weights.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        guard !overflow, bytes <= remainingBytes else {
            throw DiffAttnError(.outOfMemory, "this model's weights would need more than \(ceilingBytes >> 20) MiB (the machine's memory, or DIFFATTN_MAX_WEIGHT_BYTES); its config is too large to build here")
        }
        remainingBytes -= bytes
    }
}
