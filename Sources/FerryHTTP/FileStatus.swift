// CMicroHTTPD's shim includes the system headers too, so Clang may file a libc struct under either module; with
// MemberImportVisibility its fields are then visible only where CMicroHTTPD is imported as well. Hence this import.
internal import CMicroHTTPD
import Glibc

/// What `stat(2)` says about a path, in the terms file responses need.
struct FileStatus {
    var size: Int64
    /// Seconds since the epoch of the last modification.
    var modified: Int64
    var isRegularFile: Bool
    var isDirectory: Bool

    /// The status of `path` (symbolic links followed); on failure `errno` tells why.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec)
        isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
        isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
    }
}
