internal import CMicroHTTPD
import Glibc

/// Owns one `struct MHD_Daemon *` and stops it exactly once; also owns the listening descriptor MHD was given.
///
/// Threading mode: a pool of worker threads, each with its own edge-triggered epoll set and share of the
/// connections, that all accept on the one listening socket. Idle and slow connections cost no thread. Nothing may
/// block a worker: requests whose handler may block run on threads of their own while their connection is
/// suspended (MHD_ALLOW_SUSPEND_RESUME, which brings the inter-thread channel MHD_quiesce_daemon needs too).
final class MHDDaemon {
    private var handle: OpaquePointer?
    /// MHD's listening descriptor, owned by MHD until `quiesce()` hands it back; closed by us after MHD_stop_daemon.
    private var quiescedDescriptor: Int32 = -1

    /// Starts MHD on a duplicate of `socket`'s descriptor (the caller keeps and closes the original).
    ///
    /// A duplicate because MHD's failure paths are inconsistent about closing a provided listening socket: after a
    /// failed start the duplicate is left alone rather than risk closing a descriptor number someone else reuses.
    init(socket: ListeningSocket, configuration: HTTPServerConfiguration, context: UnsafeMutableRawPointer) throws(HTTPServerError) {
        let descriptor = dup(socket.descriptor)
        guard descriptor >= 0 else {
            throw HTTPServerError(code: .startFailed, message: "Cannot duplicate the listening socket.", systemError: errno)
        }
        var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ITC.rawValue | MHD_USE_ERROR_LOG.rawValue
        if socket.isIPv6 { flags |= MHD_USE_IPv6.rawValue }
        let daemon = ferry_mhd_start_daemon(
            flags, descriptor,
            mhdLog, context,
            mhdAccessHandler, context,
            mhdRequestCompleted, context,
            mhdURILog, context,
            configuration.connectionMemoryLimit,
            UInt32(clamping: max(configuration.maximumConnections, 1)),
            // Connections start under the short header timeout; a request whose header is in gets the longer one.
            UInt32(clamping: max(configuration.idleHeaderTimeoutSeconds, 0)),
            UInt32(clamping: max(configuration.maximumConnectionsPerIP, 0)),
            UInt32(clamping: configuration.effectiveWorkerThreads))
        guard let daemon else {
            throw HTTPServerError(code: .startFailed, message: "libmicrohttpd could not start (see the server log).")
        }
        handle = daemon
    }

    deinit {
        stop()
    }

    /// Stops accepting connections; connections already open keep being served. Idempotent.
    func quiesce() {
        guard let handle, quiescedDescriptor < 0 else { return }
        let descriptor = MHD_quiesce_daemon(handle)
        guard descriptor >= 0 else { return }
        quiescedDescriptor = descriptor
        // MHD says not to close it before MHD_stop_daemon; shutting it down is allowed and makes the kernel refuse
        // new connections now instead of queueing them in the backlog until the close.
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// MHD_stop_daemon: closes every connection and joins the worker threads. No connection may be suspended
    /// (MHD panics): the caller waits for that first. Idempotent.
    func stop() {
        guard let handle else { return }
        self.handle = nil
        MHD_stop_daemon(handle)
        if quiescedDescriptor >= 0 {
            closeDescriptor(quiescedDescriptor)
            quiescedDescriptor = -1
        }
    }
}
