public import CheckpointArchive
internal import Crypto
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// The one way Ferry reads a blob's bytes: the archive as uploaded, whether the file holds it as is (a store
/// without encryption, or a blob written before encryption was turned on) or sealed (``SealedBlobFormat``).
///
/// Reads at any offset open only the chunks they touch and keep the last opened chunk, so sequential reads in
/// small pieces open each chunk once; memory is two chunks whatever the blob's size. A chunk that fails to
/// open is a `BLOB_CORRUPT` error: a reader never returns bytes that are not the blob's.
///
/// The bytes come from a ``BlobBytes``: a local file (``BlobFile``, whose descriptor ``sharing()`` copies share)
/// or an object in S3-compatible storage (``S3BlobObject``, ranged GETs). A reader's chunk cache is guarded by a
/// lock, so one reader may be used from several threads; each copy has its own cache.
public final class BlobReader: @unchecked Sendable {
    // @unchecked Sendable invariant: `cachedIndex`, `cached` and `ciphertext` are only touched with `lock` held;
    // everything else is immutable.
    let file: any BlobBytes
    let sealing: (format: SealedBlobFormat, dataKey: SymmetricKey)?
    /// The plaintext size; nil while the file is still being written (a live upload: the caller says how far
    /// it may read).
    public let size: Int64?
    /// The file's modification time (seconds since the epoch), for `Last-Modified`.
    public let modified: Int64
    private let lock = NSLock()
    private var cachedIndex: Int64 = -1
    private var cached: [UInt8] = []
    private var ciphertext: [UInt8] = []

    /// Whether the file holds the bytes sealed (else `path` may be sent as is, e.g. with `sendfile`).
    public var isSealed: Bool { sealing != nil }
    /// A path that opens the same file, even once it was renamed or unlinked (`/proc/self/fd/N`); nil when the
    /// bytes are not in a local file (an object store's).
    public var path: String? { file.localPath }

    /// A reader of a plain file. `growing`: the file is still being written, its size not final.
    init(plain file: any BlobBytes, growing: Bool = false) throws {
        self.file = file
        sealing = nil
        let status = try file.status()
        size = growing ? nil : status.size
        modified = status.modified
    }

    /// A reader of a sealed file. `growing`: the file is still being written, its size not final.
    init(sealed file: any BlobBytes, dataKey: SymmetricKey, growing: Bool = false, context: String) throws {
        self.file = file
        var header = [UInt8](repeating: 0, count: SealedBlobFormat.headerSize)
        let count = try header.withUnsafeMutableBytes { try file.readFully(at: 0, into: $0) }
        guard count == header.count else { throw CatalogError(.blobCorrupt, "\(context) is shorter than its header") }
        let format = try SealedBlobFormat(header: header)
        sealing = (format, dataKey)
        let status = try file.status()
        modified = status.modified
        if growing {
            size = nil
        } else {
            guard let plaintext = format.plaintextSize(fileSize: status.size) else {
                throw CatalogError(.blobCorrupt, "\(context) is cut short (\(status.size) bytes is no whole encrypted blob)")
            }
            size = plaintext
            // The last chunk is opened now (one chunk's work): a blob cut short or grown is refused before a
            // response promises its length, not part-way through the body.
            try open(chunk: plaintext / Int64(format.chunkSize), format, dataKey)
        }
    }

    private init(copying other: BlobReader) {
        file = other.file.sharing()
        sealing = other.sealing
        size = other.size
        modified = other.modified
    }

    /// Another reader of the same file, with its own cache (for a reader per request).
    public func sharing() -> BlobReader { BlobReader(copying: self) }

