import Foundation
import Glibc

/// An HTTP/1.1 server on libmicrohttpd that hands every request to one `HTTPHandler`.
///
/// Threading: libmicrohttpd's worker pool (epoll, one thread per core) reads every connection, so idle and slow
/// connections cost no thread. Handlers that may block (fsync, SQLite, long polls) run on a thread of their own per
/// request while the connection is suspended; a request with a body has its handler pull the body through a bounded
/// buffer that the worker fills. Only requests whose route is inline run on a worker.
///
/// Lifecycle: `init` → `start()` (binds; throws `HTTPServerError`) → `shutdown(timeout:)` (stops accepting, lets
/// requests in flight finish, then stops). A server starts once. Dropping the last reference shuts it down at once.
public final class HTTPServer: Sendable {
    private let host: String
    private let requestedPort: UInt16
    private let core: ServerCore
    private let lifecycle = Lifecycle()

    /// - Parameters:
    ///   - host: an IPv4 or IPv6 literal (`127.0.0.1`, `::1`, `[::1]`), a name such as `localhost` (the first
    ///     address that binds is used), or "" / `0.0.0.0` / `::` for every address.
    ///   - port: the TCP port; 0 lets the kernel choose (read it back from `port` after `start()`).
    ///   - log: receives one access-log line per request and libmicrohttpd's own diagnostics. Called from
    ///     connection threads; must not block for long.
    public init(host: String, port: UInt16, configuration: HTTPServerConfiguration = .init(), handler: any HTTPHandler,
                log: (@Sendable (String) -> Void)? = nil) {
        self.host = host
        self.requestedPort = port
        self.core = ServerCore(handler: handler, configuration: configuration, log: log)
    }

    deinit {
        shutdown(timeout: 0)
    }

    /// Binds and starts serving.
    /// - Throws: `HTTPServerError` with code ADDRESS_IN_USE, ADDRESS_NOT_AVAILABLE, INVALID_ADDRESS,
    ///   PERMISSION_DENIED, BIND_FAILED, START_FAILED or ALREADY_STARTED.
    public func start() throws(HTTPServerError) {
        try lifecycle.start { () throws(HTTPServerError) -> Lifecycle.Running in
            raiseDescriptorLimit(toFit: core.configuration.maximumConnections)
            let socket = try ListeningSocket.bind(host: host, port: requestedPort,
                                                  backlog: Int32(clamping: core.configuration.listenBacklog))
            // MHD keeps its own duplicate of the descriptor; ours closes when `socket` goes out of scope.
            // Retain the core for MHD's callbacks; balanced by release() in shutdown after MHD_stop_daemon (or below).
            let context = Unmanaged.passRetained(core)
            do throws(HTTPServerError) {
                let daemon = try MHDDaemon(socket: socket, configuration: core.configuration, context: context.toOpaque())
                return Lifecycle.Running(daemon: daemon, context: context, port: socket.port)
            } catch {
                // MHD never started, so no callback can run: balance the passRetained above.
                context.release()
                throw error
            }
        }
    }

    /// The bound port once started (the kernel's choice when 0 was asked for); the requested port before.
    public var port: UInt16 {
        lifecycle.boundPort ?? requestedPort
    }

    /// Stops accepting connections (MHD_quiesce_daemon), lets requests in flight finish for up to `seconds`, then
    /// stops the daemon (MHD_stop_daemon), closing idle keep-alive connections. Responses sent meanwhile carry
    /// `Connection: close`. When time runs out, requests still in flight are failed (a `nextChunk()` throws
    /// SERVER_SHUTTING_DOWN, their connections close); a handler busy in its own work is still waited for, as
    /// libmicrohttpd cannot stop while its connection is suspended.
    /// Idempotent; concurrent callers return when the first one has finished.
    public func shutdown(timeout seconds: Double) {
        guard let running = lifecycle.beginStopping() else { return }
        core.requests.beginClosing()
        running.daemon.quiesce()
        if !core.requests.waitUntilIdle(deadline: Date(timeIntervalSinceNow: max(seconds, 0))) {
            core.log?("shutdown: \(core.requests.inFlight) request(s) still in flight after \(seconds)s; failing them")
        }
        // Kept-alive connections may still bring requests: from here they get 503 without a handler, and what is
        // still in flight is failed (its waits end), so no connection stays suspended into MHD_stop_daemon.
        core.requests.beginStopping()
        core.requests.failAll(with: .shuttingDown)
        core.requests.waitUntilHandlersReturned { [log = core.log] count in
            log?("shutdown: waiting for \(count) handler(s) still working")
        }
        running.daemon.stop()
        // MHD_stop_daemon has returned: no callback can run any more, so MHD's reference to the core can go.
        running.context.release()
        lifecycle.finishStopping()
    }

    /// A snapshot of the server's counters (thread-safe).
    public var statistics: HTTPStatistics {
        core.counters.snapshot(inFlight: core.requests.inFlight)
    }
}

/// The server's state machine: idle → running → stopping → stopped, behind one lock.
private final class Lifecycle: @unchecked Sendable {
    // @unchecked Sendable invariant: `state` is only read and written with `condition` locked; `Running` values
    // leave the lock only in `beginStopping`, which hands them to exactly one caller.
    struct Running {
        let daemon: MHDDaemon
        let context: Unmanaged<ServerCore>
        let port: UInt16
    }

    private enum State {
        case idle
        case starting
        case running(Running)
        case stopping(port: UInt16)
        case stopped(port: UInt16?)
    }

    private let condition = NSCondition()
    private var state = State.idle

    func start(_ body: () throws(HTTPServerError) -> Running) throws(HTTPServerError) {
        condition.lock()
        guard case .idle = state else {
            condition.unlock()
            throw HTTPServerError(code: .alreadyStarted, message: "The server was already started; a server starts once.")
        }
        state = .starting
        condition.unlock()
        do {
            let running = try body()
            condition.lock()
            state = .running(running)
            condition.broadcast()
            condition.unlock()
        } catch {
            condition.lock()
            state = .idle
            condition.broadcast()
            condition.unlock()
            throw error
        }
    }

    var boundPort: UInt16? {
        condition.lock()
        defer { condition.unlock() }
        switch state {
        case .idle, .starting: return nil
        case .running(let running): return running.port
        case .stopping(let port): return port
        case .stopped(let port): return port
        }
    }

    /// The running daemon for the one caller that gets to stop it; nil for everyone else (after waiting for a
    /// stop in progress, or a start in progress, to finish).
    func beginStopping() -> Running? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            switch state {
            case .idle:
                state = .stopped(port: nil)
                return nil
            case .starting, .stopping:
                condition.wait()
            case .running(let running):
                state = .stopping(port: running.port)
                return running
            case .stopped:
                return nil
            }
        }
    }

    func finishStopping() {
        condition.lock()
        if case .stopping(let port) = state { state = .stopped(port: port) }
        condition.broadcast()
        condition.unlock()
    }
}

/// Raises the soft limit on open descriptors (often 1024) toward the hard limit, so `connections` connections plus
/// the service's own files fit. Beyond the hard limit libmicrohttpd refuses connections when accept(2) fails.
private func raiseDescriptorLimit(toFit connections: Int) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    let wanted = rlim_t(max(connections, 0) + 512)
    guard limit.rlim_cur < wanted else { return }
    limit.rlim_cur = min(wanted, limit.rlim_max)
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
