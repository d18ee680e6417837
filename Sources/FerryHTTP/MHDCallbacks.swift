internal import CMicroHTTPD
import Glibc

// The C callbacks handed to libmicrohttpd. They are plain global functions (no captures, no actor isolation:
// MHD calls them on its own threads) that turn the opaque `cls` / `con_cls` pointers back into Swift objects
// and hand over at once.
//
// Context ownership:
// - `cls` is the `ServerCore`, retained by `HTTPServer.start()` and released after MHD_stop_daemon returns.
// - `*con_cls` is a `RequestContext`, retained when MHD first sees the request (URI log callback) and released
//   in the request-completed callback, which MHD calls exactly once for every request it told us about.

/// MHD_OPTION_URI_LOG_CALLBACK: called with the raw request target before MHD decodes anything; its return value
/// becomes the request's `*con_cls`.
func mhdURILog(_ cls: UnsafeMutableRawPointer?, _ uri: UnsafePointer<CChar>?, _ connection: OpaquePointer?) -> UnsafeMutableRawPointer? {
    guard let cls else { return nil }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    let context = RequestContext(core: core, target: uri.map { String(cString: $0) } ?? "/")
    // Retain for MHD's `*con_cls`; balanced by takeRetainedValue() in mhdRequestCompleted.
    return Unmanaged.passRetained(context).toOpaque()
}

/// The access handler: called once when the header is in, once per piece of body, and a final time with size 0.
func mhdAccessHandler(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                      _ url: UnsafePointer<CChar>?, _ method: UnsafePointer<CChar>?, _ version: UnsafePointer<CChar>?,
                      _ uploadData: UnsafePointer<CChar>?, _ uploadDataSize: UnsafeMutablePointer<Int>?,
                      _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> MHD_Result {
    guard let cls, let connection, let conCls, let uploadDataSize else { return MHD_Result.NO }
    if conCls.pointee == nil {
        // Only if MHD skipped the URI log callback; fall back to the already-decoded URL it passes here.
        let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
        let context = RequestContext(core: core, target: url.map { String(cString: $0) } ?? "/")
        // Retain for MHD's `*con_cls`; balanced by takeRetainedValue() in mhdRequestCompleted.
        conCls.pointee = Unmanaged.passRetained(context).toOpaque()
    }
    let context = Unmanaged<RequestContext>.fromOpaque(conCls.pointee!).takeUnretainedValue()
    let accepted = context.access(
        connection: connection,
        method: method.map { String(cString: $0) } ?? "GET",
        data: uploadData.map(UnsafeRawPointer.init),
        size: uploadDataSize)
    return accepted ? MHD_Result.YES : MHD_Result.NO
}

/// MHD_OPTION_NOTIFY_COMPLETED: the request is over (response sent, or the connection died). Must not block:
/// it runs on the connection's worker thread.
func mhdRequestCompleted(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                         _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                         _ termination: MHD_RequestTerminationCode) {
    guard let conCls, let opaque = conCls.pointee else { return }
    conCls.pointee = nil
    // Balances the passRetained in mhdURILog (or the fallback in mhdAccessHandler).
    let context = Unmanaged<RequestContext>.fromOpaque(opaque).takeRetainedValue()
    let ended = RequestTermination(termination)
    context.completed(termination: ended)
    // Back to the header timeout while a kept-alive connection waits for its next request (only then: a
    // connection that ends is being torn down).
    if ended == .completed, let connection {
        ferry_mhd_restart_timeout(connection, UInt32(clamping: max(context.core.configuration.idleHeaderTimeoutSeconds, 0)))
    }
}

/// MHD_OPTION_EXTERNAL_LOGGER: MHD's own diagnostics, formatted and passed to the server's log.
func mhdLog(_ cls: UnsafeMutableRawPointer?, _ format: UnsafePointer<CChar>?, _ arguments: CVaListPointer?) {
    guard let cls, let format, let arguments else { return }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    var buffer = [CChar](repeating: 0, count: 512)
    _ = vsnprintf(&buffer, buffer.count, format, arguments)
    var message = cStringBufferText(buffer)
    while message.last == "\n" { message.removeLast() }
    core.log?("libmicrohttpd: \(message)")
}

/// How MHD ended a request, in Swift terms.
enum RequestTermination: Equatable {
    case completed, error, timeout, daemonShutdown, readError, clientAbort

    init(_ code: MHD_RequestTerminationCode) {
        switch code {
        case .REQUEST_TERMINATED_COMPLETED_OK: self = .completed
        case .REQUEST_TERMINATED_WITH_ERROR: self = .error
        case .REQUEST_TERMINATED_TIMEOUT_REACHED: self = .timeout
        case .REQUEST_TERMINATED_DAEMON_SHUTDOWN: self = .daemonShutdown
        case .REQUEST_TERMINATED_READ_ERROR: self = .readError
        case .REQUEST_TERMINATED_CLIENT_ABORT: self = .clientAbort
        }
    }

    var logText: String {
        switch self {
        case .completed: "completed"
        case .error: "connection error"
        case .timeout: "timed out"
        case .daemonShutdown: "server shutdown"
        case .readError: "client disconnected"
        case .clientAbort: "client aborted"
        }
    }
}
