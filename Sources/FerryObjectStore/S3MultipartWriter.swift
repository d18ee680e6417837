internal import Foundation

/// Streams one object into the store as a multipart upload: bytes are buffered into one part (8 MiB by
/// default, S3's minimum is 5 MiB) and each full part is sent before more are taken, so memory holds one part.
/// `finish` completes the upload; `abort` (or a failed `write`/`finish`) aborts it, leaving no parts behind.
public final class S3MultipartWriter {
    public let key: String
    public let uploadID: String
    private let client: S3Client
    private let partSize: Int
    private var part = Data()
    private var etags: [String] = []
    private var ended = false
    /// Bytes taken so far.
    public private(set) var size: Int64 = 0

    public init(client: S3Client, key: String, partSize: Int = 8 << 20) throws(S3Error) {
        precondition(partSize >= 5 << 20, "S3 parts other than the last are 5 MiB at least")
        self.client = client
        self.key = key
        self.partSize = partSize
        self.uploadID = try client.createMultipartUpload(key)
        part.reserveCapacity(partSize)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(S3Error) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let taken = min(partSize - part.count, rest.count)
            part.append(contentsOf: rest.prefix(taken))
            rest = rest.dropFirst(taken)
            size += Int64(taken)
            if part.count == partSize { try sendPart() }
        }
    }

    /// Sends the last part and completes the upload: the object then exists under `key`.
    public func finish() throws(S3Error) {
        if !part.isEmpty || etags.isEmpty { try sendPart() }
        do {
            try client.completeMultipartUpload(key, uploadID: uploadID, etags: etags)
            ended = true
        } catch {
            abort()
            throw error
        }
    }

    /// Aborts the upload (once; nothing after `finish`).
    public func abort() {
        guard !ended else { return }
        ended = true
        try? client.abortMultipartUpload(key, uploadID: uploadID)
    }

    private func sendPart() throws(S3Error) {
        do {
            etags.append(try client.uploadPart(key, uploadID: uploadID, number: etags.count + 1, data: part))
        } catch {
            abort()
            throw error
        }
        part.removeAll(keepingCapacity: true)
    }

    deinit { abort() }
}

/// Positional reads of one object by ranged GETs, through a read-ahead window (1 MiB by default) so that a
/// parser's small reads do not each cost a request; memory holds one window.
public final class S3ObjectReader {
    public let key: String
    public let size: Int64
    private let client: S3Client
    private let windowSize: Int
    private var window = Data()
    private var windowStart: Int64 = 0

    public init(client: S3Client, key: String, windowSize: Int = 1 << 20) throws(S3Error) {
        guard let size = try client.headObject(key) else {
            throw S3Error(code: "S3_NOT_FOUND", message: "no object \(key)", status: 404)
        }
        self.client = client
        self.key = key
        self.size = size
        self.windowSize = windowSize
    }

    /// Fills `buffer` from `offset` as far as the object goes; returns the bytes read (0 at the end).
    public func readFully(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(S3Error) -> Int {
        var done = 0
        while done < buffer.count, offset + Int64(done) < size {
            let position = offset + Int64(done)
            if position < windowStart || position >= windowStart + Int64(window.count) {
                try load(from: position, wanted: buffer.count - done)
            }
            let start = Int(position - windowStart)
            let count = min(window.count - start, buffer.count - done)
            window.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + count])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<start + count]))
            }
            done += count
        }
        return done
    }

    /// Streams bytes `range` straight to `onBody`, past the window (downloads).
    public func stream(_ range: ClosedRange<Int64>, onBody: @escaping (UnsafeRawBufferPointer) -> Bool) throws(S3Error) {
        try client.getObject(key, range: range, onBody: onBody)
    }

    private func load(from position: Int64, wanted: Int) throws(S3Error) {
        let end = min(position + Int64(max(windowSize, wanted)), size) - 1
        var fetched = Data()
        fetched.reserveCapacity(Int(end - position + 1))
        try client.getObject(key, range: position...end) { fetched.append(contentsOf: $0); return true }
        guard fetched.count == Int(end - position + 1) else {
            throw S3Error(code: "S3_REQUEST_FAILED", message: "ranged GET of \(key) answered \(fetched.count) bytes")
        }
        window = fetched
        windowStart = position
    }
}
