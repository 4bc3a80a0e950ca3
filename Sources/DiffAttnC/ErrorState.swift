import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels
import Glibc

// The thread-local message behind `da_last_error()`: one heap buffer per thread, kept in a
// pthread key so that it outlives the call that set it and is freed when the thread ends.
private let messageKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private let emptyMessage: UnsafePointer<CChar> = staticCString("")

/// Sets this thread's message (a copy) and returns the status for it.
func fail(_ status: Int32, _ message: String) -> da_status {
    let old = pthread_getspecific(messageKey)
    let bytes = Array(message.utf8)
    if let buffer = malloc(bytes.count + 1)?.assumingMemoryBound(to: UInt8.self) {
        buffer.initialize(from: bytes, count: bytes.count)
        buffer[bytes.count] = 0
        pthread_setspecific(messageKey, buffer)
        free(old)
    }
    return status
}

func fail(_ error: DiffAttnError) -> da_status { fail(error.kind.rawValue, error.message) }

/// Clears the message at the start of a call, so a stale one is never mistaken for this call's.
func clearError() {
    if let old = pthread_getspecific(messageKey) {
        old.assumingMemoryBound(to: UInt8.self)[0] = 0
    }
}

/// Runs a thunk body: clears the message, maps thrown `DiffAttnError`s to status + message.
func guarded(_ body: () throws -> Void) -> da_status {
    clearError()
    do {
        try body()
        return DA_OK
    } catch let error as DiffAttnError {
        return fail(error)
    } catch {
        return fail(DA_ERR_INTERNAL, "unexpected error: \(error)")
    }
}

/// This thread's message as the library holds it ("" when none was set).
func currentErrorMessage() -> UnsafePointer<CChar> {
    guard let p = pthread_getspecific(messageKey) else { return emptyMessage }
    return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
}

@_cdecl("da_last_error")
public func da_last_error() -> UnsafePointer<CChar>? { currentErrorMessage() }

private let statusNames: [Int32: UnsafePointer<CChar>] = {
    let names: [(Int32, String)] = [
        (DA_OK, "DA_OK"), (DA_ERR_INVALID_ARGUMENT, "DA_ERR_INVALID_ARGUMENT"),
        (DA_ERR_INVALID_HANDLE, "DA_ERR_INVALID_HANDLE"), (DA_ERR_SHAPE, "DA_ERR_SHAPE"),
        (DA_ERR_DTYPE, "DA_ERR_DTYPE"), (DA_ERR_VALUE, "DA_ERR_VALUE"), (DA_ERR_TYPE, "DA_ERR_TYPE"),
        (DA_ERR_UNSUPPORTED, "DA_ERR_UNSUPPORTED"), (DA_ERR_NOT_FOUND, "DA_ERR_NOT_FOUND"),
        (DA_ERR_STATE, "DA_ERR_STATE"), (DA_ERR_OUT_OF_MEMORY, "DA_ERR_OUT_OF_MEMORY"),
        (DA_ERR_IO, "DA_ERR_IO"), (DA_ERR_INTERNAL, "DA_ERR_INTERNAL"),
    ]
    return Dictionary(uniqueKeysWithValues: names.map { ($0.0, staticCString($0.1)) })
}()
private let unknownStatusName = staticCString("DA_ERR_UNKNOWN")

@_cdecl("da_status_name")
public func da_status_name(_ status: da_status) -> UnsafePointer<CChar>? {
    statusNames[status] ?? unknownStatusName
}

/// A NUL-terminated copy that lives for the whole process (for static strings handed to C).
func staticCString(_ s: String) -> UnsafePointer<CChar> {
    let bytes = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
    p.initialize(from: bytes, count: bytes.count)
    return UnsafePointer(p)
}

private let interned = Locked([String: UnsafePointer<CChar>]())

/// A C string for `s` that stays valid for the life of the process. Used for weight names, a
/// small closed set, so the table stays small.
func internedCString(_ s: String) -> UnsafePointer<CChar> {
    interned.withLock { table in
        if let p = table[s] { return p }
        let p = staticCString(s)
        table[s] = p
        return p
    }
}
