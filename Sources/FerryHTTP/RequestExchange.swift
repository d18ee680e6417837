import Foundation

/// The meeting point of the three parties of a request with a body:
/// libmicrohttpd's connection thread (produces body bytes, then waits for the response),
/// the handler thread (consumes body bytes, then delivers the response),
/// and the server (cancels everything when shutdown runs out of time).
///
/// Body bytes travel through a bounded set of fixed-size buffers. The producer appends to the newest queued buffer
/// while it has room (so a slow consumer gets large chunks) and waits when every buffer is in use: that wait is the
/// upload's back-pressure. Buffers the consumer has finished with are reused.
final class RequestExchange: @unchecked Sendable {
    // @unchecked Sendable invariant: every `var` below is read and written only with `condition` locked. The bytes of
    // `held` are read by the consumer without the lock, which is safe because a held buffer is neither in `queue`
    // (so the producer never writes it) nor in `spare` until the consumer's next call puts it there.
    private let condition = NSCondition()
    private let bufferCapacity: Int
    private let maximumBuffers: Int
    private let counters: StatisticsCounters?

    private var queue: [ChunkBuffer] = []
    private var spare: [ChunkBuffer] = []
    private var held: ChunkBuffer?
    private var bodyComplete = false
    private var failure: HTTPError?
    private var consumerStarted = false
    private var consumerFinished = false
    private var response: HTTPResponse?
    private var delivered: Int64 = 0

    /// What became of bytes offered by the producer.
    enum PushOutcome {
        /// Queued for the handler.
        case accepted
        /// The handler has returned; the bytes were dropped so the request can finish and the response go out.
        case discarded
        /// The request failed (client gone, server shutting down); stop feeding it.
        case failed
    }

    /// - Parameter counters: where the bytes of allocated upload buffers are accounted (nil: nowhere).
    init(bufferCapacity: Int, maximumBuffers: Int, counters: StatisticsCounters? = nil) {
        self.bufferCapacity = max(bufferCapacity, 4096)
        self.maximumBuffers = max(maximumBuffers, 2)
        self.counters = counters
    }

    /// An exchange whose body is already complete (for `HTTPRequestBody.buffered`).
    convenience init(completeBody bytes: [UInt8]) {
        self.init(bufferCapacity: max(bytes.count, 1), maximumBuffers: 2)
        if !bytes.isEmpty {
            let buffer = ChunkBuffer(capacity: bytes.count, counters: nil)
            bytes.withUnsafeBytes { buffer.storage.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            buffer.count = bytes.count
            queue.append(buffer)
        }
        bodyComplete = true
    }

    var bytesDelivered: Int64 {
        condition.lock()
        defer { condition.unlock() }
        return delivered
    }

    // MARK: Producer (connection thread)

    /// Copies `count` bytes into the queue, waiting while all buffers are full.
    /// `waited` tells the caller it blocked (so it can restart the connection's inactivity timer).
    func push(_ bytes: UnsafeRawPointer, count: Int) -> (outcome: PushOutcome, waited: Bool) {
        condition.lock()
        defer { condition.unlock() }
        var offset = 0
        var waited = false
        while offset < count {
            if failure != nil { return (.failed, waited) }
            if consumerFinished { return (.discarded, waited) }
            if let tail = queue.last, tail.count < bufferCapacity {
                let n = min(bufferCapacity - tail.count, count - offset)
                (tail.storage + tail.count).copyMemory(from: bytes + offset, byteCount: n)
                tail.count += n
                offset += n
                condition.broadcast()
            } else if queue.count + (held == nil ? 0 : 1) < maximumBuffers {
                queue.append(spare.popLast() ?? ChunkBuffer(capacity: bufferCapacity, counters: counters))
            } else {
                waited = true
                condition.wait()
            }
        }
        return (.accepted, waited)
    }

    /// The last body byte has been pushed.
    func finishBody() {
        condition.lock()
        bodyComplete = true
        condition.broadcast()
        condition.unlock()
    }

    /// Fails the request: a consumer waiting for bytes of an incomplete body throws `error`, a producer stops,
    /// and whoever waits for the response gives up. The first failure wins. Never blocks (safe in MHD's completed callback).
    func fail(_ error: HTTPError) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    /// For `Expect: 100-continue`: waits until the handler either asks for the body or answers without it, or until
    /// `deadline`. Returns the response in the second case, so it can go out before the client sends the body.
    func awaitBodyDecision(deadline: Date) -> (response: HTTPResponse?, waited: Bool) {
        condition.lock()
        defer { condition.unlock() }
        var waited = false
        while !consumerStarted && response == nil && failure == nil {
            waited = true
            if !condition.wait(until: deadline) { break }
        }
        return (consumerStarted ? nil : response, waited)
    }

    /// Waits for the handler's response; nil when the request failed first (the connection should be closed).
    func awaitResponse() -> (response: HTTPResponse?, waited: Bool) {
        condition.lock()
        defer { condition.unlock() }
        var waited = false
        while response == nil && failure == nil {
            waited = true
            condition.wait()
        }
        return (response, waited)
    }

    // MARK: Consumer (handler thread)

    func nextChunk() throws -> UnsafeRawBufferPointer {
        condition.lock()
        defer { condition.unlock() }
        recycleHeld()
        if !consumerStarted {
            consumerStarted = true
            condition.broadcast()
        }
        while queue.isEmpty && !bodyComplete && failure == nil && !consumerFinished {
            condition.wait()
        }
        if let failure, !bodyComplete { throw failure }
        guard !consumerFinished, !queue.isEmpty else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let buffer = queue.removeFirst()
        held = buffer
        delivered += Int64(buffer.count)
        // The producer may be waiting for a free buffer slot; taking one off the queue does not free a slot
        // (the held buffer still counts) but waking it is cheap and keeps the rule simple.
        condition.broadcast()
        return UnsafeRawBufferPointer(start: buffer.storage, count: buffer.count)
    }

    /// The handler has returned: drop buffered bytes, let the producer discard the rest, and hand over the response.
    func handlerReturned(_ response: HTTPResponse) {
        condition.lock()
        consumerFinished = true
        recycleHeld()
        queue.removeAll()
        spare.removeAll()
        self.response = response
        condition.broadcast()
        condition.unlock()
    }

    /// Must be called with the lock held.
    private func recycleHeld() {
        guard let buffer = held else { return }
        held = nil
        buffer.count = 0
        spare.append(buffer)
        condition.broadcast()
    }
}

/// One fixed-size, heap-allocated upload buffer; freed when the last reference goes.
final class ChunkBuffer {
    let storage: UnsafeMutableRawPointer
    let capacity: Int
    var count = 0
    private let counters: StatisticsCounters?

    init(capacity: Int, counters: StatisticsCounters?) {
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        self.capacity = capacity
        self.counters = counters
        counters?.addUploadBufferBytes(capacity)
    }

    deinit {
        storage.deallocate()
        counters?.addUploadBufferBytes(-capacity)
    }
}
