import Glibc

/// What went wrong in a context-parallel call. `Kind` raw values are the C API's `da_status`
/// codes, so the boundary passes them through unchanged.
public struct ParallelError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Int32, Sendable {
        case invalidArgument = 1, shape = 3, dtype = 4, value = 5, unsupported = 7, outOfMemory = 10
        /// The transport failed or a peer never answered within the timeout.
        case io = 11
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// A float32 buffer the library owns; allocation failure is an error, not a trap.
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int, what: String) throws {
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow, bytes <= 1 << 40, let raw = malloc(bytes) else {
            throw ParallelError(.outOfMemory, "\(what) needs \(count) floats, which could not be allocated")
        }
        pointer = raw.assumingMemoryBound(to: Float.self)
        self.count = count
    }

    deinit { free(pointer) }
}
