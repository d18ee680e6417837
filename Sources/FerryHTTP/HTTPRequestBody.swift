/// The body of a request as it arrives, pulled by the handler chunk by chunk.
///
/// For requests with a body the server runs the handler on a thread of its own and feeds this object from
/// libmicrohttpd's connection thread through a bounded buffer: when the handler reads slower than the client sends,
/// the connection thread waits, the socket stops being read and TCP slows the client down. Memory per upload stays
/// at `HTTPServerConfiguration.uploadBufferBytes` whatever the body size.
///
/// Use it from one thread at a time (the handler's). A handler may return without reading the body (to reject it
/// early); the server then discards the rest of the upload and sends the response once the body is through.
public final class HTTPRequestBody: @unchecked Sendable {
    // @unchecked: all mutable state lives in `exchange`, behind its lock; see RequestExchange for the invariant.

    /// The `Content-Length` of the request, or nil for a chunked upload.
    public let declaredLength: Int64?
    let exchange: RequestExchange

    init(declaredLength: Int64?, exchange: RequestExchange) {
        self.declaredLength = declaredLength
        self.exchange = exchange
    }

    /// A body that has fully arrived already, for calling handlers directly in tests.
    public static func buffered(_ bytes: [UInt8]) -> HTTPRequestBody {
        HTTPRequestBody(declaredLength: Int64(bytes.count), exchange: RequestExchange(completeBody: bytes))
    }

    /// The next piece of the body; an empty buffer means the body is complete.
    ///
    /// Blocks until bytes arrive. The returned buffer points into the server's upload buffer (one copy out of the
    /// socket buffer, none after that) and stays valid until the next call to `nextChunk()` or until the handler
    /// returns: copy what you need to keep. Chunks are at most `HTTPServerConfiguration.uploadChunkBytes` long.
    ///
    /// - Throws: `HTTPError.clientDisconnected` (code `CLIENT_DISCONNECTED`) when the client went away before the
    ///   body was complete, or `HTTPError.shuttingDown` when the server gave up waiting during shutdown. The handler
    ///   should clean up (delete a partial file) and return; its response is then discarded.
    public func nextChunk() throws -> UnsafeRawBufferPointer {
        try exchange.nextChunk()
    }

    /// Body bytes handed to the handler so far.
    public var bytesReceived: Int64 {
        exchange.bytesDelivered
    }

    /// Reads the whole body into memory, for small bodies such as JSON documents.
    /// - Throws: `HTTPError.payloadTooLarge` once more than `maximumBytes` arrive (or are declared), and whatever
    ///   `nextChunk()` throws.
    public func readAll(maximumBytes: Int) throws -> [UInt8] {
        if let declaredLength, declaredLength > Int64(maximumBytes) {
            throw HTTPError.payloadTooLarge("The request body is larger than \(maximumBytes) bytes.")
        }
        var bytes: [UInt8] = []
        while true {
            let chunk = try nextChunk()
            if chunk.isEmpty { return bytes }
            guard bytes.count + chunk.count <= maximumBytes else {
                throw HTTPError.payloadTooLarge("The request body is larger than \(maximumBytes) bytes.")
            }
            bytes.append(contentsOf: chunk)
        }
    }
}
