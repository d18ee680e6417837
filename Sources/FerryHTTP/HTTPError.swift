/// An error that knows its HTTP status and renders as the one JSON error shape of the API:
/// `{"error":{"code":"STABLE_CODE","message":"…"}}`.
///
/// `code` is machine-readable and stable across releases (clients branch on it); `message` is for people and may
/// change. Never put an underlying library's error text into `message`: it is sent to clients.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status code of the response, e.g. 404.
    public var status: Int
    /// A stable, machine-readable code in SCREAMING_SNAKE_CASE, e.g. `NOT_FOUND`.
    public var code: String
    /// A human-readable explanation sent to the client.
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status) \(code): \(message)" }
}

// The codes FerryHTTP itself produces. Handlers add their own (e.g. CHECKPOINT_NOT_FOUND) with `init`.
extension HTTPError {
    /// 400 BAD_REQUEST: the request is malformed (bad parameter, unparsable JSON body).
    public static func badRequest(_ message: String) -> HTTPError {
        HTTPError(status: 400, code: "BAD_REQUEST", message: message)
    }

    /// 404 NOT_FOUND: no route and no file for the path.
    public static func notFound(_ message: String = "No such resource.") -> HTTPError {
        HTTPError(status: 404, code: "NOT_FOUND", message: message)
    }

    /// 405 METHOD_NOT_ALLOWED: the path exists but not for this method (the response carries `Allow`).
    public static func methodNotAllowed(_ method: String) -> HTTPError {
        HTTPError(status: 405, code: "METHOD_NOT_ALLOWED", message: "Method \(method) is not allowed for this resource.")
    }

    /// 413 PAYLOAD_TOO_LARGE: the request body is larger than the handler accepts.
    public static func payloadTooLarge(_ message: String = "The request body is too large.") -> HTTPError {
        HTTPError(status: 413, code: "PAYLOAD_TOO_LARGE", message: message)
    }

    /// 416 RANGE_NOT_SATISFIABLE: the `Range` header asks for bytes the file does not have.
    public static func rangeNotSatisfiable(size: Int64) -> HTTPError {
        HTTPError(status: 416, code: "RANGE_NOT_SATISFIABLE",
                  message: "The requested range is not satisfiable for a resource of \(size) bytes.")
    }

    /// 431 REQUEST_HEADERS_TOO_LARGE: the request's header fields exceed the configured limit.
    public static func requestHeadersTooLarge(limit: Int) -> HTTPError {
        HTTPError(status: 431, code: "REQUEST_HEADERS_TOO_LARGE",
                  message: "The request header fields exceed \(limit) bytes.")
    }

    /// 499 CLIENT_DISCONNECTED: thrown by `HTTPRequestBody.nextChunk()` when the client went away mid-body.
    /// Never reaches the client (it is gone); the status only shows up in logs and metrics.
    public static let clientDisconnected = HTTPError(
        status: 499, code: "CLIENT_DISCONNECTED", message: "The client disconnected before the request body was complete.")

    /// 500 INTERNAL_ERROR: something failed on the server; details are logged, never sent.
    public static let internalError = HTTPError(
        status: 500, code: "INTERNAL_ERROR", message: "The server failed to handle the request.")

    /// 503 SERVER_SHUTTING_DOWN: the server stopped before the request could finish.
    public static let shuttingDown = HTTPError(
        status: 503, code: "SERVER_SHUTTING_DOWN", message: "The server is shutting down.")
}
