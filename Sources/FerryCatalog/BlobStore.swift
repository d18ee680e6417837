internal import FerryAPI
internal import Crypto
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// Archives stored by content: `blobs/sha256/<first two hex digits>/<64 hex digits>` under the data directory.
///
/// A blob is written to `tmp/` first, hashed as it is written, fsynced, then renamed into place and its directory
/// fsynced: a blob either exists whole and durable under its digest, or not at all. Files are created 0600 and
/// directories 0700, because archives hold every memory page of a container, secrets included.
///
/// With ``encryption`` every new blob is sealed as it is written (``SealedBlobFormat``) under a random data key of
/// its own, kept wrapped beside it in `<digest>.key`; the digest stays the plaintext's. A blob without a key
/// file is plain (written before encryption was turned on) and stays readable. Read blobs through ``openReader(_:)``.
public final class BlobStore: Sendable {
    public let root: String
    private let blobsDirectory: String
    private let temporaryDirectory: String
    private let digestLocks = DigestLocks()
    /// Seals new blobs; nil: they are stored as uploaded.
    public let encryption: BlobEncryption?

    /// Runs `body` while no other ingest or delete of the same digest runs, so a catalog row and its blob always
    /// change together (an upload of bytes being deleted cannot leave a row whose blob is gone).
    public func withDigestLock<T>(_ digest: String, _ body: () throws -> T) rethrows -> T {
        try digestLocks.withLock(digest, body)
    }

    /// Opens (creating if needed) the store under `dataDirectory`, and removes temporary files a crash left behind
    /// (unless `removingLeftovers` is false: a look at a store a service may be writing).
    public init(dataDirectory: String, removingLeftovers: Bool = true, encryption: BlobEncryption? = nil) throws {
        root = dataDirectory
        blobsDirectory = dataDirectory + "/blobs/sha256"
        temporaryDirectory = dataDirectory + "/tmp"
        self.encryption = encryption
        for directory in [dataDirectory, dataDirectory + "/blobs", blobsDirectory, temporaryDirectory] {
            try Self.makeDirectory(directory)
        }
        // Uploads that were in flight when the process died are garbage: no catalog row can point at them.
        if removingLeftovers, let leftovers = try? FileManager.default.contentsOfDirectory(atPath: temporaryDirectory) {
            for name in leftovers { unlink(temporaryDirectory + "/" + name) }
        }
    }

    /// The path of a stored blob (whether or not it exists).
    public func path(for digest: String) -> String {
        "\(blobsDirectory)/\(digest.prefix(2))/\(digest)"
    }

    /// The path of a blob's wrapped data key (it exists for sealed blobs only).
    public func keyPath(for digest: String) -> String {
        path(for: digest) + ".key"
    }

    public func contains(_ digest: String) -> Bool {
        access(path(for: digest), F_OK) == 0
    }

    /// Starts writing a new blob (sealed when the store encrypts).
    public func beginUpload() throws -> BlobUpload {
        try BlobUpload(directory: temporaryDirectory, encryption: encryption)
    }

    /// Makes a finished upload durable under its digest. Returns true if the blob is new, false if the same bytes
    /// were already stored (the upload is then discarded).
    @discardableResult
    public func commit(_ upload: BlobUpload) throws -> Bool {
        let digest = try upload.finish()
        let directory = "\(blobsDirectory)/\(digest.prefix(2))"
        try Self.makeDirectory(directory)
        let target = path(for: digest)
        if contains(digest) {
            upload.discard()
            return false
        }
        do {
            // The key first: a key without its blob is a harmless leftover, a sealed blob without its key is lost.
            if let wrapped = try upload.wrappedKey(context: Self.keyContext(digest)) {
                try wrapped.write(path: keyPath(for: digest))
            } else {
                unlink(keyPath(for: digest))
            }
        } catch {
            upload.discard()
            throw error
        }
        guard rename(upload.path, target) == 0 else {
            let error = CatalogError(.storageFailed, "could not move the upload into the blob store: \(String(cString: strerror(errno)))")
            upload.discard()
            throw error
        }
        upload.markCommitted()
        try Self.fsyncDirectory(directory)
        return true
    }

