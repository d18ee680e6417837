internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// A file of allocated space in the data directory (`reserve.bin`, 8 MiB by default), given up when the disk is
/// full so that a delete, which needs room in SQLite's write-ahead log, can still free space; made again once there
/// is room. Without it a full disk could only be emptied by hand.
public final class SpaceReserve: @unchecked Sendable {
    // @unchecked Sendable invariant: the file is only created or removed with `lock` held.
    private let lock = NSLock()
    public let path: String
    public let size: Int64

    public init(dataDirectory: String, size: Int64 = 8 << 20) {
        path = dataDirectory + "/reserve.bin"
        self.size = size
        _ = replenish()
    }

    /// Gives the space back to the file system. True if there was a reserve to give.
    @discardableResult
    public func release() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return unlink(path) == 0
    }

    /// Allocates the reserve again if it is missing and the disk has twice its size free. True when it is held.
    @discardableResult
    public func replenish() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if access(path, F_OK) == 0 { return true }
        var info = statvfs()
        let directory = (path as NSString).deletingLastPathComponent
        guard statvfs(directory, &info) == 0, Int64(info.f_bavail) * Int64(info.f_frsize) >= 2 * size else { return false }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard posix_fallocate(fd, 0, off_t(size)) == 0, fsync(fd) == 0 else {
            unlink(path)
            return false
        }
        return true
    }
}
