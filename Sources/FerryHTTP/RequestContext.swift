internal import CMicroHTTPD
import Foundation
import Glibc

/// The server's state for one request, from MHD's first sight of it (URI log callback) to the completed callback.
///
/// Only MHD's callbacks touch it, and MHD calls those for one request one at a time, on the worker thread that owns
/// the connection, so it needs no lock and is not Sendable. Those callbacks never block: when the request has to
/// wait (for its handler's answer, for room in its upload buffers, for a deadline) it suspends its connection and
/// MHD calls the access handler again once woken. What the handler thread shares with the worker lives in a
/// `RequestExchange`; the connection's suspend/wake in a `SuspendedConnection`.
final class RequestContext {
    private enum Phase {
        /// Created; the access handler has not run yet.
        case new
        /// A request with a body whose handler has started: waiting (until `deadline`, monotonic nanoseconds) to
        /// learn whether the handler reads the body or answers from the header alone. MHD repeats its first call
        /// after each wake while this lasts.
        case decidingBody(deadline: UInt64, expectsContinue: Bool)
        /// Body bytes go to the handler thread through `exchange`.
        case streamingBody
        /// The response is decided; remaining body bytes are read and dropped.
        case discardingBody
        /// No body (or its answer decided already): the work happens on the final access-handler call.
        case awaitingFinalCall
        /// The whole request is in; the handler thread has not answered yet.
        case awaitingResponse
        /// A response is queued.
        case responded
    }

    let core: ServerCore
    private let target: String
    private let startedAt = monotonicNanoseconds()
    private var phase = Phase.new
    private var request: HTTPRequest?
    private var exchange: RequestExchange?
    private var suspendable: SuspendedConnection?
    /// A response decided before the handler ran (header limit).
    private var decidedResponse: HTTPResponse?
    /// The connection closes after this response: the request's framing was ambiguous, so what follows its body
    /// on the connection cannot be trusted as the next request.
    private var closeAfterResponse = false
    private var status: Int?
    private var bodyBytesOut: Int64 = 0
    private var discardedBytes: Int64 = 0

    /// How long a request with a body waits for its handler to say whether it reads the body: with
    /// `Expect: 100-continue` the client waits for our "100 Continue" (curl gives up after 1 s and sends anyway);
    /// without it, this is the silence after the header that shows the client sends no body.
    private static let continueDecisionNanoseconds: UInt64 = 500_000_000
    private static let quietClientNanoseconds: UInt64 = 50_000_000

    init(core: ServerCore, target: String) {
        self.core = core
        self.target = target
        core.requests.begin()
    }

    // MARK: Access handler

    /// One access-handler call; false asks MHD to close the connection.
    func access(connection: OpaquePointer, method: String, data: UnsafeRawPointer?, size: UnsafeMutablePointer<Int>) -> Bool {
        switch phase {
        case .new:
            return begin(connection: connection, method: method)
        case .decidingBody(let deadline, let expectsContinue):
            // MHD repeats its first call after a wake.
            return decideBody(connection: connection, deadline: deadline, expectsContinue: expectsContinue)
        default:
            break
        }
        let count = size.pointee
        if count > 0, let data {
            return receive(data, count: count, size: size)
        }
        return finish(connection: connection)
    }

    /// First call: the header is complete. Never answers here for requests without a body: queuing a response on
    /// the first call makes MHD 0.9.75 close keep-alive connections.
    private func begin(connection: OpaquePointer, method: String) -> Bool {
        // The header is in: from here the longer connection timeout applies (a body, a long poll).
        restartTimeout(connection)
        let headers = Self.headers(of: connection)
        var remoteAddress: String?
        if let address = ferry_mhd_client_address(connection) { remoteAddress = numericHost(address) }
        let request = HTTPRequest(method: method, target: Self.originForm(target), headers: headers, remoteAddress: remoteAddress)
        self.request = request

        let contentLength = request.header("content-length").flatMap { Int64($0.trimmingASCIIWhitespace()) }
        let chunked = request.header("transfer-encoding")?.lowercased().contains("chunked") ?? false
        let hasBody = chunked || (contentLength ?? 0) > 0

        // RFC 9112 §6: a message whose length two headers could decide differently is refused, and the
        // connection closed, so nothing after it can be smuggled in as another request.
        if let problem = Self.framingProblem(contentLength: request.header("content-length"), transferEncoding: request.header("transfer-encoding")) {
            decidedResponse = .error(HTTPError(status: 400, code: "BAD_FRAMING", message: problem))
            closeAfterResponse = true
            // MHD frames the body by chunked, else by the first Content-Length: that much is read and dropped.
            let first = request.header("content-length")?.split(separator: ",").first.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } ?? 0
            phase = chunked || first > 0 ? .discardingBody : .awaitingFinalCall
            return true
        }

