import Foundation

/// The raw file calls the agent makes in more than one place.
enum FileIO {
    /// The last `maximum` bytes of a file (all of it when shorter; empty when it cannot be read).
    static func tail(of path: String, maximum: Int) -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else { return Data() }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd() else { return Data() }
        try? handle.seek(toOffset: end > UInt64(maximum) ? end - UInt64(maximum) : 0)
        return (try? handle.readToEnd()) ?? Data()
    }
}
