/// Something that answers HTTP requests: a `Router`, or any type of the service's own.
///
/// `handle` is synchronous and may block (fsync, SQLite, a long poll): the server calls it on a thread of its own,
/// never on libmicrohttpd's few worker threads and never on the Swift concurrency pool — unless `answersInline`
/// says the request is answered at once, from memory or one indexed read, with no body to read. It must not throw;
/// turn failures into responses (`HTTPResponse.error`), as `Router` does.
public protocol HTTPHandler: Sendable {
    /// Answers one request. `body` is nil when the request has none (no `Content-Length` > 0, not chunked).
    func handle(_ request: HTTPRequest, body: HTTPRequestBody?) -> HTTPResponse

    /// True when `handle` answers this body-less request without blocking, so the server may call it on the
    /// libmicrohttpd worker thread that read it (saving a thread start and a suspend/resume). Everything a worker
    /// thread waits for, every connection on it waits for: when in doubt, false.
    func answersInline(_ request: HTTPRequest) -> Bool
}

extension HTTPHandler {
    public func answersInline(_ request: HTTPRequest) -> Bool { false }
}
