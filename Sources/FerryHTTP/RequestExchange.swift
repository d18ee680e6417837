import Foundation

/// The meeting point of the three parties of a request answered off libmicrohttpd's threads:
/// the access handler on MHD's worker thread (produces body bytes, then collects the response; it never blocks —
/// when it has to wait it suspends its connection and is woken through `connection`),
/// the handler thread (consumes body bytes, then delivers the response),
/// and the server (cancels everything when shutdown runs out of time).
///
/// Body bytes travel through a bounded set of fixed-size buffers. The producer appends to the newest queued buffer
/// while it has room (so a slow consumer gets large chunks); when every buffer is in use it takes what fits and
/// suspends the connection until the consumer frees a buffer: that is the upload's back-pressure (MHD stops reading
/// the socket, TCP slows the client). Buffers the consumer has finished with are reused.
final class RequestExchange: @unchecked Sendable {
    // @unchecked Sendable invariant: every `var` below is read and written only with `condition` locked. The bytes of
    // `held` are read by the consumer without the lock, which is safe because a held buffer is neither in `queue`
    // (so the producer never writes it) nor in `spare` until the consumer's next call puts it there.
    private let condition = NSCondition()
    private let bufferCapacity: Int
    private let maximumBuffers: Int
    private let counters: StatisticsCounters?
    /// The connection to wake when the producer waits for something; nil for a body that is complete from the start.
    private let connection: SuspendedConnection?

    private var queue: [ChunkBuffer] = []
    private var spare: [ChunkBuffer] = []
    private var held: ChunkBuffer?
    private var bodyComplete = false
    private var failure: HTTPError?
    private var consumerStarted = false
    private var consumerFinished = false
    private var response: HTTPResponse?
    private var delivered: Int64 = 0
    /// The producer is about to suspend until the next change: a freed buffer, a decision, a response, a failure.
    private var producerWaiting = false

    /// What became of bytes offered by the producer.
    enum PushOutcome {
        /// Queued for the handler.
        case accepted
        /// The handler has returned; the bytes were dropped so the request can finish and the response go out.
        case discarded
        /// The request failed (client gone, server shutting down); stop feeding it.
        case failed
    }

    /// What the producer learns about the handler's use of the body, for `Expect: 100-continue` and early answers.
    enum BodyDecision {
        /// The handler has neither asked for the body nor answered yet.
        case undecided
        /// The handler reads the body.
        case wanted
        /// The handler answered without reading the body.
        case answered(HTTPResponse)
        /// The request failed.
        case failed
    }

    /// - Parameters:
    ///   - counters: where the bytes of allocated upload buffers are accounted (nil: nowhere).
    ///   - connection: woken whenever the producer waits and something it waits for happens.
    init(bufferCapacity: Int, maximumBuffers: Int, counters: StatisticsCounters? = nil, connection: SuspendedConnection? = nil) {
        self.bufferCapacity = max(bufferCapacity, 4096)
        self.maximumBuffers = max(maximumBuffers, 2)
        self.counters = counters
        self.connection = connection
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

    // MARK: Producer (MHD's worker thread, inside the access handler; never blocks)

    /// Copies as many of `count` bytes as fit into the buffers and returns how many it took. When fewer than
    /// `count` fit, the connection is woken as soon as the consumer frees a buffer: suspend it and offer the rest then.
    func offer(_ bytes: UnsafeRawPointer, count: Int) -> (outcome: PushOutcome, consumed: Int) {
        condition.lock()
        defer { condition.unlock() }
        var offset = 0
        while offset < count {
            if failure != nil { return (.failed, offset) }
            if consumerFinished { return (.discarded, offset) }
            if let tail = queue.last, tail.count < bufferCapacity {
                let n = min(bufferCapacity - tail.count, count - offset)
                (tail.storage + tail.count).copyMemory(from: bytes + offset, byteCount: n)
                tail.count += n
                offset += n
                condition.broadcast()
            } else if queue.count + (held == nil ? 0 : 1) < maximumBuffers {
                queue.append(spare.popLast() ?? ChunkBuffer(capacity: bufferCapacity, counters: counters))
            } else {
                producerWaiting = true
                break
            }
        }
        return (.accepted, offset)
    }

    /// The last body byte has been offered.
    func finishBody() {
        condition.lock()
        bodyComplete = true
        condition.broadcast()
        condition.unlock()
    }

    /// Fails the request: a consumer waiting for bytes of an incomplete body throws `error`, and the producer is
    /// woken to give up. The first failure wins. Never blocks (safe in MHD's completed callback).
    func fail(_ error: HTTPError) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        wakeProducer()
        condition.unlock()
    }

    /// Whether the handler has asked for the body or answered without it. When undecided, the connection is woken
    /// once it decides.
    func bodyDecision() -> BodyDecision {
        condition.lock()
        defer { condition.unlock() }
        if consumerStarted { return .wanted }
        if let response { return .answered(response) }
        if failure != nil { return .failed }
        producerWaiting = true
        return .undecided
    }

    /// The handler's response; nil while it works (the connection is then woken when it answers or the request
    /// fails). `failed` means the request failed first and the connection should be closed.
    func takeResponse() -> (response: HTTPResponse?, failed: Bool) {
        condition.lock()
        defer { condition.unlock() }
        if let response { return (response, false) }
        if failure != nil { return (nil, true) }
        producerWaiting = true
        return (nil, false)
    }

    /// Must be called with the lock held.
    private func wakeProducer() {
        guard producerWaiting else { return }
        producerWaiting = false
        connection?.wake()
    }

    // MARK: Consumer (handler thread)

    func nextChunk() throws -> UnsafeRawBufferPointer {
        condition.lock()
        defer { condition.unlock() }
        recycleHeld()
        if !consumerStarted {
            consumerStarted = true
            condition.broadcast()
            wakeProducer()
        }
        while queue.isEmpty && !bodyComplete && failure == nil && !consumerFinished {
            condition.wait()
        }
        if let failure, !bodyComplete { throw failure }
        guard !consumerFinished, !queue.isEmpty else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let buffer = queue.removeFirst()
        held = buffer
        delivered += Int64(buffer.count)
        // Taking a buffer off the queue frees no slot (the held buffer still counts); recycling it next call does.
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
        wakeProducer()
        condition.unlock()
    }

    /// Must be called with the lock held.
    private func recycleHeld() {
        guard let buffer = held else { return }
        held = nil
        buffer.count = 0
        spare.append(buffer)
        condition.broadcast()
        wakeProducer()
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
