import Foundation

/// What every callback of one server needs: the handler, the limits, the log, the counters and the set of
/// requests in flight. Immutable references only, so it is Sendable as is; it is the `cls` of MHD's callbacks.
final class ServerCore: Sendable {
    let handler: any HTTPHandler
    let configuration: HTTPServerConfiguration
    let log: (@Sendable (String) -> Void)?
    let counters = StatisticsCounters()
    let requests = RequestTracker()
    /// Where deadlines of suspended connections fire (they only wake a connection, so one serial queue suffices).
    let timers = DispatchQueue(label: "ferry-http-timers")

    init(handler: any HTTPHandler, configuration: HTTPServerConfiguration, log: (@Sendable (String) -> Void)?) {
        self.handler = handler
        self.configuration = configuration
        self.log = log
    }

    /// Upload buffers per request with a body.
    var uploadBufferCount: Int {
        max(2, configuration.uploadBufferBytes / max(configuration.uploadChunkBytes, 4096))
    }
}

/// Requests between MHD's first sight of them and their completion, for draining on shutdown.
final class RequestTracker: @unchecked Sendable {
    // @unchecked Sendable invariant: every `var` is only touched with `condition` locked.
    private let condition = NSCondition()
    private var count = 0
    private var exchanges: [ObjectIdentifier: RequestExchange] = [:]
    private var closing = false
    private var suspended = 0
    private var handlersRunning = 0
    /// Set just before libmicrohttpd is stopped: no handler may start and no connection be suspended any more.
    private var stopping = false

    func begin() {
        condition.lock()
        count += 1
        condition.unlock()
    }

    func end() {
        condition.lock()
        count -= 1
        if count == 0 { condition.broadcast() }
        condition.unlock()
    }

    var inFlight: Int {
        condition.lock()
        defer { condition.unlock() }
        return count
    }

    func unregister(_ exchange: RequestExchange) {
        condition.lock()
        exchanges[ObjectIdentifier(exchange)] = nil
        condition.unlock()
    }

    /// True once shutdown began: responses then carry `Connection: close` so keep-alive clients go away.
    var isClosing: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closing
    }

    func beginClosing() {
        condition.lock()
        closing = true
        condition.unlock()
    }

    /// Counts a connection about to be suspended; false once stopping (it must then not be suspended).
    func connectionSuspended() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        suspended += 1
        return true
    }

    func connectionResumed() {
        condition.lock()
        suspended -= 1
        if suspended == 0 { condition.broadcast() }
        condition.unlock()
    }

    /// Connections suspended now (waiting for their handler or for room in their upload buffers).
    var suspendedConnections: Int {
        condition.lock()
        defer { condition.unlock() }
        return suspended
    }

    /// Counts a handler thread about to start and remembers its exchange, in one step so that a shutdown's
    /// `failAll` cannot miss it; false once stopping (the request is then answered 503 at once).
    func handlerStarted(_ exchange: RequestExchange) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        handlersRunning += 1
        exchanges[ObjectIdentifier(exchange)] = exchange
        return true
    }

    func handlerFinished() {
        condition.lock()
        handlersRunning -= 1
        if handlersRunning == 0 { condition.broadcast() }
        condition.unlock()
    }

    /// From now on no handler starts and no connection is suspended (a keep-alive client may still send a request
    /// after the drain; it is answered 503 at once).
    func beginStopping() {
        condition.lock()
        stopping = true
        condition.unlock()
    }

    /// After `beginStopping`: waits until no handler thread runs and no connection is suspended. MHD_stop_daemon
    /// must not run while a connection is suspended (libmicrohttpd panics), and the service must not close what
    /// handlers use while one still works. A handler busy in its own work is waited for, however long it takes;
    /// `log` hears about it every 10 s.
    func waitUntilHandlersReturned(log: ((Int) -> Void)?) {
        condition.lock()
        defer { condition.unlock() }
        while suspended > 0 || handlersRunning > 0 {
            if !condition.wait(until: Date(timeIntervalSinceNow: 10)) { log?(max(suspended, handlersRunning)) }
        }
    }

    /// Waits until no request is in flight or the deadline passes; true when drained.
    func waitUntilIdle(deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while count > 0 {
            if !condition.wait(until: deadline) { return count == 0 }
        }
        return true
    }

    /// Fails every request answered off MHD's threads that is still in flight: handlers blocked in `nextChunk()`
    /// throw, and connections waiting for a handler are woken to give up.
    func failAll(with error: HTTPError) {
        condition.lock()
        let pending = Array(exchanges.values)
        condition.unlock()
        for exchange in pending { exchange.fail(error) }
    }
}