    /// Copies up to `buffer.count` bytes at `offset` into `buffer`; returns how many (0 at the end).
    /// - Throws: `BLOB_CORRUPT` when the chunk holding `offset` does not open; `STORAGE_FAILED` when it cannot be read.
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset >= 0, buffer.count > 0 else { return 0 }
        if let size, offset >= size { return 0 }
        guard let sealing else { return try file.readFully(at: offset, into: buffer) }
        let chunkSize = Int64(sealing.format.chunkSize)
        let index = offset / chunkSize
        lock.lock()
        defer { lock.unlock() }
        if cachedIndex != index { try open(chunk: index, sealing.format, sealing.dataKey) }
        let start = Int(offset - index * chunkSize)
        guard start < cached.count else { return 0 }
        let n = min(buffer.count, cached.count - start)
        cached.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: n)
        }
        return n
    }

    /// Opens chunk `index` into `cached`. Must be called with the lock held.
    private func open(chunk index: Int64, _ format: SealedBlobFormat, _ dataKey: SymmetricKey) throws {
        cachedIndex = -1
        let want = format.sealedChunkSize
        if ciphertext.count != want { ciphertext = [UInt8](repeating: 0, count: want) }
        let count = try ciphertext.withUnsafeMutableBytes { try file.readFully(at: format.fileOffset(ofChunk: index), into: $0) }
        guard count >= SealedBlobFormat.tagSize else {
            throw CatalogError(.blobCorrupt, "the blob ends inside chunk \(index)")
        }
        // Only the last chunk is short; a stored blob's last chunk is known from its size.
        let last = count < want
        if let size {
            let lastIndex = size / Int64(format.chunkSize)
            guard last == (index == lastIndex) else { throw CatalogError(.blobCorrupt, "chunk \(index) of the blob has the wrong length") }
        }
        let body = count - SealedBlobFormat.tagSize
        do {
            let box = try AES.GCM.SealedBox(nonce: format.nonce(UInt64(index)), ciphertext: ciphertext[0..<body],
                                            tag: ciphertext[body..<count])
            cached = Array(try AES.GCM.open(box, using: dataKey, authenticating: format.associatedData(UInt64(index), last: last)))
        } catch {
            throw CatalogError(.blobCorrupt, "chunk \(index) of the blob does not open: the file was changed, cut or mixed with another")
        }
        cachedIndex = index
    }

    /// Fills as much of `buffer` as the blob has from `offset` on (reads across chunks); returns how many.
    public func readFully(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = try read(at: offset + Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// The bytes from `offset` on, in order, to `body`, at most `limit` (nil: to the end).
    public func stream(from offset: Int64 = 0, limit: Int64? = nil, bufferSize: Int = 1 << 18,
                       _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var position = offset
        var left = limit ?? Int64.max
        while left > 0 {
            let want = Int(min(Int64(bufferSize), left))
            let n = try read(at: position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
            if n == 0 { break }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            position += Int64(n)
            left -= Int64(n)
        }
    }

    /// The blob as a ``ByteSource`` for the archive reader.
    public func byteSource() -> any ByteSource { BlobByteSource(sharing()) }
}

/// Where a ``BlobReader`` reads a blob's stored bytes (sealed or not) from.
protocol BlobBytes: Sendable {
    /// The stored size and the modification time (seconds since the epoch).
    func status() throws -> (size: Int64, modified: Int64)
    /// Reads until `buffer` is full or the bytes end; returns how many.
    func readFully(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// A path that opens the same bytes (for `sendfile`), or nil.
    var localPath: String? { get }
    /// The same bytes for another reader (a file shares its descriptor; an object gets its own read-ahead).
    func sharing() -> any BlobBytes
}

/// An open blob file: owns the descriptor and closes it once, when the last reader lets go.
final class BlobFile: BlobBytes {
    let descriptor: Int32

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CatalogError(.storageFailed, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    var localPath: String? { "/proc/self/fd/\(descriptor)" }
    func sharing() -> any BlobBytes { self }

    func status() throws -> (size: Int64, modified: Int64) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw CatalogError(.storageFailed, "cannot stat a blob") }
        return (Int64(info.st_size), Int64(info.st_mtim.tv_sec))
    }

    /// `pread` until `buffer` is full or the file ends; returns the bytes read.
    func readFully(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw CatalogError(.storageFailed, "cannot read a blob: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }
}

/// A ``BlobReader`` read in order, as libarchive pulls it; skips without reading when the size is known.
final class BlobByteSource: ByteSource {
    private let reader: BlobReader
    private var position: Int64 = 0
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)

    init(_ reader: BlobReader) { self.reader = reader }
    deinit { buffer.deallocate() }

    func nextChunk() throws -> UnsafeRawBufferPointer {
        let n = try reader.read(at: position, into: buffer)
        position += Int64(n)
        return UnsafeRawBufferPointer(rebasing: buffer[0..<n])
    }

    func skip(_ count: Int64) throws -> Int64 {
        guard let size = reader.size, count > 0 else { return 0 }
        // Never past the end: libarchive must still see the truncation if the archive is short.
        let step = min(count, size - position)
        guard step > 0 else { return 0 }
        position += step
        return step
    }

    var readsAtOffsets: Bool { reader.size != nil }

    func positionalRead(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try reader.readFully(at: offset, into: buffer)
    }
}
