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
public final class BlobStore: Sendable {
    public let root: String
    private let blobsDirectory: String
    private let temporaryDirectory: String
    private let digestLocks = DigestLocks()

    /// Runs `body` while no other ingest or delete of the same digest runs, so a catalog row and its blob always
    /// change together (an upload of bytes being deleted cannot leave a row whose blob is gone).
    public func withDigestLock<T>(_ digest: String, _ body: () throws -> T) rethrows -> T {
        try digestLocks.withLock(digest, body)
    }

    /// Opens (creating if needed) the store under `dataDirectory`, and removes temporary files a crash left behind
    /// (unless `removingLeftovers` is false: a look at a store a service may be writing).
    public init(dataDirectory: String, removingLeftovers: Bool = true) throws {
        root = dataDirectory
        blobsDirectory = dataDirectory + "/blobs/sha256"
        temporaryDirectory = dataDirectory + "/tmp"
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

    public func contains(_ digest: String) -> Bool {
        access(path(for: digest), F_OK) == 0
    }

    /// Starts writing a new blob.
    public func beginUpload() throws -> BlobUpload {
        try BlobUpload(directory: temporaryDirectory)
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
        guard rename(upload.path, target) == 0 else {
            let error = CatalogError(.storageFailed, "could not move the upload into the blob store: \(String(cString: strerror(errno)))")
            upload.discard()
            throw error
        }
        upload.markCommitted()
        try Self.fsyncDirectory(directory)
        return true
    }

    /// Removes a blob; missing blobs are not an error.
    public func remove(_ digest: String) {
        unlink(path(for: digest))
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

/// One blob being written: a 0600 temporary file and a running SHA-256. Owns its file descriptor; a blob upload
/// that is neither committed nor discarded deletes its file when released, so an aborted request leaves nothing.
///
/// Used by one thread at a time (the request's handler thread).
public final class BlobUpload: @unchecked Sendable {
    public let path: String
    public private(set) var bytesWritten: Int64 = 0
    private var fd: Int32
    private var hasher = SHA256()
    private var digest: String?
    private var committed = false

    init(directory: String) throws {
        path = "\(directory)/upload-\(UUID().uuidString)"
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CatalogError(.storageFailed, "could not create an upload file: \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(path) }
    }

    /// Appends bytes to the file and the hash. Throws `STORAGE_FULL` when the disk is full.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard digest == nil, fd >= 0 else { throw CatalogError(.storageFailed, "write after finish") }
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
        hasher.update(bufferPointer: bytes)
        bytesWritten += Int64(bytes.count)
    }

    /// Flushes the file to disk and returns the SHA-256 of everything written, as 64 lowercase hex digits.
    @discardableResult
    public func finish() throws -> String {
        if let digest { return digest }
        guard fsync(fd) == 0 else {
            throw CatalogError(.storageFailed, "could not sync the upload: \(String(cString: strerror(errno)))")
        }
        close(fd)
        fd = -1
        let hex = hasher.finalize().map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined()
        digest = hex
        return hex
    }

    /// Deletes the temporary file now.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(path)
        committed = true
    }

    fileprivate func markCommitted() { committed = true }
}

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
