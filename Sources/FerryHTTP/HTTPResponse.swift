import Foundation

/// A response for the server to send: status, headers and one of three kinds of body.
///
/// `Content-Length` is always computed by the server from the body; a `Content-Length` or `Transfer-Encoding`
/// header set here is ignored. For `HEAD` requests the server sends the headers of the body (including its length)
/// and never the body itself.
public struct HTTPResponse: Sendable {
    /// What follows the headers.
    public enum Body: Sendable, Equatable {
        /// No body (`Content-Length: 0`).
        case empty
        /// Bytes held in memory (copied once into libmicrohttpd).
        case bytes([UInt8])
        /// `length` bytes of a file starting at `offset`, sent with `sendfile(2)` without passing through memory.
        /// The file is opened when the response is queued; if that fails the client gets a JSON 404 or 500.
        case file(path: String, offset: Int64, length: Int64)
        /// `length` bytes that `reader` produces from `offset` on, pulled by libmicrohttpd as the connection takes
        /// them (an encrypted blob, decrypted chunk by chunk): memory stays at what one read holds. A failing read
        /// closes the connection, so the client sees a short body, never wrong bytes.
        case stream(reader: any HTTPBodyReader, offset: Int64, length: Int64)

        /// The number of body bytes.
        public var count: Int64 {
            switch self {
            case .empty: 0
            case .bytes(let bytes): Int64(bytes.count)
            case .file(_, _, let length): length
            case .stream(_, _, let length): length
            }
        }

        public static func == (lhs: Body, rhs: Body) -> Bool {
            switch (lhs, rhs) {
            case (.empty, .empty): true
            case let (.bytes(a), .bytes(b)): a == b
            case let (.file(p1, o1, l1), .file(p2, o2, l2)): p1 == p2 && o1 == o2 && l1 == l2
            case let (.stream(r1, o1, l1), .stream(r2, o2, l2)): r1 === r2 && o1 == o2 && l1 == l2
            default: false
            }
        }
    }

    /// The HTTP status code, 100...999.
    public var status: Int
    /// Header fields in order; names are sent as given.
    public var headers: [(String, String)]
    public var body: Body

    public init(status: Int = 200, headers: [(String, String)] = [], body: Body = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header, looked up case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.0.lowercased() == wanted }?.1
    }

    /// A copy with one more header (an existing header of the same name is kept).
    public func adding(header name: String, _ value: String) -> HTTPResponse {
        var copy = self
        copy.headers.append((name, value))
        return copy
    }

    /// The value encoded as JSON (`Content-Type: application/json`). An encoding failure becomes a 500 INTERNAL_ERROR.
    public static func json(_ value: some Encodable, status: Int = 200) -> HTTPResponse {
        do {
            let data = try jsonEncoder.encode(value)
            return HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: .bytes(Array(data)))
        } catch {
            return .error(.internalError)
        }
    }

    /// The JSON error shape `{"error":{"code":"…","message":"…"}}` with the error's status.
    public static func error(_ error: HTTPError) -> HTTPResponse {
        let envelope = ErrorEnvelope(error: .init(code: error.code, message: error.message))
        // Encoding two strings cannot fail; the fallback only keeps the compiler content without a force-try.
        let data = (try? jsonEncoder.encode(envelope)) ?? Data(#"{"error":{"code":"INTERNAL_ERROR","message":""}}"#.utf8)
        return HTTPResponse(status: error.status, headers: [("Content-Type", "application/json")], body: .bytes(Array(data)))
    }

    /// Plain text (`Content-Type: text/plain; charset=utf-8`), e.g. for a Prometheus `/metrics` endpoint.
    public static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", contentType)], body: .bytes(Array(text.utf8)))
    }

    // A fresh encoder per response: cheap, and no shared mutable class instance across handler threads.
    private static var jsonEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// What a ``HTTPResponse/Body/stream(reader:offset:length:)`` body reads from. Called on libmicrohttpd's worker
/// thread, one call at a time per response: it should answer from memory or the page cache, not wait on peers.
public protocol HTTPBodyReader: AnyObject, Sendable {
    /// Copies up to `buffer.count` bytes at `offset` into `buffer`; returns how many (0: the end). A throw ends
    /// the response by closing the connection.
    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// `{"error":{"code":…,"message":…}}`
private struct ErrorEnvelope: Encodable {
    struct Detail: Encodable {
        var code: String
        var message: String
    }

    var error: Detail
}
