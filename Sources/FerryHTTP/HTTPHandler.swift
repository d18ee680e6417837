/// Something that answers HTTP requests: a `Router`, or any type of the service's own.
///
/// `handle` is synchronous and may block (fsync, SQLite): the server calls it on a libmicrohttpd connection thread
/// for requests without a body, and on a dedicated thread for requests with one — never on the Swift concurrency pool.
/// It must not throw; turn failures into responses (`HTTPResponse.error`), as `Router` does.
public protocol HTTPHandler: Sendable {
    /// Answers one request. `body` is nil when the request has none (no `Content-Length` > 0, not chunked).
    func handle(_ request: HTTPRequest, body: HTTPRequestBody?) -> HTTPResponse
}
