import Foundation

/// Counters of a running `HTTPServer`, for a `/metrics` endpoint. A snapshot: read `HTTPServer.statistics` again
/// for fresh values.
public struct HTTPStatistics: Sendable, Equatable {
    /// Requests that finished, however they ended.
    public var requests: Int64 = 0
    /// Responses sent completely, by status class.
    public var informational: Int64 = 0
    public var successful: Int64 = 0
    public var redirection: Int64 = 0
    public var clientErrors: Int64 = 0
    public var serverErrors: Int64 = 0
    /// Requests that ended without a complete response: client gone, timeout, shutdown, or rejected by
    /// libmicrohttpd itself (malformed request, header too large for the connection memory).
    public var aborted: Int64 = 0
    /// Request body bytes received (including bytes read only to be discarded).
    public var bytesIn: Int64 = 0
    /// Response body bytes of completely sent responses (none for HEAD and 304).
    public var bytesOut: Int64 = 0
    /// Requests whose handler ran on a thread of its own (the rest were answered inline on a worker thread, from
    /// memory: see `HTTPRoute.inline`).
    public var handlerThreads: Int64 = 0
    /// Requests being handled now.
    public var inFlight: Int = 0
    /// Memory held right now by upload buffers (at most `HTTPServerConfiguration.uploadBufferBytes` per request
    /// with a body).
    public var uploadBufferBytes: Int64 = 0

    public init() {}

    /// Completed responses whose status is in `100 * statusClass ..< 100 * (statusClass + 1)`.
    public func responses(statusClass: Int) -> Int64 {
        switch statusClass {
        case 1: informational
        case 2: successful
        case 3: redirection
        case 4: clientErrors
        case 5: serverErrors
        default: 0
        }
    }
}

/// The server's counters behind one lock (increments come from every connection thread).
final class StatisticsCounters: @unchecked Sendable {
    // @unchecked Sendable invariant: `values` is only touched with `lock` held.
    private let lock = NSLock()
    private var values = HTTPStatistics()

    func addBytesIn(_ count: Int) {
        lock.lock()
        values.bytesIn += Int64(count)
        lock.unlock()
    }

    func addUploadBufferBytes(_ count: Int) {
        lock.lock()
        values.uploadBufferBytes += Int64(count)
        lock.unlock()
    }

    func addHandlerThread() {
        lock.lock()
        values.handlerThreads += 1
        lock.unlock()
    }

    /// A finished request: `status` nil when no response went out completely.
    func finish(status: Int?, bytesOut: Int64) {
        lock.lock()
        defer { lock.unlock() }
        values.requests += 1
        guard let status else {
            values.aborted += 1
            return
        }
        values.bytesOut += bytesOut
        switch status / 100 {
        case 1: values.informational += 1
        case 2: values.successful += 1
        case 3: values.redirection += 1
        case 4: values.clientErrors += 1
        default: values.serverErrors += 1
        }
    }

    func snapshot(inFlight: Int) -> HTTPStatistics {
        lock.lock()
        var copy = values
        lock.unlock()
        copy.inFlight = inFlight
        return copy
    }
}
