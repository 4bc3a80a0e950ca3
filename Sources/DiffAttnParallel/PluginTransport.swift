// MPI through the optional plugin libdiffattn-mpi.so.0 (plugins/mpi/diffattn_mpi.c), loaded on
// first use: the base library has no MPI symbol and no MPI build dependency.
import CDiffAttnMPIPlugin
import Glibc

private let pluginTable: Result<UnsafePointer<diffattn_mpi_plugin>, ParallelError> = {
    var message = [CChar](repeating: 0, count: 1024)
    let override = getenv("DIFFATTN_MPI_PLUGIN")
    guard let table = diffattn_mpi_plugin_load(override, &message, message.count) else {
        let why = String(cString: message)
        return .failure(ParallelError(.unsupported, "MPI support not installed (libdiffattn-mpi.so.0, package libdiffattn-mpi0): \(why)"))
    }
    return .success(table)
}()

/// A communicator over the caller's MPI communicator, given as its Fortran handle
/// (`MPI_Comm_c2f(comm)` in C, `comm.py2f()` in mpi4py). Collective: every rank of that
/// communicator must call it (the plugin duplicates the communicator).
public func makeMPICommunicator(fortranHandle: Int64) throws -> Communicator {
    let table = try pluginTable.get()
    var context: UnsafeMutableRawPointer?
    var rank: Int32 = 0, size: Int32 = 0
    var message = [CChar](repeating: 0, count: 1024)
    guard table.pointee.open(fortranHandle, &context, &rank, &size, &message, message.count) == 0, let context else {
        throw ParallelError(.io, "MPI: \(String(cString: message))")
    }
    return Communicator(PluginTransport(table: table, context: context, rank: Int(rank), size: Int(size)))
}

final class PluginTransport: Transport, @unchecked Sendable {
    let table: UnsafePointer<diffattn_mpi_plugin>
    let context: UnsafeMutableRawPointer
    let rank: Int, size: Int

    init(table: UnsafePointer<diffattn_mpi_plugin>, context: UnsafeMutableRawPointer, rank: Int, size: Int) {
        self.table = table; self.context = context; self.rank = rank; self.size = size
    }

    deinit { table.pointee.close(context) }

    func post(sends: [Transfer], receives: [Transfer], tag: Int) throws -> PendingExchange {
        let s = sends.map { diffattn_mpi_transfer(peer: Int32($0.peer), bytes: Int64($0.bytes), buffer: $0.buffer) }
        let r = receives.map { diffattn_mpi_transfer(peer: Int32($0.peer), bytes: Int64($0.bytes), buffer: $0.buffer) }
        var request: UnsafeMutableRawPointer?
        var message = [CChar](repeating: 0, count: 512)
        let status = table.pointee.post(context, s, Int32(s.count), r, Int32(r.count), Int32(tag), &request,
                                        &message, message.count)
        guard status == 0 else { throw ParallelError(.io, "MPI: \(String(cString: message))") }
        return PluginExchange(transport: self, request: request)
    }
}

private final class PluginExchange: PendingExchange {
    let transport: PluginTransport
    var request: UnsafeMutableRawPointer?
    init(transport: PluginTransport, request: UnsafeMutableRawPointer?) { self.transport = transport; self.request = request }

    func wait(timeout: Double) throws {
        guard let r = request else { return }
        request = nil
        var message = [CChar](repeating: 0, count: 512)
        guard transport.table.pointee.wait(transport.context, r, timeout, &message, message.count) == 0 else {
            throw ParallelError(.io, "MPI rank \(transport.rank): \(String(cString: message))")
        }
    }

    deinit {
        // Never waited (an error on the way): complete it so MPI frees the requests.
        if let r = request { var m = [CChar](repeating: 0, count: 64); _ = transport.table.pointee.wait(transport.context, r, 5, &m, m.count) }
    }
}
