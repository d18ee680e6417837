internal import CMicroHTTPD
import Foundation
import Glibc

/// The server's state for one request, from MHD's first sight of it (URI log callback) to the completed callback.
///
/// Only MHD's callbacks touch it, and MHD calls those for one request one at a time, so it needs no lock and is not
/// Sendable. What the handler thread shares with the connection thread lives in a `RequestExchange`.
final class RequestContext {
    private enum Phase {
        /// Created; the access handler has not run yet.
        case new
        /// Body bytes go to the handler thread through `exchange`.
        case streamingBody
        /// The response is decided; remaining body bytes are read and dropped.
        case discardingBody
        /// No body: the handler runs on the final access-handler call.
        case awaitingFinalCall
        /// A response is queued.
        case responded
    }

    let core: ServerCore
    private let target: String
    private let startedAt = monotonicNanoseconds()
    private var phase = Phase.new
    private var request: HTTPRequest?
    private var exchange: RequestExchange?
    /// A response decided before the handler ran (header limit).
    private var decidedResponse: HTTPResponse?
    /// The connection closes after this response: the request's framing was ambiguous, so what follows its body
    /// on the connection cannot be trusted as the next request.
    private var closeAfterResponse = false
    private var status: Int?
    private var bodyBytesOut: Int64 = 0
    private var discardedBytes: Int64 = 0

    init(core: ServerCore, target: String) {
        self.core = core
        self.target = target
        core.requests.begin()
    }

    // MARK: Access handler

    /// One access-handler call; false asks MHD to close the connection.
    func access(connection: OpaquePointer, method: String, data: UnsafeRawPointer?, size: UnsafeMutablePointer<Int>) -> Bool {
        if case .new = phase {
            return begin(connection: connection, method: method)
        }
        let count = size.pointee
        if count > 0, let data {
            // Everything offered is consumed (or dropped) before returning: MHD would call again at once otherwise.
            size.pointee = 0
            return receive(data, count: count, connection: connection)
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

        let exchange = RequestExchange(bufferCapacity: core.configuration.uploadChunkBytes,
                                       maximumBuffers: core.uploadBufferCount, counters: core.counters)
        self.exchange = exchange
        core.requests.register(exchange)
        let body = HTTPRequestBody(declaredLength: chunked ? nil : contentLength, exchange: exchange)
        // A thread of its own, not the Swift concurrency pool: the handler blocks on the body and on disk.
        let thread = Thread { [handler = core.handler] in
            let response = handler.handle(request, body: body)
            exchange.handlerReturned(response)
        }
        thread.name = "ferry-http-body"
        thread.start()
        phase = .streamingBody

        if request.header("expect")?.lowercased() == "100-continue" {
            // The client waits for "100 Continue" before sending the body. If the handler answers without asking
            // for the body (401, 413), answer now: the body is never sent and MHD closes the connection after.
            // Clients stop waiting after a while (curl: 1 s) and send anyway; closing on a body in flight could
            // reset the connection before the client reads the answer, so past half a second take the body
            // (and discard it if the handler answers early after all).
            let (early, waited) = exchange.awaitBodyDecision(deadline: Date(timeIntervalSinceNow: 0.5))
            if waited { restartTimeout(connection) }
            if let early { return queue(early, on: connection) }
        } else {
            // No Expect: a client sends its body straight after the header. A handler that answers from the
            // header alone (413 for a declared length over the limit, 401) is answered at once when the client
            // then sends nothing for a moment, as one that declares a body it never sends (it would otherwise
            // wait for the timeout); MHD closes the connection after. With body bytes waiting, closing could reset
            // the connection before the client reads the answer: the body is read and dropped first.
            let (early, _) = exchange.awaitBodyDecision(deadline: Date(timeIntervalSinceNow: 0.05))
            if let early, ferry_mhd_client_is_quiet(connection, 50) != 0 {
                closeAfterResponse = true
                return queue(early, on: connection)
            }
        }
        return true
    }

    /// A piece of the body. Blocks while the handler's upload buffers are full (back-pressure).
    private func receive(_ data: UnsafeRawPointer, count: Int, connection: OpaquePointer) -> Bool {
        core.counters.addBytesIn(count)
        if case .streamingBody = phase, let exchange {
            let (outcome, waited) = exchange.push(data, count: count)
            if waited { restartTimeout(connection) }
            switch outcome {
            case .accepted:
                return true
            case .failed:
                return false
            case .discarded:
                phase = .discardingBody
            }
        }
        discardedBytes += Int64(count)
        if discardedBytes > core.configuration.maximumDiscardedBodyBytes {
            core.log?("\(logPrefix) reset after discarding \(discardedBytes) body bytes of an answered request")
            return false
        }
        return true
    }

    /// The final call: the whole request is in. Queue the response (MHD accepts it now).
    private func finish(connection: OpaquePointer) -> Bool {
        switch phase {
        case .new, .responded:
            return true
        case .awaitingFinalCall, .discardingBody, .streamingBody:
            break
        }
        if let decidedResponse { return queue(decidedResponse, on: connection) }
        if let exchange {
            exchange.finishBody()
            let (response, waited) = exchange.awaitResponse()
            if waited { restartTimeout(connection) }
            guard let response else { return false }
            return queue(response, on: connection)
        }
        guard let request else { return false }
        let response = core.handler.handle(request, body: nil)
        return queue(response, on: connection)
    }

    /// MHD measures inactivity across the time we block in the access handler; restart its timer after a wait so
    /// a slow handler does not get its connection timed out the moment it returns.
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
        }
    }

    // MARK: Completion

    /// MHD is done with the request. Never blocks.
    func completed(termination: RequestTermination) {
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
            let milliseconds = Double(monotonicNanoseconds() - startedAt) / 1_000_000
            let outcome = sent.map(String.init) ?? "-"
            var line = "\(logPrefix) \(outcome) \(sent == nil ? 0 : bodyBytesOut)B \(String(format: "%.1f", milliseconds))ms"
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
