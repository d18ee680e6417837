import Foundation

/// Limits and sizes of an `HTTPServer`. The defaults suit a catalog service on a small machine that receives
/// multi-GiB uploads: a pool of epoll worker threads (one per core), 128 KiB of libmicrohttpd memory per
/// connection, 2 MiB of upload buffer per request with a body.
public struct HTTPServerConfiguration: Sendable {
    /// Connections open at once; libmicrohttpd refuses further ones. An idle connection costs a descriptor and the
    /// touched pages of its memory pool, no thread; the server raises its soft descriptor limit to fit.
    public var maximumConnections: Int
    /// Connections open at once from one IP address; 0 means no separate limit. This is what keeps one client
    /// (idle connections, slowloris) from taking the capacity every other client needs.
    public var maximumConnectionsPerIP: Int
    /// Seconds of inactivity allowed while a request's header is arriving (and between requests on a keep-alive
    /// connection); once the header is in, `connectionTimeoutSeconds` applies. 0: the same as the connection timeout.
    public var headerTimeoutSeconds: Int
    /// Seconds of inactivity after which a connection is closed; 0 disables the timeout. Time a handler spends
    /// working does not count: the connection is suspended meanwhile, and libmicrohttpd restarts its timer on resume.
    public var connectionTimeoutSeconds: Int
    /// libmicrohttpd's memory pool per connection (request line, headers, read buffer). MHD clears the whole pool
    /// for each request, so larger is slower for small requests; 32–128 KiB is the measured sweet spot.
    /// Requests whose header does not fit get libmicrohttpd's own 431 response.
    public var connectionMemoryLimit: Int
    /// Total size of the request line and header fields accepted; larger requests get a JSON 431
    /// REQUEST_HEADERS_TOO_LARGE. Effectively capped by `connectionMemoryLimit`.
    public var maximumHeaderBytes: Int
    /// The size of one upload buffer, i.e. the largest chunk `HTTPRequestBody.nextChunk()` returns.
    public var uploadChunkBytes: Int
    /// Upload buffer memory per request with a body (rounded to whole chunks, at least two). This bounds memory
    /// whatever the upload size: when the handler reads slower than the client sends, the client is slowed down.
    public var uploadBufferBytes: Int
    /// When a handler answers without reading the whole body (e.g. 413, 401), the rest is read and discarded so the
    /// response can be sent and the connection kept. Beyond this many discarded bytes the connection is reset instead.
    /// Clients that send `Expect: 100-continue` (curl does for bodies over 1 MiB) never send the body in that case.
    public var maximumDiscardedBodyBytes: Int64
    /// The `listen(2)` backlog.
    public var listenBacklog: Int
    /// libmicrohttpd's worker threads, each with its own epoll set; 0: one per processor, at least two. Handlers
    /// that may block run on threads of their own, so this many is enough however slow they are.
    public var workerThreads: Int

    public init(maximumConnections: Int = 4096,
                maximumConnectionsPerIP: Int = 128,
                headerTimeoutSeconds: Int = 10,
                connectionTimeoutSeconds: Int = 60,
                connectionMemoryLimit: Int = 128 * 1024,
                maximumHeaderBytes: Int = 32 * 1024,
                uploadChunkBytes: Int = 256 * 1024,
                uploadBufferBytes: Int = 2 * 1024 * 1024,
                maximumDiscardedBodyBytes: Int64 = 1 << 30,
                listenBacklog: Int = 128,
                workerThreads: Int = 0) {
        self.maximumConnections = maximumConnections
        self.maximumConnectionsPerIP = maximumConnectionsPerIP
        self.headerTimeoutSeconds = headerTimeoutSeconds
        self.connectionTimeoutSeconds = connectionTimeoutSeconds
        self.connectionMemoryLimit = connectionMemoryLimit
        self.maximumHeaderBytes = maximumHeaderBytes
        self.uploadChunkBytes = uploadChunkBytes
        self.uploadBufferBytes = uploadBufferBytes
        self.maximumDiscardedBodyBytes = maximumDiscardedBodyBytes
        self.listenBacklog = listenBacklog
        self.workerThreads = workerThreads
    }

    /// The worker pool's size as started.
    var effectiveWorkerThreads: Int {
        workerThreads > 0 ? workerThreads : max(2, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The timeout while a header arrives: the header timeout, never longer than the connection timeout.
    var idleHeaderTimeoutSeconds: Int {
        guard headerTimeoutSeconds > 0 else { return connectionTimeoutSeconds }
        guard connectionTimeoutSeconds > 0 else { return headerTimeoutSeconds }
        return min(headerTimeoutSeconds, connectionTimeoutSeconds)
    }
}
