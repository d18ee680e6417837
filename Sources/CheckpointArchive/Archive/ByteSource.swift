#if canImport(Glibc)
import Glibc
#endif

/// Where an ``ArchiveReader`` pulls its bytes from: a file, a pipe, an HTTP upload, or an entry of another
/// archive. libarchive has no push model, so every source is pulled: `nextChunk` blocks until bytes are there.
///
/// Sources are used from one thread at a time (the thread that drives the reader), hence no `Sendable`.
public protocol ByteSource: AnyObject {
    /// The next chunk of bytes. An empty buffer means the end of the stream. The buffer stays valid until the
    /// next call.
    func nextChunk() throws -> UnsafeRawBufferPointer

    /// Skips up to `count` bytes without handing them over, returning how many were skipped. Sources that cannot
    /// skip cheaply return 0 and libarchive reads through instead.
    func skip(_ count: Int64) throws -> Int64

    /// True when `positionalRead` works: a file, not a pipe, an upload or an entry.
    var readsAtOffsets: Bool { get }

    /// Reads up to `buffer.count` bytes at `offset` from where the stream began, without moving the stream, and
    /// returns how many it read (0 at the end). Only for sources that `readsAtOffsets`.
    func positionalRead(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

extension ByteSource {
    public func skip(_ count: Int64) throws -> Int64 { 0 }
    public var readsAtOffsets: Bool { false }
    public func positionalRead(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        throw CheckpointError(.archiveReadFailed, "this source cannot be read at an offset")
    }
}

/// Reads a file descriptor in fixed chunks. Regular files are skipped with `lseek`, so entries that Ferry does not
/// need (memory pages) cost no reads in an uncompressed archive.
public final class FileDescriptorSource: ByteSource {
    private let fd: Int32
    private let ownsDescriptor: Bool
    private let seekable: Bool
    private let buffer: UnsafeMutableRawBufferPointer
    /// The file offset the stream began at.
    private let start: Int64

    /// Opens `path` read-only. Throws ``CheckpointError`` `FILE_NOT_FOUND` when it is missing or not a regular file.
    public convenience init(path: String, chunkSize: Int = 1 << 16) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw CheckpointError(.fileNotFound, "\(path): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(.fileNotFound, "\(path): not a regular file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CheckpointError(.fileNotFound, "\(path): \(String(cString: strerror(errno)))")
        }
        self.init(descriptor: fd, ownsDescriptor: true, chunkSize: chunkSize)
    }

    /// Wraps an open descriptor (standard input, a pipe). The descriptor is closed on deinit only if `ownsDescriptor`.
    public init(descriptor: Int32, ownsDescriptor: Bool, chunkSize: Int = 1 << 16) {
        self.fd = descriptor
        self.ownsDescriptor = ownsDescriptor
        var info = stat()
        self.seekable = fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        self.start = seekable ? Int64(lseek(descriptor, 0, SEEK_CUR)) : 0
        self.buffer = .allocate(byteCount: chunkSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
        if ownsDescriptor { close(fd) }
    }

    public func nextChunk() throws -> UnsafeRawBufferPointer {
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return UnsafeRawBufferPointer(rebasing: buffer[0..<count]) }
            if errno == EINTR { continue }
            throw CheckpointError(.archiveReadFailed, "read failed: \(String(cString: strerror(errno)))")
        }
    }

    public func skip(_ count: Int64) throws -> Int64 {
        guard seekable, count > 0 else { return 0 }
        let here = lseek(fd, 0, SEEK_CUR)
        var info = stat()
        guard here >= 0, fstat(fd, &info) == 0 else { return 0 }
        // Never seek past the end: libarchive must still see the truncation if the file is short.
        let step = min(count, Int64(info.st_size) - Int64(here))
        guard step > 0, lseek(fd, off_t(step), SEEK_CUR) >= 0 else { return 0 }
        return step
    }

    public var readsAtOffsets: Bool { seekable && start >= 0 }

    public func positionalRead(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard readsAtOffsets, offset >= 0 else {
            throw CheckpointError(.archiveReadFailed, "this source cannot be read at offset \(offset)")
        }
        while true {
            let count = pread(fd, buffer.baseAddress, buffer.count, off_t(start + offset))
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw CheckpointError(.archiveReadFailed, "read failed: \(String(cString: strerror(errno)))")
        }
    }
}
