import DiffAttnKernels
import Glibc
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// Where an offloaded group's weights live (hooks/group_offloading.py:ModuleGroup, "offload device"): a packed copy in
/// memory, or one file per group on disk. Written once when offloading is applied (the weights
/// are locked while offloaded), read back on every onload.
protocol OffloadStore: AnyObject, Sendable {
    func write(_ tensors: [Tensor]) throws
    /// The tensors, element counts checked against `counts`.
    func read(_ counts: [Int]) throws -> [Tensor]
    /// Re-creates a missing or damaged backing file from resident tensors (no-op in memory).
    func repairIfNeeded(_ tensors: [Tensor]) throws
}

/// The in-memory form: every tensor of the group packed into one buffer. On a CPU this is the
/// same RAM as the compute copy (diffusers' CPU → CPU case); only disk bounds memory.
final class MemoryStore: OffloadStore, @unchecked Sendable {
    private var packed: [Float] = []

    func write(_ tensors: [Tensor]) throws {
        var p: [Float] = []
        p.reserveCapacity(tensors.reduce(0) { $0 + $1.count })
        for t in tensors { p.append(contentsOf: t.storage) }
        packed = p
    }

    func read(_ counts: [Int]) throws -> [Tensor] {
        guard counts.reduce(0, +) == packed.count else {
            throw DiffAttnError(.internal, "in-memory offload store holds \(packed.count) values, expected \(counts.reduce(0, +))")
        }
        var out: [Tensor] = []
        var at = 0
        for n in counts {
            out.append(Tensor(shape: [n], storage: Array(packed[at..<at + n])))
            at += n
        }
        return out
    }

    func repairIfNeeded(_ tensors: [Tensor]) throws {}
}

/// One file per group: `group_<16 hex of FNV-1a(group id)>.bin` under the directory. Layout:
/// magic `DAOFFLD1`, tensor count (u64), element counts (u64 each), checksum of the data (u64),
/// then the float32 data. Everything is checked on read: a missing, truncated, foreign or
/// corrupted file is an I/O error naming the file, never wrong weights.
final class DiskStore: OffloadStore, @unchecked Sendable {
    let directory: String
    let file: String
    private static let magic: [UInt8] = Array("DAOFFLD1".utf8)

    init(directory: String, groupID: String) {
        self.directory = directory
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in groupID.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let hex = String(h, radix: 16)
        file = directory + "/group_" + String(repeating: "0", count: 16 - hex.count) + hex + ".bin"
    }

    /// The file belongs to this offloading only: it goes when offloading is disabled or the model
    /// is destroyed (the directory, perhaps the caller's, stays).
    deinit { unlink(file) }

    private func headerBytes(_ counts: [Int], checksum: UInt64) -> [UInt8] {
        var words: [UInt64] = [UInt64(counts.count)] + counts.map { UInt64($0) } + [checksum]
        return DiskStore.magic + words.withUnsafeMutableBytes { Array($0) }
    }

    func write(_ tensors: [Tensor]) throws {
        try makeDirectory(directory)
        let counts = tensors.map(\.count)
        let header = headerBytes(counts, checksum: checksum(tensors))
        let temp = file + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ioError("cannot create", temp) }
        do {
            try header.withUnsafeBytes { try writeAll(fd, $0, temp) }
            for t in tensors { try t.storage.withUnsafeBytes { try writeAll(fd, $0, temp) } }
            guard close(fd) == 0 else { throw ioError("cannot close", temp) }
        } catch { close(fd); unlink(temp); throw error }
        guard rename(temp, file) == 0 else { let e = ioError("cannot rename to", file); unlink(temp); throw e }
    }

    func read(_ counts: [Int]) throws -> [Tensor] {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("cannot open offloaded weights", file) }
        defer { close(fd) }
        let dataBytes = counts.reduce(0, +) * 4
        let headerSize = 8 + 8 * (counts.count + 2)
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ioError("cannot stat", file) }
        guard Int(st.st_size) == headerSize + dataBytes else {
            throw DiffAttnError(.io, "offloaded weights file \(file) has \(st.st_size) bytes, expected \(headerSize + dataBytes) (truncated or foreign)")
        }
        var header = [UInt8](repeating: 0, count: headerSize)
        try header.withUnsafeMutableBytes { try readAll(fd, $0, offset: 0) }
        let words = header[8...].withUnsafeBytes { raw in (0..<(counts.count + 2)).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self) } }
        guard Array(header[..<8]) == DiskStore.magic, words[0] == UInt64(counts.count),
              zip(words[1...counts.count], counts).allSatisfy({ $0 == UInt64($1) }) else {
            throw DiffAttnError(.io, "offloaded weights file \(file) does not describe this group (bad magic or tensor sizes)")
        }
        var out: [Tensor] = []
        var offset = headerSize
        for n in counts {
            let storage = try [Float](unsafeUninitializedCapacity: n) { buf, initialized in
                try readAll(fd, UnsafeMutableRawBufferPointer(buf), offset: offset)
                initialized = n
            }
            out.append(Tensor(shape: [n], storage: storage))
            offset += n * 4
        }
        guard checksum(out) == words[counts.count + 1] else {
            throw DiffAttnError(.io, "offloaded weights file \(file) fails its checksum (corrupted)")
        }
        return out
    }

    func repairIfNeeded(_ tensors: [Tensor]) throws {
        var st = stat()
        let expected = 8 + 8 * (tensors.count + 2) + tensors.reduce(0) { $0 + $1.count } * 4
        if stat(file, &st) == 0 && Int(st.st_size) == expected { return }
        try write(tensors)
    }

    private func checksum(_ tensors: [Tensor]) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        for t in tensors {
            t.storage.withUnsafeBytes { raw in
                let words = raw.count / 8
                for i in 0..<words {
                    h = (h ^ raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) &* 0x100_0000_01b3
                    h ^= h >> 29
                }
                if raw.count % 8 != 0 { h = (h ^ UInt64(raw.loadUnaligned(fromByteOffset: 8 * words, as: UInt32.self))) &* 0x100_0000_01b3 }
            }
            h = (h ^ UInt64(t.count)) &* 0x100_0000_01b3
        }
        return h
    }
}

private func ioError(_ what: String, _ path: String) -> DiffAttnError {
    DiffAttnError(.io, "\(what) \(path): \(String(cString: strerror(errno)))")
}

private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw ioError("cannot write", path) }
        done += n
    }
}

private func readAll(_ fd: Int32, _ bytes: UnsafeMutableRawBufferPointer, offset: Int) throws {
    var done = 0
    while done < bytes.count {
        let n = pread(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw DiffAttnError(.io, "offloaded weights file ended early or could not be read: \(String(cString: strerror(errno)))") }
        done += n
    }
}

/// `mkdir -p`.
private func makeDirectory(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        prefix += part
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw ioError("cannot create directory", prefix) }
        prefix += "/"
    }
}
