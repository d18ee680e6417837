internal import FerryAPI
internal import Crypto
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// Archives stored by content, sealed or not, in one of two backends: a local directory (``LocalBlobs``, the
/// default: `blobs/sha256/<first two hex digits>/<64 hex digits>` under the data directory) or an S3-compatible
/// object store (``ObjectStoreBlobs``: `<prefix>/blobs/sha256/<64 hex digits>`).
///
/// A blob is written to a temporary place first (a file in `tmp/`, or a multipart upload to `uploads/`), hashed as
/// it is written, made durable, then moved under its digest: a blob either exists whole under its digest, or not
/// at all. Local files are created 0600 and directories 0700, because archives hold every memory page of a
/// container, secrets included.
///
/// With ``encryption`` every new blob is sealed as it is written (``SealedBlobFormat``) under a random data key of
/// its own, kept wrapped beside it in `<digest>.key`; the digest stays the plaintext's. A blob without a key
/// is plain (written before encryption was turned on) and stays readable. Read blobs through ``openReader(_:)``.
public final class BlobStore: Sendable {
    /// The data directory (keys, the space reserve and, with the local backend, the blobs).
    public let root: String
    let backend: any BlobBackend
    private let digestLocks = DigestLocks()
    /// Held around a digest's lock when several processes share the store (PostgreSQL advisory locks).
    private let sharedLocks: (any SharedLocks)?
    /// Seals new blobs; nil: they are stored as uploaded.
    public let encryption: BlobEncryption?

    /// Runs `body` while no other ingest or delete of the same digest runs, in this process or (with shared locks)
    /// any other replica, so a catalog row and its blob always change together (an upload of bytes being deleted
    /// cannot leave a row whose blob is gone).
    public func withDigestLock<T>(_ digest: String, _ body: () throws -> T) throws -> T {
        try digestLocks.withLock(digest) {
            guard let sharedLocks else { return try body() }
            return try sharedLocks.withLock("blob:" + digest, body)
        }
    }

    /// Opens (creating if needed) the local store under `dataDirectory`, and removes temporary files a crash left
    /// behind (unless `removingLeftovers` is false: a look at a store a service may be writing).
    public convenience init(dataDirectory: String, removingLeftovers: Bool = true, encryption: BlobEncryption? = nil) throws {
        try self.init(dataDirectory: dataDirectory,
                      backend: LocalBlobs(dataDirectory: dataDirectory, removingLeftovers: removingLeftovers),
                      encryption: encryption, sharedLocks: nil)
    }

    init(dataDirectory: String, backend: any BlobBackend, encryption: BlobEncryption?, sharedLocks: (any SharedLocks)?) throws {
        root = dataDirectory
        self.backend = backend
        self.encryption = encryption
        self.sharedLocks = sharedLocks
        try Self.makeDirectory(dataDirectory)
    }

    /// Where the blobs are, for messages: the directory, or `s3://bucket/prefix`.
    public var location: String { backend.location }

    /// The path of a stored blob in the local backend (whether or not it exists); see ``localPath(for:)``.
    public func path(for digest: String) -> String {
        backend.localPath(for: digest) ?? "/nonexistent/\(digest)"
    }

    /// The path of a stored blob's file, to send with `sendfile`; nil when the blobs are not local files.
    public func localPath(for digest: String) -> String? { backend.localPath(for: digest) }

    /// The path of a blob's wrapped data key in the local backend (it exists for sealed blobs only).
    public func keyPath(for digest: String) -> String {
        path(for: digest) + ".key"
    }

    /// Whether the blob is stored. An object store that cannot be asked answers true: the read that follows
    /// reports the real error, and nothing is marked missing for an outage.
    public func contains(_ digest: String) -> Bool {
        backend.contains(digest)
    }

    /// Starts writing a new blob (sealed when the store encrypts).
    public func beginUpload() throws -> BlobUpload {
        try BlobUpload(sink: backend.beginSink(), encryption: encryption)
    }

    /// Makes a finished upload durable under its digest. Returns true if the blob is new, false if the same bytes
    /// were already stored (the upload is then discarded).
    @discardableResult
    public func commit(_ upload: BlobUpload) throws -> Bool {
        let digest = try upload.finish()
        if contains(digest) {
            upload.discard()
            return false
        }
        do {
            let wrapped = try upload.wrappedKey(context: Self.keyContext(digest))
            try backend.commit(upload.sink, digest: digest, wrappedKey: wrapped)
        } catch {
            upload.discard()
            throw error
        }
        upload.markCommitted()
        return true
    }