        let headerBytes = target.utf8.count + method.utf8.count + headers.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 4 }
        if headerBytes > core.configuration.maximumHeaderBytes {
            decidedResponse = .error(.requestHeadersTooLarge(limit: core.configuration.maximumHeaderBytes))
            phase = hasBody ? .discardingBody : .awaitingFinalCall
            return true
        }
        guard hasBody else {
            phase = .awaitingFinalCall
            return true
        }

        guard startOffThread(core.handler.route(request), connection: connection, makeBody: { exchange in
            HTTPRequestBody(declaredLength: chunked ? nil : contentLength, exchange: exchange)
        }) != nil else {
            decidedResponse = .error(.shuttingDown)
            closeAfterResponse = true
            phase = .discardingBody
            return true
        }
        let expectsContinue = request.header("expect")?.lowercased() == "100-continue"
        let wait = expectsContinue ? Self.continueDecisionNanoseconds : Self.quietClientNanoseconds
        let deadline = monotonicNanoseconds() + wait
        phase = .decidingBody(deadline: deadline, expectsContinue: expectsContinue)
        return decideBody(connection: connection, deadline: deadline, expectsContinue: expectsContinue)
    }

    /// Runs the handler on a thread of its own (not MHD's workers, not the Swift concurrency pool: it may block on
    /// the body, on disk, on SQLite), connected to this request through a new exchange. `makeBody` builds the
    /// handler's body from the exchange, or returns nil for a request without one. Nil when the server is stopping
    /// and starts no handler any more.
    private func startOffThread(_ route: HTTPRoute, connection: OpaquePointer,
                                makeBody: (RequestExchange) -> HTTPRequestBody?) -> RequestExchange? {
        let suspendable = SuspendedConnection(connection, tracker: core.requests)
        let exchange = RequestExchange(bufferCapacity: core.configuration.uploadChunkBytes,
                                       maximumBuffers: core.uploadBufferCount, counters: core.counters,
                                       connection: suspendable)
        guard core.requests.handlerStarted(exchange) else { return nil }
        core.counters.addHandlerThread()
        self.suspendable = suspendable
        self.exchange = exchange
        let body = makeBody(exchange)
        let name = body == nil ? "ferry-handler" : "ferry-upload"
        let tracker = core.requests
        let thread = Thread {
            // The kernel's name (what top and perf show); Foundation's Thread.name does not set it on Linux.
            ferry_name_current_thread(name)
            let response = route.respond(body)
            exchange.handlerReturned(response)
            tracker.handlerFinished()
        }
        thread.start()
        return exchange
    }

    /// Whether the handler reads the body, decided before MHD sends "100 Continue" or reads the body.
    ///
    /// With `Expect: 100-continue`, a handler that answers without the body (401, 413) is answered at once: the
    /// body is never sent and MHD closes the connection after. Past the deadline the body is taken (and discarded
    /// if the handler answers early after all): closing on a body in flight could reset the connection before the
    /// client reads the answer.
    ///
    /// Without Expect a client sends its body straight after the header. A handler that answers from the header
    /// alone is answered at once when the client then sends nothing until the deadline, as one that declares a
    /// body it never sends (it would otherwise wait for the timeout); MHD closes the connection after. With body
    /// bytes waiting, they are read and dropped first, for the same reason.
    private func decideBody(connection: OpaquePointer, deadline: UInt64, expectsContinue: Bool) -> Bool {
        guard let exchange, let suspendable else { return false }
        let now = monotonicNanoseconds()
        switch exchange.bodyDecision() {
        case .wanted:
            phase = .streamingBody
            return true
        case .failed:
            return false
        case .answered(let response):
            if expectsContinue { return queue(response, on: connection) }
            if ferry_mhd_client_has_pending_bytes(connection) != 0 {
                phase = .streamingBody
                return true
            }
            if now >= deadline {
                closeAfterResponse = true
                return queue(response, on: connection)
            }
        case .undecided:
            if now >= deadline {
                phase = .streamingBody
                return true
            }
        }
        // Sleep until the handler decides or the deadline passes; MHD then repeats this first call.
        suspendable.wake(after: Double(deadline - now) / 1e9, on: core.timers)
        suspendable.suspend()
        return true
    }

    /// A piece of the body. When the handler's upload buffers are full, what does not fit stays with MHD (in
    /// `size`) and the connection sleeps until the handler frees a buffer (back-pressure).
    private func receive(_ data: UnsafeRawPointer, count: Int, size: UnsafeMutablePointer<Int>) -> Bool {
        var taken = 0
        if case .streamingBody = phase, let exchange, let suspendable {
            let (outcome, consumed) = exchange.offer(data, count: count)
            core.counters.addBytesIn(consumed)
            switch outcome {
            case .accepted:
                size.pointee = count - consumed
                if consumed < count { suspendable.suspend() }
                return true
            case .failed:
                return false
            case .discarded:
                taken = consumed
                phase = .discardingBody
            }
        }
        let dropped = count - taken
        size.pointee = 0
        core.counters.addBytesIn(dropped)
        discardedBytes += Int64(dropped)
        if discardedBytes > core.configuration.maximumDiscardedBodyBytes {
            core.log?("\(logPrefix) reset after discarding \(discardedBytes) body bytes of an answered request")
            return false
        }
        return true
    }

    /// The final call: the whole request is in. Queue the response (MHD accepts it now), or sleep until the
    /// handler thread has one (MHD repeats the final call after the wake).
    private func finish(connection: OpaquePointer) -> Bool {
        switch phase {
        case .new, .responded, .decidingBody:
            return true
        case .awaitingResponse:
            return collectResponse(on: connection)
        case .awaitingFinalCall, .discardingBody, .streamingBody:
            break
        }
        if let decidedResponse { return queue(decidedResponse, on: connection) }
        if let exchange {
            exchange.finishBody()
            phase = .awaitingResponse
            return collectResponse(on: connection)
        }
        guard let request else { return false }
        let route = core.handler.route(request)
        if route.inline {
            return queue(route.respond(nil), on: connection)
        }
        guard startOffThread(route, connection: connection, makeBody: { _ in nil }) != nil else {
            closeAfterResponse = true
            return queue(.error(.shuttingDown), on: connection)
        }
        phase = .awaitingResponse
        return collectResponse(on: connection)
    }

    private func collectResponse(on connection: OpaquePointer) -> Bool {
        guard let exchange, let suspendable else { return false }
        let (response, failed) = exchange.takeResponse()
        if failed { return false }
        if let response { return queue(response, on: connection) }
        suspendable.suspend()
        return true
    }

    /// Switches the connection from the header timeout to the connection timeout (MHD restarts the timer too).
    private func restartTimeout(_ connection: OpaquePointer) {
        let seconds = core.configuration.connectionTimeoutSeconds
        if seconds > 0 { ferry_mhd_restart_timeout(connection, UInt32(clamping: seconds)) }
    }

    // MARK: Responses

    private func queue(_ response: HTTPResponse, on connection: OpaquePointer) -> Bool {
        var response = response
        if !(100...999).contains(response.status) {
            core.log?("\(logPrefix) handler returned invalid status \(response.status)")
            response = .error(.internalError)
        }
        guard let mhdResponse = makeMHDResponse(&response) else {
            core.log?("\(logPrefix) could not create the response")
            return false
        }
        // Released once here; a queued response is kept alive by MHD's own reference until it is sent.
        defer { MHD_destroy_response(mhdResponse) }
        for (name, value) in response.headers {
            let lowered = name.lowercased()
            // MHD computes the framing itself and rejects these.
            if lowered == "content-length" || lowered == "transfer-encoding" { continue }
            if MHD_add_response_header(mhdResponse, name, value) != MHD_Result.YES {
                core.log?("\(logPrefix) dropped invalid response header \(name)")
            }
        }
        if core.requests.isClosing || closeAfterResponse {
            _ = MHD_add_response_header(mhdResponse, "Connection", "close")
        }
        status = response.status
        let bodyless = request?.method == "HEAD" || response.status == 304 || response.status == 204 || response.status < 200
        bodyBytesOut = bodyless ? 0 : response.body.count
        phase = .responded
        return MHD_queue_response(connection, UInt32(response.status), mhdResponse) == MHD_Result.YES
    }

    /// The MHD response for a body; a file that cannot be opened turns `response` into a JSON error.
    private func makeMHDResponse(_ response: inout HTTPResponse) -> OpaquePointer? {
        switch response.body {
        case .empty:
            return MHD_create_response_from_buffer(0, nil, .RESPMEM_PERSISTENT)
        case .bytes(let bytes):
            return bytes.withUnsafeBytes { buffer in
                // MUST_COPY: MHD copies the bytes, so the array may go away when this returns.
                MHD_create_response_from_buffer(buffer.count, UnsafeMutableRawPointer(mutating: buffer.baseAddress),
                                                .RESPMEM_MUST_COPY)
            }
        case .file(let path, let offset, let length):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let missing = errno == ENOENT
                core.log?("\(logPrefix) cannot open \(path): \(String(cString: strerror(errno)))")
                response = .error(missing ? .notFound() : .internalError)
                return makeMHDResponse(&response)
            }
            // On success MHD owns `fd` and closes it when the response is destroyed; on failure it is still ours.
            guard let created = MHD_create_response_from_fd_at_offset64(UInt64(max(length, 0)), fd, UInt64(max(offset, 0))) else {
                closeDescriptor(fd)
                return nil
            }
            return created
        case .stream(let reader, let offset, let length):
            // Retained for MHD here; released by streamFree when MHD destroys the response, or right below if MHD
            // could not create it (it then never calls streamFree).
            let context = Unmanaged.passRetained(StreamBodyContext(reader: reader, offset: offset, length: length)).toOpaque()
            guard let created = MHD_create_response_from_callback(UInt64(max(length, 0)), StreamBodyContext.blockSize,
                                                                  streamRead, context, streamFree) else {
                Unmanaged<StreamBodyContext>.fromOpaque(context).release()
                return nil
            }
            return created
        }
    }

    // MARK: Completion

    /// MHD is done with the request. Never blocks.
    func completed(termination: RequestTermination) {
        // First: MHD frees the connection after this returns, so nothing may wake it any more.
        suspendable?.close()
        if let exchange {
            if termination != .completed {
                exchange.fail(termination == .daemonShutdown ? .shuttingDown : .clientDisconnected)
            }
            core.requests.unregister(exchange)
        }
        let sent = termination == .completed ? status : nil
        core.counters.finish(status: sent, bytesOut: sent == nil ? 0 : bodyBytesOut)
        core.requests.end()
        if let log = core.log {
            // Tenths of a millisecond, without printf-style formatting (this runs for every request).
            let tenths = (monotonicNanoseconds() - startedAt + 50_000) / 100_000
            let outcome = sent.map(String.init) ?? "-"
            var line = "\(logPrefix) \(outcome) \(sent == nil ? 0 : bodyBytesOut)B \(tenths / 10).\(tenths % 10)ms"
            if termination != .completed {
                line += " aborted: \(termination.logText)"
                if let status { line += " (response \(status) not sent)" }
            }
            log(line)
        }
    }

    /// `127.0.0.1 GET /path?q=1&token=REDACTED` — the request as the access log shows it.
    private var logPrefix: String {
        let method = request?.method ?? "-"
        let address = request?.remoteAddress ?? "-"
        return "\(address) \(method) \(AccessLog.redactedTarget(Self.originForm(target)))"
    }

    // MARK: Helpers

    /// Why a request's framing is ambiguous, or nil: several Content-Length values (repeated headers are joined with
    /// ", "), one that is not a number, or Content-Length together with Transfer-Encoding.
    static func framingProblem(contentLength: String?, transferEncoding: String?) -> String? {
        if let contentLength {
            let values = contentLength.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            if values.count > 1 { return "the request has more than one Content-Length (\(values.prefix(4).joined(separator: ", ")))" }
            if values.first.map({ $0.isEmpty || !$0.utf8.allSatisfy { (0x30...0x39).contains($0) } }) ?? true {
                return "Content-Length must be a number of bytes"
            }
            if transferEncoding != nil { return "the request has both Content-Length and Transfer-Encoding" }
        }
        return nil
    }

    /// Request headers with lowercased names; repeats are joined with ", ".
    private static func headers(of connection: OpaquePointer) -> [String: String] {
        var headers: [String: String] = [:]
        withUnsafeMutablePointer(to: &headers) { pointer in
            _ = MHD_get_connection_values(connection, .HEADER_KIND, collectHeader, pointer)
        }
        return headers
    }

    /// `http://host/path?q` (absolute form, as sent to proxies) → `/path?q`.
    static func originForm(_ target: String) -> String {
        guard !target.hasPrefix("/"), let schemeEnd = target.range(of: "://") else { return target }
        let afterAuthority = target[schemeEnd.upperBound...]
        guard let slash = afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        let rest = String(afterAuthority[slash...])
        return rest.hasPrefix("/") ? rest : "/" + rest
    }
}

