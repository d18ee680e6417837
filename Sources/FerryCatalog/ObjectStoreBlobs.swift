internal import FerryObjectStore
internal import Foundation

/// The scale-out backend: blobs as objects in an S3-compatible store, shared by every replica.
///
/// `<prefix>/blobs/sha256/<digest>` holds a blob, `<prefix>/blobs/sha256/<digest>.key` a sealed blob's wrapped data
/// key, and `<prefix>/uploads/<uuid>` an upload being written (a multipart upload streamed in 8 MiB parts while
/// the same bytes are hashed and parsed: nothing is kept whole, on disk or in memory). A finished upload is
/// copied server-side under its digest (the digest is known only at its end) and the temporary object deleted;
/// a second upload of the same bytes finds the blob and deletes its own. The copy is one request up to 5 GiB
/// and 1 GiB part copies above; the store never sends the bytes back through Ferry.
final class ObjectStoreBlobs: BlobBackend {
    let client: S3Client

    init(client: S3Client) {
        self.client = client
    }

    var location: String {
        let prefix = client.configuration.prefix
        return "s3://\(client.configuration.bucket)" + (prefix.isEmpty ? "" : "/\(prefix)")
    }

    private func blobKey(_ digest: String) -> String { client.key("blobs", "sha256", digest) }
    private func keyKey(_ digest: String) -> String { blobKey(digest) + ".key" }
    var uploadsPrefix: String { client.key("uploads") + "/" }

    func localPath(for digest: String) -> String? { nil }

    func contains(_ digest: String) -> Bool {
        do {
            return try client.headObject(blobKey(digest)) != nil
        } catch {
            return true
        }
    }

    func beginSink() throws -> any BlobUploadSink {
        try ObjectUpload(client: client, key: client.key("uploads", UUID().uuidString.lowercased()))
    }

    func commit(_ sink: any BlobUploadSink, digest: String, wrappedKey: WrappedDataKey?) throws {
        guard let upload = sink as? ObjectUpload else { preconditionFailure("an object store commits its own uploads") }
        try Self.mapping {
            if let wrappedKey {
                try client.putObject(keyKey(digest), data: Data(wrappedKey.bytes))
            } else {
                try client.deleteObject(keyKey(digest))
            }
            try client.copyLarge(from: upload.key, to: blobKey(digest), size: upload.size)
        }
        upload.markCommitted()
        // The temporary object is garbage from here on; a failure to delete it only leaves it to the start-up sweep.
        try? client.deleteObject(upload.key)
    }

    func open(_ digest: String, keyContext: String) throws -> (bytes: any BlobBytes, key: WrappedDataKey?) {
        try Self.mapping {
            guard let size = try client.headObject(blobKey(digest)) else {
                throw CatalogError(.storageFailed, "blob \(digest.prefix(12)) is not in \(location)")
            }
            var key: WrappedDataKey?
            do {
                let data = try client.getObjectData(keyKey(digest))
                key = try WrappedDataKey(bytes: Array(data), context: keyContext)
            } catch let error as S3Error where error.status == 404 {
                key = nil
            }
            return (S3BlobObject(client: client, key: blobKey(digest), size: size), key)
        }
    }

    func isSealed(_ digest: String) -> Bool {
        (try? client.headObject(keyKey(digest))) != nil
    }

    func remove(_ digest: String) {
        try? client.deleteObject(blobKey(digest))
        try? client.deleteObject(keyKey(digest))
    }

    func allDigests() throws -> Set<String> {
        let prefix = client.key("blobs", "sha256") + "/"
        return try Self.mapping {
            Set(try client.listObjects(prefix: prefix).compactMap { object -> String? in
                let name = object.key.dropFirst(prefix.count)
                return BlobStore.isDigest(name) ? String(name) : nil
            })
        }
    }

    func freeBytes() -> Int64? { nil }

    /// Removes what uploads that ended without a commit left (a replica killed mid-upload): multipart uploads
    /// and temporary objects under `uploads/` started before `cutoff`. Replicas still writing theirs are left
    /// alone by giving a cutoff in the past; a store only one process writes gives now.
    func removeLeftovers(startedBefore cutoff: Date) throws -> Int {
        try Self.mapping {
            var removed = 0
            for upload in try client.listMultipartUploads(prefix: uploadsPrefix) where (upload.initiated ?? .distantPast) < cutoff {
                try client.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
                removed += 1
            }
            for object in try client.listObjects(prefix: uploadsPrefix) where (object.modified ?? .distantPast) < cutoff {
                try client.deleteObject(object.key)
                removed += 1
            }
            return removed
        }
    }

