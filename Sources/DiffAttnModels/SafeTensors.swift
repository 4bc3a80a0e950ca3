import DiffAttnKernels
import Glibc
import DiffAttnModule
import DiffAttnProcessors

/// One tensor entry of a safetensors header.
public struct SafeTensorEntry: Sendable {
    public enum DType: String, Sendable { case f32 = "F32", f16 = "F16", bf16 = "BF16" }
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range inside the data section (after the header).
    public var begin: Int, end: Int

    var elementSize: Int { dtype == .f32 ? 4 : 2 }
}

/// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
/// (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`), then the data.
/// Every offset, size and shape is checked against the buffer before any read: a bad file is a
/// `DiffAttnError` naming the tensor, never a trap. F32, F16 and BF16 are read, widened to f32.
public struct SafeTensorsHeader: Sendable {
    public static let maxHeaderBytes = 100 << 20
    public let entries: [SafeTensorEntry]
    public let metadata: [(String, String)]
    /// Offset of the data section in the buffer.
    public let dataStart: Int

    public init(_ buffer: UnsafeRawBufferPointer, source: String) throws {
        func bad(_ m: String) -> DiffAttnError { DiffAttnError.value("\(source): \(m)") }
        guard buffer.count >= 8 else { throw bad("file is \(buffer.count) bytes, too short for a safetensors header") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(buffer[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(SafeTensorsHeader.maxHeaderBytes) else { throw bad("header length \(n) exceeds the \(SafeTensorsHeader.maxHeaderBytes)-byte limit") }
        guard n <= UInt64(buffer.count - 8) else { throw bad("header length \(n) runs past the end of the file (\(buffer.count) bytes)") }
        let headerBytes = Array(UnsafeRawBufferPointer(rebasing: buffer[8..<(8 + Int(n))]))
        let json: JSONValue
        do { json = try JSONParser.parse(bytes: headerBytes) } catch let e as DiffAttnError {
            throw bad("header is not valid JSON (\(e.message))")
        }
        guard case .object(let members) = json else { throw bad("header must be a JSON object") }
        dataStart = 8 + Int(n)
        let dataSize = buffer.count - dataStart
        var entries: [SafeTensorEntry] = []
        var metadata: [(String, String)] = []
        for (name, v) in members {
            if name == "__metadata__" {
                guard case .object(let m) = v else { throw bad("__metadata__ must be an object of strings") }
                for (k, x) in m {
                    guard case .string(let s) = x else { throw bad("__metadata__['\(k)'] must be a string") }
                    metadata.append((k, s))
                }
                continue
            }
            entries.append(try SafeTensorsHeader.entry(name, v, dataSize: dataSize, bad))
        }
        // Ranges must not overlap (the format requires a packed, ordered data section).
        let sorted = entries.sorted { $0.begin < $1.begin }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end && b.end > b.begin {
            throw bad("tensors '\(a.name)' and '\(b.name)' overlap in the data section")
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func entry(_ name: String, _ v: JSONValue, dataSize: Int, _ bad: (String) -> DiffAttnError) throws -> SafeTensorEntry {
        guard case .object = v, case .string(let dt)? = v["dtype"] else { throw bad("tensor '\(name)' has no string 'dtype'") }
        guard let dtype = SafeTensorEntry.DType(rawValue: dt) else {
            throw DiffAttnError.dtype("tensor '\(name)' has dtype \(dt); only F32, F16 and BF16 are read")
        }
        guard case .array(let dims)? = v["shape"], dims.count <= 8 else { throw bad("tensor '\(name)' has no 'shape' list of at most 8 dimensions") }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard let i = d.exactInt, i >= 0, i <= 1 << 40 else { throw bad("tensor '\(name)' has a bad dimension \(d.serialized)") }
            let (p, o) = count.multipliedReportingOverflow(by: i)
            guard !o, p <= 1 << 40 else { throw bad("tensor '\(name)' is too large") }
            shape.append(i); count = p
        }
        guard case .array(let offs)? = v["data_offsets"], offs.count == 2,
              let begin = offs[0].exactInt, let end = offs[1].exactInt, begin >= 0, begin <= end else {
            throw bad("tensor '\(name)' needs 'data_offsets' [begin, end] with 0 <= begin <= end")
        }
        guard end <= dataSize else {
            throw bad("tensor '\(name)' data_offsets [\(begin), \(end)] run past the end of the data section (\(dataSize) bytes; file truncated?)")
        }
        var e = SafeTensorEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
        guard end - begin == count * e.elementSize else {
            throw bad("tensor '\(name)': shape \(describe(shape)) of \(dt) needs \(count * e.elementSize) bytes, data_offsets give \(end - begin)")
        }
        e.shape = shape
        return e
    }

    /// The entry's values widened to float32.
    public func read(_ e: SafeTensorEntry, from buffer: UnsafeRawBufferPointer) -> Tensor {
        let count = (e.end - e.begin) / e.elementSize
        var out = Tensor(shape: e.shape, repeating: 0)
        let base = dataStart + e.begin
        out.storage.withUnsafeMutableBufferPointer { dst in
            for i in 0..<count {
                let p = base + i * e.elementSize
                switch e.dtype {
                case .f32:
                    dst[i] = Float(bitPattern: UInt32(buffer[p]) | UInt32(buffer[p + 1]) << 8 | UInt32(buffer[p + 2]) << 16 | UInt32(buffer[p + 3]) << 24)
                case .f16:
                    dst[i] = Float(Float16(bitPattern: UInt16(buffer[p]) | UInt16(buffer[p + 1]) << 8))
                case .bf16:
                    dst[i] = Float(bitPattern: (UInt32(buffer[p]) | UInt32(buffer[p + 1]) << 8) << 16)
                }
            }
        }
        return out
    }
}

/// A safetensors file mapped read-only into memory (Glibc `mmap`); unmapped when released.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    public let header: SafeTensorsHeader
    private let base: UnsafeMutableRawPointer?
    private let size: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DiffAttnError(.io, "cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DiffAttnError(.io, "cannot stat '\(path)': \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw DiffAttnError(.io, "'\(path)' is not a regular file") }
        size = Int(st.st_size)
        if size > 0 {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw DiffAttnError(.io, "cannot map '\(path)': \(String(cString: strerror(errno)))") }
            base = p
        } else {
            base = nil
        }
        do {
            header = try SafeTensorsHeader(UnsafeRawBufferPointer(start: base, count: size), source: path)
        } catch {
            if let base { munmap(base, size) }
            throw error
        }
    }

    deinit { if let base { munmap(base, size) } }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    public func read(_ e: SafeTensorEntry) -> Tensor { header.read(e, from: buffer) }
}