/// What a streamed body's MHD callbacks need: the reader and the window of it the response sends.
private final class StreamBodyContext {
    /// The most MHD asks for at once (its buffer for the response).
    static let blockSize = 256 * 1024
    let reader: any HTTPBodyReader
    let offset: Int64
    let length: Int64
    init(reader: any HTTPBodyReader, offset: Int64, length: Int64) {
        self.reader = reader
        self.offset = offset
        self.length = length
    }
}

/// MHD_ContentReaderCallback: up to `max` bytes at `position` of the response. A read that fails or comes up short
/// returns MHD_CONTENT_READER_END_WITH_ERROR ((ssize_t) -2; the macro's cast does not import into Swift), which
/// closes the connection: the client sees a body shorter than its Content-Length, never wrong bytes.
private func streamRead(_ cls: UnsafeMutableRawPointer?, _ position: UInt64, _ buffer: UnsafeMutablePointer<CChar>?, _ max: Int) -> Int {
    guard let cls, let buffer else { return -2 }
    let context = Unmanaged<StreamBodyContext>.fromOpaque(cls).takeUnretainedValue()
    let left = context.length - Int64(position)
    guard left > 0 else { return -2 }
    let want = Int(min(Int64(max), left))
    do {
        let n = try context.reader.read(at: context.offset + Int64(position), into: UnsafeMutableRawBufferPointer(start: buffer, count: want))
        return n > 0 ? n : -2
    } catch {
        return -2
    }
}

/// MHD_ContentReaderFreeCallback: balances the passRetained in makeMHDResponse.
private func streamFree(_ cls: UnsafeMutableRawPointer?) {
    guard let cls else { return }
    Unmanaged<StreamBodyContext>.fromOpaque(cls).release()
}

/// MHD_KeyValueIterator for MHD_get_connection_values; `cls` points at the dictionary being filled.
private func collectHeader(_ cls: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind,
                           _ key: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?) -> MHD_Result {
    guard let cls, let key else { return MHD_Result.YES }
    let headers = cls.assumingMemoryBound(to: [String: String].self)
    let name = String(cString: key).lowercased()
    let text = value.map { String(cString: $0) } ?? ""
    if let existing = headers.pointee[name] {
        headers.pointee[name] = existing + ", " + text
    } else {
        headers.pointee[name] = text
    }
    return MHD_Result.YES
}

/// Nanoseconds of CLOCK_MONOTONIC, for request durations.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The calling thread's name as the kernel shows it.
func currentThreadName() -> String {
    var buffer = [CChar](repeating: 0, count: 32)
    ferry_current_thread_name(&buffer)
    return cStringBufferText(buffer)
}