    /// A reader of a stored blob's bytes as uploaded, sealed or not.
    /// - Throws: `ENCRYPTION_KEY_REQUIRED`, `ENCRYPTION_KEY_MISMATCH`, `BLOB_CORRUPT` (a sealed blob whose key file is
    ///   gone, or that does not open), `STORAGE_FAILED` (no such blob), `OBJECT_STORE_FAILED`.
    public func openReader(_ digest: String) throws -> BlobReader {
        let context = Self.keyContext(digest)
        let (file, wrapped) = try backend.open(digest, keyContext: context)
        if let wrapped {
            guard let encryption else {
                throw CatalogError(.encryptionKeyRequired, "blob \(digest.prefix(12)) is encrypted and no --encryption-key was given")
            }
            return try BlobReader(sealed: file, dataKey: try wrapped.unwrap(using: encryption.key, context: context),
                                  context: "blob \(digest.prefix(12))")
        }
        var magic = [UInt8](repeating: 0, count: 8)
        let count = try magic.withUnsafeMutableBytes { try file.readFully(at: 0, into: $0) }
        // Sealed bytes must never be served as the archive: a sealed blob whose key file is gone is unreadable.
        guard !(count == 8 && SealedBlobFormat.hasMagic(magic)) else {
            throw CatalogError(.blobCorrupt, "blob \(digest.prefix(12)) is encrypted but its key file is missing")
        }
        return try BlobReader(plain: file)
    }

    /// Whether a stored blob is sealed (has a key).
    public func isSealed(_ digest: String) -> Bool {
        backend.isSealed(digest)
    }

    static func keyContext(_ digest: String) -> String { "blob:" + digest }

    /// Removes a blob and its key; missing blobs are not an error.
    public func remove(_ digest: String) {
        backend.remove(digest)
    }

    /// The digests of every stored blob.
    /// - Throws: `OBJECT_STORE_FAILED` when the object store cannot be listed (never an empty answer for an outage).
    public func allDigests() throws -> Set<String> {
        try backend.allDigests()
    }

