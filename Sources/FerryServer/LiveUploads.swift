import FerryCatalog
import Foundation

/// Uploads that other nodes may read while they are still arriving: the cut-through of a migration, where the
/// target downloads the archive as the source uploads it instead of after.
///
/// An upload takes part when its uploader names it (`Ferry-Upload-ID`) and says which node it comes from; it is
/// then known as `NODE/ID`, so a node token can only ever name uploads of its own node. Readers get bytes only
/// once they are in the upload's file (written, not yet fsynced: the reader checks the final digest itself, and a
/// migration restores only what the catalog has acknowledged).
///
/// Bounded: at most ``maximumEntries`` entries, and a finished one is forgotten after ``retention`` seconds (its
/// file descriptor closed). Nothing survives a restart: the uploader then sends again, under the same name.
final class LiveUploads: @unchecked Sendable {
    // @unchecked Sendable invariant: `entries` is only touched with `lock` held.
    private let lock = NSLock()
    private var entries: [String: LiveUpload] = [:]
    let maximumEntries: Int
    let retention: Double

    init(maximumEntries: Int = 256, retention: Double = 600) {
        self.maximumEntries = maximumEntries
        self.retention = retention
    }

    /// A node name's characters (letters, digits, '-', '.' and '_'), 1 to 128 of them (an agent's job ID).
    static func isValidID(_ id: String) -> Bool {
        id.utf8.count <= 128 && NodeAPI.isValidName(id)
    }

    /// Registers an upload whose bytes `reader` reads (its file opened for reading already, so that the bytes stay
    /// readable once the file is renamed into the blob store or removed; with the upload's data key when the store
    /// encrypts). A newer upload under the same name replaces the older one (the uploader's retry). Nil when the
    /// table is full of unfinished uploads: the upload then goes on without readers.
    func begin(node: String, id: String, reader: BlobReader) -> LiveUpload? {
        let upload = LiveUpload(key: "\(node)/\(id)", reader: reader)
        lock.lock()
        defer { lock.unlock() }
        expire(now: Date())
        if let older = entries[upload.key] {
            older.finish(.failed(code: "UPLOAD_REPLACED", message: "a newer upload of the same name replaced it"))
        } else if entries.count >= maximumEntries {
            return nil
        }
        entries[upload.key] = upload
        return upload
    }

    func upload(node: String, id: String) -> LiveUpload? {
        lock.lock()
        defer { lock.unlock() }
        expire(now: Date())
        return entries["\(node)/\(id)"]
    }

    /// Must be called with the lock held.
    private func expire(now: Date) {
        for (key, upload) in entries {
            if let ended = upload.endedAt, now.timeIntervalSince(ended) > retention {
                entries[key] = nil
            }
        }
    }
}

/// One upload as its readers see it: how many bytes are in its file, and how it ended.
final class LiveUpload: @unchecked Sendable {
    // @unchecked Sendable invariant: `received`, `outcome` and `endedAt` are only touched with `condition` locked;
    // `reader` is fixed for the object's life (its descriptor closed when the last reader lets go of it).
    enum Outcome: Sendable, Equatable {
        case receiving
        /// Catalogued as `checkpoint` (for a plain archive, the SHA-256 of the bytes read).
        case complete(checkpoint: String)
        case failed(code: String, message: String)
    }

    let key: String
    /// Reads the upload's file: plain, its `path` (`/proc/self/fd/N`) opens the same file for `sendfile` even after
    /// it was renamed or unlinked; sealed (an encrypted store), it opens complete chunks only, and `received`
    /// counts only the bytes of those (all once the upload is finished).
    let reader: BlobReader
    private let condition = NSCondition()
    private var received: Int64 = 0
    private var outcome = Outcome.receiving
    private(set) var endedAt: Date?

    init(key: String, reader: BlobReader) {
        self.key = key
        self.reader = reader
    }

    /// Live uploads are local files only (an object store's upload has no live reader).
    var path: String { reader.path! }

    /// The uploader wrote more bytes: `total` are in the file now.
    func advance(to total: Int64) {
        condition.lock()
        if case .receiving = outcome, total > received {
            received = total
            condition.broadcast()
        }
        condition.unlock()
    }

    func finish(_ ending: Outcome) {
        condition.lock()
        if case .receiving = outcome {
            outcome = ending
            endedAt = Date()
            condition.broadcast()
        }
        condition.unlock()
    }

    var state: (received: Int64, outcome: Outcome) {
        condition.lock()
        defer { condition.unlock() }
        return (received, outcome)
    }

    /// Waits (at most `seconds`) until the file holds more than `offset` bytes or the upload ended; then, while
    /// fewer than `batch` bytes are there past `offset`, up to `linger` seconds more for them, so a reader that
    /// keeps up with the uploader gets slices of a useful size rather than one request per network read.
    func wait(beyond offset: Int64, seconds: Double, batch: Int64 = 1 << 20, linger: Double = 0.1)
        -> (received: Int64, outcome: Outcome) {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while received <= offset, case .receiving = outcome {
            if !condition.wait(until: deadline) { break }
        }
        let lingerUntil = Date(timeIntervalSinceNow: linger)
        while received > offset, received - offset < batch, case .receiving = outcome {
            if !condition.wait(until: lingerUntil) { break }
        }
        return (received, outcome)
    }
}
