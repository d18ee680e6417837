/// Something that answers HTTP requests: a `Router`, or any type of the service's own.
///
/// `handle` is synchronous and may block (fsync, SQLite, a long poll): the server calls it on a thread of its own,
/// never on libmicrohttpd's few worker threads and never on the Swift concurrency pool — unless the request's
/// `route` says it is answered inline, from memory, with no body to read. It must not throw; turn failures into
/// responses (`HTTPResponse.error`), as `Router` does.
public protocol HTTPHandler: Sendable {
    /// Answers one request. `body` is nil when the request has none (no `Content-Length` > 0, not chunked).
    func handle(_ request: HTTPRequest, body: HTTPRequestBody?) -> HTTPResponse

    /// What answers this request, decided once from its header: the server calls it and no longer `handle`.
    func route(_ request: HTTPRequest) -> HTTPRoute
}

extension HTTPHandler {
    /// Never inline: `handle` on a thread of its own.
    public func route(_ request: HTTPRequest) -> HTTPRoute {
        HTTPRoute(inline: false) { body in handle(request, body: body) }
    }
}

/// How one request is answered.
public struct HTTPRoute: Sendable {
    /// True when `respond` answers a body-less request without blocking, so the server may call it on the
    /// libmicrohttpd worker thread that read it (saving a thread start and a suspend/resume). Everything a worker
    /// thread waits for, every connection on it waits for: when in doubt, false.
    public var inline: Bool
    public var respond: @Sendable (HTTPRequestBody?) -> HTTPResponse

    public init(inline: Bool, respond: @escaping @Sendable (HTTPRequestBody?) -> HTTPResponse) {
        self.inline = inline
        self.respond = respond
    }
}