    /// Bytes free where the store writes, or nil where that is not bounded by a disk (an object store).
    public func freeBytes() -> Int64? {
        backend.freeBytes()
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw CatalogError(.storageFailed, "could not create \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func fsyncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CatalogError(.storageFailed, "could not open \(path) to sync it") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw CatalogError(.storageFailed, "could not sync \(path)") }
    }

    /// Whether `name` is 64 lowercase hex digits (a stored blob's name).
    static func isDigest<S: StringProtocol>(_ name: S) -> Bool {
        name.utf8.count == 64 && name.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// Named locks held across every process that shares a store (PostgreSQL's advisory locks): one replica's
/// ingest and another's delete of the same digest never interleave.
public protocol SharedLocks: Sendable {
    func withLock<T>(_ name: String, _ body: () throws -> T) throws -> T
}

/// Where a ``BlobStore`` keeps blobs.
protocol BlobBackend: Sendable {
    var location: String { get }
    func contains(_ digest: String) -> Bool
    func beginSink() throws -> any BlobUploadSink
    /// Moves a finished sink's bytes under `digest`, its wrapped key first (a key without its blob is a harmless
    /// leftover, a sealed blob without its key is lost); a plain blob's stale key is removed.
    func commit(_ sink: any BlobUploadSink, digest: String, wrappedKey: WrappedDataKey?) throws
    func open(_ digest: String, keyContext: String) throws -> (bytes: any BlobBytes, key: WrappedDataKey?)
    func isSealed(_ digest: String) -> Bool
    func remove(_ digest: String)
    func allDigests() throws -> Set<String>
    func freeBytes() -> Int64?
    func localPath(for digest: String) -> String?
}

/// Where an upload's stored bytes go while it is written: a temporary file, or a multipart upload. Used by one
/// thread at a time; one that is neither committed nor discarded removes what it wrote when released.
protocol BlobUploadSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// A file whose writeback the hasher may start as it goes, or -1.
    var writebackDescriptor: Int32 { get }
    /// Makes the bytes durable and readable whole.
    func finish() throws
    /// The bytes written: `growing` (still being written) only where ``supportsLiveReads``.
    func bytes(growing: Bool) throws -> any BlobBytes
    /// Whether readers may follow the bytes while they are written (a local file; not a multipart upload).
    var supportsLiveReads: Bool { get }
    /// Removes what was written now.
    func discard()
    /// The bytes were moved under their digest: nothing is removed when the sink is released.
    func markCommitted()
}

/// The default backend: files under the data directory.
final class LocalBlobs: BlobBackend {
    let blobsDirectory: String
    let temporaryDirectory: String
    let root: String

    init(dataDirectory: String, removingLeftovers: Bool) throws {
        root = dataDirectory
        blobsDirectory = dataDirectory + "/blobs/sha256"
        temporaryDirectory = dataDirectory + "/tmp"
        for directory in [dataDirectory, dataDirectory + "/blobs", blobsDirectory, temporaryDirectory] {
            try BlobStore.makeDirectory(directory)
        }
        // Uploads that were in flight when the process died are garbage: no catalog row can point at them.
        if removingLeftovers, let leftovers = try? FileManager.default.contentsOfDirectory(atPath: temporaryDirectory) {
            for name in leftovers { unlink(temporaryDirectory + "/" + name) }
        }
    }

    var location: String { blobsDirectory }

    func localPath(for digest: String) -> String? { path(digest) }

    private func path(_ digest: String) -> String { "\(blobsDirectory)/\(digest.prefix(2))/\(digest)" }
    private func keyPath(_ digest: String) -> String { path(digest) + ".key" }

    func contains(_ digest: String) -> Bool { access(path(digest), F_OK) == 0 }

    func beginSink() throws -> any BlobUploadSink { try LocalUploadFile(directory: temporaryDirectory) }

    func commit(_ sink: any BlobUploadSink, digest: String, wrappedKey: WrappedDataKey?) throws {
        guard let file = sink as? LocalUploadFile else { preconditionFailure("a local store commits its own uploads") }
        let directory = "\(blobsDirectory)/\(digest.prefix(2))"
        try BlobStore.makeDirectory(directory)
        if let wrappedKey {
            try wrappedKey.write(path: keyPath(digest))
        } else {
            unlink(keyPath(digest))
        }
        guard rename(file.path, path(digest)) == 0 else {
            throw CatalogError(.storageFailed, "could not move the upload into the blob store: \(String(cString: strerror(errno)))")
        }
        file.markCommitted()
        try BlobStore.fsyncDirectory(directory)
    }

    func open(_ digest: String, keyContext: String) throws -> (bytes: any BlobBytes, key: WrappedDataKey?) {
        let file = try BlobFile(path: path(digest))
        return (file, try WrappedDataKey.read(path: keyPath(digest), context: keyContext))
    }

    func isSealed(_ digest: String) -> Bool { access(keyPath(digest), F_OK) == 0 }

    func remove(_ digest: String) {
        unlink(path(digest))
        unlink(keyPath(digest))
    }

    func allDigests() throws -> Set<String> {
        var digests: Set<String> = []
        for prefix in (try? FileManager.default.contentsOfDirectory(atPath: blobsDirectory)) ?? [] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: blobsDirectory + "/" + prefix)) ?? []
            where name.hasPrefix(prefix) && BlobStore.isDigest(name) {
                digests.insert(name)
            }
        }
        return digests
    }

    func freeBytes() -> Int64? {
        var info = statvfs()
        guard statvfs(root, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}

/// An upload's temporary file: 0600, in the store's `tmp/`, renamed under its digest on commit.
final class LocalUploadFile: BlobUploadSink {
    let path: String
    private var fd: Int32
    private var committed = false

    init(directory: String) throws {
        path = "\(directory)/upload-\(UUID().uuidString)"
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CatalogError(.storageFailed, "could not create an upload file: \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(path) }
    }

    var writebackDescriptor: Int32 { fd }
    var supportsLiveReads: Bool { true }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw CatalogError(.storageFailed, "write after finish") }
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                let code: CatalogErrorCode = (errno == ENOSPC || errno == EDQUOT) ? .storageFull : .storageFailed
                throw CatalogError(code, "could not write the upload: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    func finish() throws {
        guard fd >= 0 else { return }
        guard fsync(fd) == 0 else {
            throw CatalogError(.storageFailed, "could not sync the upload: \(String(cString: strerror(errno)))")
        }
        close(fd)
        fd = -1
    }

    func bytes(growing: Bool) throws -> any BlobBytes { try BlobFile(path: path) }

    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(path)
        committed = true
    }

    func markCommitted() { committed = true }
}

/// How a store seals new blobs: the key-encryption key that wraps their data keys, and the chunk size.
public struct BlobEncryption: Sendable {
    public let key: EncryptionKey
    /// Plaintext bytes per sealed chunk: what a range read opens at least, and what a live upload's readers
    /// wait for. 64 KiB: see the README's figures.
    public let chunkSize: Int
    public static let defaultChunkSize = 1 << 16