    /// Runs `body`, reporting the object store's errors with the catalog's code.
    static func mapping<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as S3Error {
            throw CatalogError(.objectStoreFailed, error.message, underlying: error.code)
        }
    }
}

/// An upload streamed to a temporary object as a multipart upload; aborted (or deleted, once complete) unless
/// committed.
final class ObjectUpload: BlobUploadSink {
    let key: String
    private let client: S3Client
    private let writer: S3MultipartWriter
    private var finished = false
    private var committed = false

    init(client: S3Client, key: String) throws {
        self.client = client
        self.key = key
        writer = try ObjectStoreBlobs.mapping { try S3MultipartWriter(client: client, key: key) }
    }

    deinit {
        if !committed { discard() }
    }

    var size: Int64 { writer.size }
    var writebackDescriptor: Int32 { -1 }
    var supportsLiveReads: Bool { false }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try ObjectStoreBlobs.mapping { try writer.write(bytes) }
    }

    func finish() throws {
        guard !finished else { return }
        try ObjectStoreBlobs.mapping { try writer.finish() }
        finished = true
    }

    func bytes(growing: Bool) throws -> any BlobBytes {
        precondition(!growing && finished, "an object is read once its upload is complete")
        return S3BlobObject(client: client, key: key, size: writer.size)
    }

    func discard() {
        committed = true
        if finished { try? client.deleteObject(key) } else { writer.abort() }
    }

    func markCommitted() { committed = true }
}

/// An object's bytes for a ``BlobReader``. A read that jumps (the archive reader's second pass, a small range)
/// is one ranged GET of a 1 MiB window; reads that go on where the last one ended (a download, a parse) are
/// served from one streaming GET to the object's end that a thread of its own keeps at most 4 MiB ahead, so a
/// download costs one request and its reads wait on the store only while the stream is behind. Memory is the
/// window plus the stream's buffer; a copy for another reader has its own.
final class S3BlobObject: BlobBytes, @unchecked Sendable {
    // @unchecked Sendable invariant: `window`, `windowStart`, `lastEnd` and `stream` are only touched with `lock` held.
    let client: S3Client
    let key: String
    let size: Int64
    let modified: Int64
    private let lock = NSLock()
    private var window = Data()
    private var windowStart: Int64 = 0
    private var lastEnd: Int64 = -1
    private var stream: ObjectStream?
    static let windowSize = 1 << 20

    init(client: S3Client, key: String, size: Int64, modified: Int64 = Int64(Date().timeIntervalSince1970)) {
        self.client = client
        self.key = key
        self.size = size
        self.modified = modified
    }

    deinit { stream?.cancel() }

    var localPath: String? { nil }
    func status() throws -> (size: Int64, modified: Int64) { (size, modified) }
    func sharing() -> any BlobBytes { S3BlobObject(client: client, key: key, size: size, modified: modified) }

    func readFully(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        var done = 0
        while done < buffer.count, offset + Int64(done) < size {
            let position = offset + Int64(done)
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
            if position >= windowStart && position < windowStart + Int64(window.count) {
                let start = Int(position - windowStart)
                let count = min(window.count - start, target.count)
                window.withUnsafeBytes { source in
                    target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<start + count]))
                }
                done += count
                continue
            }
            if let stream, stream.position == position {
                done += try stream.read(into: target)
                continue
            }
            stream?.cancel()
            stream = nil
            if position == lastEnd {
                // Going on where the last read ended: stream the rest instead of window after window.
                stream = ObjectStream(client: client, key: key, range: position...(size - 1))
                window = Data()
                continue
            }
            try load(from: position)
        }
        lastEnd = offset + Int64(done)
        return done
    }

    private func load(from position: Int64) throws {
        let end = min(position + Int64(Self.windowSize), size) - 1
        var fetched = Data()
        fetched.reserveCapacity(Int(end - position + 1))
        try ObjectStoreBlobs.mapping {
            try client.getObject(key, range: position...end) { fetched.append(contentsOf: $0); return true }
        }
        guard fetched.count == Int(end - position + 1) else {
            throw CatalogError(.objectStoreFailed, "a ranged GET of \(key) answered \(fetched.count) bytes, not \(end - position + 1)")
        }
        window = fetched
        windowStart = position
    }
}