    /// A reader of a stored blob's bytes as uploaded, sealed or not.
    /// - Throws: `ENCRYPTION_KEY_REQUIRED`, `ENCRYPTION_KEY_MISMATCH`, `BLOB_CORRUPT` (a sealed blob whose key file is
    ///   gone, or that does not open), `STORAGE_FAILED` (no such blob).
    public func openReader(_ digest: String) throws -> BlobReader {
        let context = Self.keyContext(digest)
        let file = try BlobFile(path: path(for: digest))
        if let wrapped = try WrappedDataKey.read(path: keyPath(for: digest), context: context) {
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

    /// Whether a stored blob is sealed (has a key file).
    public func isSealed(_ digest: String) -> Bool {
        access(keyPath(for: digest), F_OK) == 0
    }

    static func keyContext(_ digest: String) -> String { "blob:" + digest }

    /// Removes a blob and its key; missing blobs are not an error.
    public func remove(_ digest: String) {
        unlink(path(for: digest))
        unlink(keyPath(for: digest))
    }

    /// Bytes free on the file system that holds the store.
    public func freeBytes() -> Int64? {
        var info = statvfs()
        guard statvfs(root, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
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

/// One blob being written: a 0600 temporary file and a running SHA-256. Owns its file descriptor; a blob upload
/// that is neither committed nor discarded deletes its file when released, so an aborted request leaves nothing.
///
/// Used by one thread at a time (the request's handler thread).
public final class BlobUpload: @unchecked Sendable {
    public let path: String
    public private(set) var bytesWritten: Int64 = 0
    private var fd: Int32
    /// SHA-256 on a thread of its own, so hashing overlaps receiving, parsing and writing (it is half an ingest's
    /// time when done in line).
    private let hasher: BackgroundHasher
    private var digest: String?
    private var committed = false
    /// Seals the bytes before they reach the file (nil: written as they come).
    private var sealer: ChunkSealer?
    private let encryption: BlobEncryption?

    init(directory: String, encryption: BlobEncryption? = nil) throws {
        path = "\(directory)/upload-\(UUID().uuidString)"
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CatalogError(.storageFailed, "could not create an upload file: \(String(cString: strerror(errno)))")
        }
        hasher = BackgroundHasher(writeback: fd)
        self.encryption = encryption
        if let encryption {
            let format = SealedBlobFormat(chunkSize: encryption.chunkSize)
            sealer = ChunkSealer(format: format, dataKey: SymmetricKey(size: .bits256))
            try format.header.withUnsafeBytes { try writeFile($0) }
        }
    }

    /// Whether the file is sealed.
    public var isSealed: Bool { sealer != nil }

    /// Plaintext bytes a reader of the file can have now: all written ones, or for a sealed upload those in
    /// sealed chunks (all once finished).
    public var bytesReadable: Int64 {
        guard let sealer, !sealer.finished else { return bytesWritten }
        return sealer.plaintextSealed
    }

    /// A reader of the file as it is being written (a live upload's), valid after the upload is committed or
    /// discarded too. Read only below ``bytesReadable``.
    public func liveReader() throws -> BlobReader {
        let file = try BlobFile(path: path)
        guard let sealer else { return try BlobReader(plain: file, growing: true) }
        return try BlobReader(sealed: file, dataKey: sealer.dataKey, growing: true, context: "the upload")
    }

    /// A reader of the finished upload's bytes (the file is complete: ``finish()`` ran).
    public func reader() throws -> BlobReader {
        try finish()
        let file = try BlobFile(path: path)
        guard let sealer else { return try BlobReader(plain: file) }
        return try BlobReader(sealed: file, dataKey: sealer.dataKey, context: "the upload")
    }

    /// The data key wrapped for the blob store, or nil for a plain upload.
    func wrappedKey(context: String) throws -> WrappedDataKey? {
        guard let sealer, let encryption else { return nil }
        return try WrappedDataKey.wrap(sealer.dataKey, under: encryption.key, context: context)
    }

    private func writeFile(_ bytes: UnsafeRawBufferPointer) throws {
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

    deinit {
        hasher.cancel()
        if fd >= 0 { close(fd) }
        if !committed { unlink(path) }
    }

    /// Appends bytes to the file (sealed, when the store encrypts) and the hash. Throws `STORAGE_FULL` when the disk is full.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard digest == nil, fd >= 0 else { throw CatalogError(.storageFailed, "write after finish") }
        if sealer != nil {
            try sealer!.append(bytes) { try writeFile($0) }
        } else {
            try writeFile(bytes)
        }
        hasher.feed(bytes)
        bytesWritten += Int64(bytes.count)
    }

    /// Flushes the file to disk and returns the SHA-256 of everything written, as 64 lowercase hex digits.
    @discardableResult
    public func finish() throws -> String {
        if let digest { return digest }
        if sealer != nil { try sealer!.finish { try writeFile($0) } }
        // The hash thread first (it also starts writeback on the descriptor, which must stay open until it ends).
        let sum = hasher.finish()
        guard fsync(fd) == 0 else {
            throw CatalogError(.storageFailed, "could not sync the upload: \(String(cString: strerror(errno)))")
        }
        close(fd)
        fd = -1
        let hex = Hex.string(sum)
        digest = hex
        return hex
    }

    /// Deletes the temporary file now.
    public func discard() {
        hasher.cancel()
        if fd >= 0 { close(fd); fd = -1 }
        unlink(path)
        committed = true
    }

    fileprivate func markCommitted() { committed = true }
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

    /// - Parameter writeback: the file the bytes are written to (before they are fed), whose writeback to start.
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
            if hashed - flushed >= Self.writebackBytes, let start = startWriteback {
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