    public init(key: EncryptionKey, chunkSize: Int = BlobEncryption.defaultChunkSize) {
        self.key = key
        self.chunkSize = chunkSize
    }
}

/// One blob being written: a sink (a 0600 temporary file, or a multipart upload) and a running SHA-256. An upload
/// that is neither committed nor discarded removes what it wrote when released, so an aborted request leaves
/// nothing.
///
/// Used by one thread at a time (the request's handler thread).
public final class BlobUpload: @unchecked Sendable {
    public private(set) var bytesWritten: Int64 = 0
    let sink: any BlobUploadSink
    /// SHA-256 on a thread of its own, so hashing overlaps receiving, parsing and writing (it is half an ingest's
    /// time when done in line).
    private let hasher: BackgroundHasher
    private var digest: String?
    private var ended = false
    /// Seals the bytes before they reach the sink (nil: written as they come).
    private var sealer: ChunkSealer?
    private let encryption: BlobEncryption?

    init(sink: any BlobUploadSink, encryption: BlobEncryption? = nil) throws {
        self.sink = sink
        hasher = BackgroundHasher(writeback: sink.writebackDescriptor)
        self.encryption = encryption
        if let encryption {
            let format = SealedBlobFormat(chunkSize: encryption.chunkSize)
            sealer = ChunkSealer(format: format, dataKey: SymmetricKey(size: .bits256))
            try format.header.withUnsafeBytes { try sink.write($0) }
        }
    }

    /// An upload to a temporary file in `directory`.
    convenience init(directory: String, encryption: BlobEncryption? = nil) throws {
        try self.init(sink: LocalUploadFile(directory: directory), encryption: encryption)
    }

    /// The temporary file's path (local store only; tests look at it).
    public var path: String { (sink as? LocalUploadFile)?.path ?? "" }

    /// Whether the bytes are sealed.
    public var isSealed: Bool { sealer != nil }

    /// Plaintext bytes a reader of the upload can have now: all written ones, or for a sealed upload those in
    /// sealed chunks (all once finished).
    public var bytesReadable: Int64 {
        guard let sealer, !sealer.finished else { return bytesWritten }
        return sealer.plaintextSealed
    }

    /// A reader of the upload as it is being written (a live upload's), valid after the upload is committed or
    /// discarded too. Read only below ``bytesReadable``.
    /// - Throws: `STORAGE_FAILED` where the store cannot be read while written (an object store's multipart upload).
    public func liveReader() throws -> BlobReader {
        guard sink.supportsLiveReads else {
            throw CatalogError(.storageFailed, "an object store's upload cannot be read until it is complete")
        }
        let file = try sink.bytes(growing: true)
        guard let sealer else { return try BlobReader(plain: file, growing: true) }
        return try BlobReader(sealed: file, dataKey: sealer.dataKey, growing: true, context: "the upload")
    }

    /// A reader of the finished upload's bytes (the bytes are complete: ``finish()`` ran).
    public func reader() throws -> BlobReader {
        try finish()
        let file = try sink.bytes(growing: false)
        guard let sealer else { return try BlobReader(plain: file) }
        return try BlobReader(sealed: file, dataKey: sealer.dataKey, context: "the upload")
    }

    /// The data key wrapped for the blob store, or nil for a plain upload.
    func wrappedKey(context: String) throws -> WrappedDataKey? {
        guard let sealer, let encryption else { return nil }
        return try WrappedDataKey.wrap(sealer.dataKey, under: encryption.key, context: context)
    }

    deinit {
        hasher.cancel()
    }

    /// Appends bytes to the sink (sealed, when the store encrypts) and the hash. Throws `STORAGE_FULL` when the
    /// disk is full, `OBJECT_STORE_FAILED` when the object store refuses a part.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard digest == nil, !ended else { throw CatalogError(.storageFailed, "write after finish") }
        if sealer != nil {
            try sealer!.append(bytes) { try sink.write($0) }
        } else {
            try sink.write(bytes)
        }
        hasher.feed(bytes)
        bytesWritten += Int64(bytes.count)
    }

    /// Makes the bytes durable and returns the SHA-256 of everything written, as 64 lowercase hex digits.
    @discardableResult
    public func finish() throws -> String {
        if let digest { return digest }
        if sealer != nil { try sealer!.finish { try sink.write($0) } }
        // The hash thread first (it also starts writeback on the file, which must stay open until it ends).
        let sum = hasher.finish()
        try sink.finish()
        let hex = Hex.string(sum)
        digest = hex
        return hex
    }

    /// Removes what was written now.
    public func discard() {
        hasher.cancel()
        ended = true
        sink.discard()
    }

    fileprivate func markCommitted() {
        ended = true
        sink.markCommitted()
    }
}

