import Glibc
/// What went wrong, in the categories the C API reports as `da_status` codes. The message names
/// the argument and what was expected; where diffusers raises, it says what diffusers says.
public struct DiffAttnError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Int32, Sendable {
        case invalidArgument = 1, invalidHandle = 2, shape = 3, dtype = 4, value = 5, type = 6
        case unsupported = 7, notFound = 8, state = 9, outOfMemory = 10, io = 11, `internal` = 12
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }

    public static func shape(_ m: String) -> DiffAttnError { .init(.shape, m) }
    public static func value(_ m: String) -> DiffAttnError { .init(.value, m) }
    public static func type(_ m: String) -> DiffAttnError { .init(.type, m) }
    public static func dtype(_ m: String) -> DiffAttnError { .init(.dtype, m) }
    public static func argument(_ m: String) -> DiffAttnError { .init(.invalidArgument, m) }
    public static func state(_ m: String) -> DiffAttnError { .init(.state, m) }
}

/// Formats a shape as torch prints it: `(2, 4, 7)`.
package func describe(_ shape: [Int]) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
}

/// The most elements one intermediate tensor may hold (8 GiB of float32): a larger request is an
/// error, not an allocation that fails and traps.
public let maxWorkingElements = 1 << 31

/// The product of `dims`, or an out-of-memory error naming `what` when it overflows or exceeds
/// `maxWorkingElements`.
public func checkedElementCount(_ dims: [Int], _ what: String) throws -> Int {
    var n = 1
    for d in dims {
        let (p, overflow) = n.multipliedReportingOverflow(by: max(d, 0))
        guard !overflow, p <= maxWorkingElements else {
            throw DiffAttnError(.outOfMemory, "\(what) would need shape \(describe(dims)), more than \(maxWorkingElements) elements")
        }
        n = p
    }
    return n
}

/// Checks that `bytes` (a size the caller controls) can be allocated now, by allocating and freeing
/// them: Swift arrays trap when an allocation fails, so a size that would fail is refused here with
/// DA_ERR_OUT_OF_MEMORY naming `what` and the size, and the module stays usable. Under overcommit a
/// large malloc succeeds without touching memory; what it catches is an address-space limit
/// (`ulimit -v`, RLIMIT_AS, a 32-bit-sized budget) and sizes no allocator can satisfy.
public func reserveWorkingMemory(_ bytes: Int, _ what: @autoclosure () -> String) throws {
    // Below 16 MiB the probe (an mmap/munmap pair, a few microseconds on every forward) costs more
    // than it protects: a process that cannot map that little is failing everywhere already.
    guard bytes >= 16 << 20 else { return }
    // mmap as malloc does for large blocks (a malloc/free pair with no use is removed by the
    // optimiser); a private writable mapping is charged against RLIMIT_AS and overcommit alike.
    let probe = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let probe, probe != MAP_FAILED else {
        throw DiffAttnError(.outOfMemory, "\(what()) needs \(bytes) bytes (\(bytes >> 20) MiB), which could not be allocated")
    }
    munmap(probe, bytes)
}
