import FerryAPI
import Crypto
public import Foundation

/// Appends to a file and keeps its SHA-256 as the bytes go in, so a finished download needs no second read.
/// A durable download also asks the kernel, every 8 MiB, to start writing those bytes out
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), so the fsync at the end waits only for the
/// tail. Resuming, the bytes already on disk are hashed once at the start.
public struct DownloadDigest {
    private var hasher = SHA256()
    private var written: Int64 = 0
    private var flushedTo: Int64 = 0
    /// Whether `finish` makes the file durable. Not for a copy whose source stays durable elsewhere and which is
    /// checked again before use after a crash (an agent's archive): its bytes may then stay in the page cache,
    /// and the disk is left to the copy that must be durable.
    public let durable: Bool
    static let writebackBytes: Int64 = 8 << 20

    /// Starts with the first `prefix` bytes of `fd` (what an earlier attempt left), read from the file.
    public init(resuming fd: Int32, prefix: Int64, durable: Bool = true) throws(FerryClientError) {
        self.durable = durable
        guard prefix > 0 else { return }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while written < prefix {
            let count = pread(fd, buffer.baseAddress, Int(min(Int64(buffer.count), prefix - written)), off_t(written))
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw FerryClientError(code: "FILE_ERROR", message: "cannot read back the partial download") }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            written += Int64(count)
        }
        flushedTo = written
    }

    /// Appends `bytes` to `fd` (retrying short writes and EINTR) and hashes them; false when the write fails (disk
    /// full, I/O), with nothing hashed.
    public mutating func append(_ bytes: UnsafeRawBufferPointer, to fd: Int32) -> Bool {
        guard FileWrite.all(fd, bytes) else { return false }
        hasher.update(bufferPointer: bytes)
        written += Int64(bytes.count)
        if durable && written - flushedTo >= Self.writebackBytes {
            _ = startWriteback?(fd, flushedTo, written - flushedTo, 2 /* SYNC_FILE_RANGE_WRITE */)
            flushedTo = written
        }
        return true
    }

    /// The digest as lowercase hex, once `fd` is durable (if the download is).
    public func finish(fsyncing fd: Int32) throws(FerryClientError) -> String {
        if durable {
            guard fsync(fd) == 0 else { throw FerryClientError(code: "FILE_ERROR", message: "cannot flush the download to disk") }
        }
        return Hex.string(hasher.finalize())
    }

    /// The SHA-256 of a whole file, as lowercase hex.
    public static func sha256(ofFile path: String) throws(FerryClientError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FerryClientError(code: "FILE_ERROR", message: "cannot open \(path)") }
        defer { close(fd) }
        let size = Int64(lseek(fd, 0, SEEK_END))
        return Hex.string(try DownloadDigest(resuming: fd, prefix: size, durable: false).hasher.finalize())
    }
}

/// Raw descriptor writes that the client and the agent share.
public enum FileWrite {
    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR; false on an error (disk full, I/O).
    public static func all(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    /// Replaces `path` with `data` so that a reader, or a crash, finds the old file or the new one, whole: written
    /// 0600 to `path + temporarySuffix`, synced when `durable`, then renamed over `path`. False on an error.
    public static func replace(_ path: String, with data: Data, temporarySuffix: String = ".tmp", durable: Bool = true) -> Bool {
        let temporary = path + temporarySuffix
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        let written = data.withUnsafeBytes { all(fd, $0) } && (!durable || fsync(fd) == 0)
        close(fd)
        return written && rename(temporary, path) == 0
    }
}

/// glibc's sync_file_range, looked up at run time: Swift's Glibc module leaves out GNU extensions. Nil if absent.
private let startWriteback: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
}()
