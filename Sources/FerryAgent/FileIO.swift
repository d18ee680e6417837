import Foundation

/// The raw file calls the agent makes in more than one place.
enum FileIO {
    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR; false on an error (disk full, I/O).
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    /// The last `maximum` bytes of a file (all of it when shorter; empty when it cannot be read).
    static func tail(of path: String, maximum: Int) -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else { return Data() }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd() else { return Data() }
        try? handle.seek(toOffset: end > UInt64(maximum) ? end - UInt64(maximum) : 0)
        return (try? handle.readToEnd()) ?? Data()
    }
}