/// One streaming GET of a range, run on a thread of its own into a buffer of at most 4 MiB, taken in order by
/// `read`. Cancelled (the transfer stops) when its reader goes or jumps.
final class ObjectStream: @unchecked Sendable {
    // @unchecked Sendable invariant: everything but `range` is only touched with `condition` locked.
    private let condition = NSCondition()
    private var buffered = Data()
    /// Bytes of `buffered` already read (dropped in one move once they are many, not at every read).
    private var consumed = 0
    private var ended = false
    private var failure: (any Error)?
    private var cancelled = false
    private(set) var position: Int64
    private let range: ClosedRange<Int64>
    static let bufferLimit = 4 << 20

    init(client: S3Client, key: String, range: ClosedRange<Int64>) {
        self.range = range
        position = range.lowerBound
        let thread = Thread { [self] in run(client: client, key: key) }
        thread.name = "ferry-s3-read"
        thread.start()
    }

    private func run(client: S3Client, key: String) {
        var received: Int64 = 0
        do {
            try ObjectStoreBlobs.mapping {
                try client.getObject(key, range: range) { bytes in
                    self.condition.lock()
                    defer { self.condition.unlock() }
                    while self.buffered.count - self.consumed >= Self.bufferLimit && !self.cancelled { self.condition.wait() }
                    guard !self.cancelled else { return false }
                    if self.consumed >= Self.bufferLimit {
                        self.buffered.removeSubrange(0..<self.consumed)
                        self.consumed = 0
                    }
                    self.buffered.append(contentsOf: bytes)
                    received += Int64(bytes.count)
                    self.condition.broadcast()
                    return true
                }
            }
            if received != Int64(range.count) && !isCancelled {
                throw CatalogError(.objectStoreFailed, "a streaming GET of \(key) ended after \(received) of \(range.count) bytes")
            }
        } catch {
            condition.lock()
            failure = error
            condition.unlock()
        }
        condition.lock()
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    private var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    /// Waits for bytes and copies as many as there are (at least one, unless the stream failed).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        condition.lock()
        defer { condition.unlock() }
        while buffered.count == consumed && !ended { condition.wait() }
        if buffered.count == consumed {
            throw failure ?? CatalogError(.objectStoreFailed, "the object store's stream ended early")
        }
        let count = min(buffer.count, buffered.count - consumed)
        let start = consumed
        buffered.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[start..<start + count])) }
        consumed += count
        position += Int64(count)
        condition.broadcast()
        return count
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}

extension BlobStore {
    /// A store whose blobs are objects under `location` (`s3://bucket/prefix`), reached at `endpoint` (else
    /// `AWS_ENDPOINT_URL`, else AWS), with `AWS_REGION`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` from
    /// `environment`. Nothing is sent until the store is used.
    /// - Throws: `OBJECT_STORE_FAILED` when the location or the settings are not usable (its message says which).
    public convenience init(dataDirectory: String, objectStore location: String, endpoint: String?,
                            environment: [String: String], encryption: BlobEncryption?,
                            sharedLocks: (any SharedLocks)?) throws {
        let configuration: S3Configuration
        do {
            configuration = try S3Configuration.parse(location: location, endpoint: endpoint, pathStyle: false,
                                                      environment: environment)
        } catch {
            throw CatalogError(.objectStoreFailed, error.message, underlying: error.code)
        }
        try self.init(dataDirectory: dataDirectory, backend: ObjectStoreBlobs(client: S3Client(configuration: configuration)),
                      encryption: encryption, sharedLocks: sharedLocks)
    }

    /// Whether the blobs are in an object store (not local files).
    public var isObjectStore: Bool { backend is ObjectStoreBlobs }

    /// Removes what uploads that never committed left in the object store (a process killed mid-upload), of
    /// those started more than `age` seconds ago; returns how many. Nothing to do for a local store (its `tmp/`
    /// is emptied when it opens).
    @discardableResult
    public func removeUploadLeftovers(olderThan age: Double) throws -> Int {
        guard let objects = backend as? ObjectStoreBlobs else { return 0 }
        return try objects.removeLeftovers(startedBefore: Date().addingTimeInterval(-age))
    }
}