/// Computes a SHA-256 on its own thread from bytes handed over in 1 MiB buffers (at most four in flight, so memory
/// stays at 5 MiB per upload and a slow hash slows the writer down rather than queueing). The thread starts with the
/// first full buffer; a small upload is hashed by `finish` in line.
///
/// Every 8 MiB hashed it also asks the kernel to start writing those bytes of the file out
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), so the final fsync has only the tail to wait for.
final class BackgroundHasher: @unchecked Sendable {
    // @unchecked Sendable invariant: `pending`, `spare`, `ended` and `result` are only touched with `condition`
    // locked; `filling` and `thread` belong to the feeding thread; `hasher` to the hashing thread until it ends.
    private let condition = NSCondition()
    private var pending: [[UInt8]] = []
    private var spare: [[UInt8]] = []
    private var ended = false
    private var result: SHA256.Digest?
    private var filling: [UInt8] = []
    private var thread: Thread?
    private var hasher = SHA256()
    private let writeback: Int32
    static let bufferBytes = 1 << 20
    static let inFlight = 4
    static let writebackBytes: Int64 = 8 << 20

    /// - Parameter writeback: the file the bytes are written to (before they are fed), whose writeback to start (-1: none).
    init(writeback: Int32) {
        self.writeback = writeback
        filling.reserveCapacity(Self.bufferBytes)
    }

    /// Ends the thread without a digest (an upload discarded or dropped before `finish`). The thread holds this
    /// object until it ends, so the upload must call this; idempotent.
    func cancel() {
        condition.lock()
        ended = true
        pending.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    func feed(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = min(Self.bufferBytes - filling.count, bytes.count - offset)
            filling.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]))
            offset += n
            if filling.count == Self.bufferBytes { handOver() }
        }
    }

    private func handOver() {
        if thread == nil { start() }
        condition.lock()
        while pending.count >= Self.inFlight { condition.wait() }
        pending.append(filling)
        filling = spare.popLast() ?? []
        condition.broadcast()
        condition.unlock()
        filling.removeAll(keepingCapacity: true)
        if filling.capacity < Self.bufferBytes { filling.reserveCapacity(Self.bufferBytes) }
    }

    private func start() {
        let thread = Thread { [self] in run() }
        thread.name = "ferry-hash"
        self.thread = thread
        thread.start()
    }

    private func run() {
        var local = SHA256()
        var hashed: Int64 = 0
        var flushed: Int64 = 0
        while true {
            condition.lock()
            while pending.isEmpty && !ended { condition.wait() }
            if pending.isEmpty && ended {
                result = local.finalize()
                condition.broadcast()
                condition.unlock()
                return
            }
            let buffer = pending.removeFirst()
            condition.broadcast()
            condition.unlock()
            buffer.withUnsafeBytes { local.update(bufferPointer: $0) }
            hashed += Int64(buffer.count)
            if writeback >= 0, hashed - flushed >= Self.writebackBytes, let start = startWriteback {
                _ = start(writeback, flushed, hashed - flushed, 2 /* SYNC_FILE_RANGE_WRITE */)
                flushed = hashed
            }
            condition.lock()
            if spare.count < 2 { spare.append(buffer) }
            condition.unlock()
        }
    }

    /// The digest of everything fed; waits for the thread.
    func finish() -> SHA256.Digest {
        guard thread != nil else {
            filling.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            return hasher.finalize()
        }
        condition.lock()
        if !filling.isEmpty { pending.append(filling) }
        filling = []
        ended = true
        condition.broadcast()
        while result == nil { condition.wait() }
        let digest = result!
        condition.unlock()
        return digest
    }
}

/// glibc's sync_file_range, looked up at run time: Swift's Glibc module leaves out GNU extensions. Nil if absent.
private let startWriteback: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
}()

/// A lock per digest, from a fixed set of stripes (two digests may share one; that only serialises them).
final class DigestLocks: Sendable {
    private let stripes: [NSLock] = (0..<64).map { _ in NSLock() }

    func withLock<T>(_ digest: String, _ body: () throws -> T) rethrows -> T {
        let index = Int(digest.utf8.prefix(2).reduce(UInt32(0)) { $0 &* 31 &+ UInt32($1) } % 64)
        let lock = stripes[index]
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
