internal import Foundation

extension Catalog {
    /// Every checkpoint ID in the catalog.
    public func allCheckpointIDs() throws -> Set<String> {
        try read { Set(try $0.rows("SELECT id FROM checkpoint").map { try $0("id") as String }) }
    }

    /// Records that these rows' blobs are missing (kept until the same bytes are uploaded again).
    public func markBlobMissing(_ ids: [String]) throws {
        let now = Catalog.timestamp()
        try write { db in
            for id in ids {
                try db.execute("""
                    INSERT INTO checkpoint_problem (checkpoint_id, problem, found_at) VALUES (?, 'blob_missing', ?)
                    ON CONFLICT DO NOTHING
                    """, id, now)
            }
        }
    }

    /// Clears a row's problem (its blob is back).
    public func clearProblem(_ id: String) throws {
        try write { try $0.execute("DELETE FROM checkpoint_problem WHERE checkpoint_id = ?", id) }
    }

    /// The rows marked as missing their blob.
    public func rowsMissingBlob() throws -> Set<String> {
        try read {
            Set(try $0.rows("SELECT checkpoint_id FROM checkpoint_problem WHERE problem = 'blob_missing'").map { try $0("checkpoint_id") as String })
        }
    }
}

/// The blob store checked against the catalog: blobs no row names (a crash between a blob's rename and its row's
/// insert leaves one), and rows whose blob is gone. With `repair`, orphan blobs are removed and such rows marked.
/// Run by `ferry serve` at start-up and by `ferry fsck`.
public enum StoreConsistency {
    public struct Report: Codable, Sendable, Equatable {
        public var rows: Int
        public var blobs: Int
        /// Blobs with no row; removed when repairing.
        public var orphanBlobs: [String]
        /// Rows whose blob is missing; marked when repairing.
        public var rowsWithoutBlob: [String]
        public var repaired: Bool

        public var isClean: Bool { orphanBlobs.isEmpty && rowsWithoutBlob.isEmpty }

        enum CodingKeys: String, CodingKey {
            case rows, blobs, repaired
            case orphanBlobs = "orphan_blobs"
            case rowsWithoutBlob = "rows_without_blob"
        }
    }

    public static func check(catalog: Catalog, blobs: BlobStore, repair: Bool) throws -> Report {
        let ids = try catalog.allCheckpointIDs()
        let digests = try blobs.allDigests()
        var orphans: [String] = []
        for digest in digests.subtracting(ids).sorted() {
            // Judged again under the digest's lock: an upload may be between its blob and its row right now.
            let stillOrphan = try blobs.withDigestLock(digest) { () -> Bool in
                guard try !catalog.contains(digest) else { return false }
                if repair { blobs.remove(digest) }
                return true
            }
            if stillOrphan { orphans.append(digest) }
        }
        // The rows were read before the listing, and a blob is stored before its row, so a row's blob missing from
        // the listing is missing, or deleted with its row since. A second listing confirms it: one pass over the
        // store rather than a request per row (a million on an object store after a lost bucket).
        var unlisted = ids.subtracting(digests)
        if !unlisted.isEmpty { unlisted.subtract(try blobs.allDigests()) }
        let missing = unlisted.sorted()
        if repair && !missing.isEmpty { try catalog.markBlobMissing(missing) }
        // Key files whose blob is gone, and half-written ones, are leftovers too.
        if repair { _ = StoreKeys.keyFiles(dataDirectory: blobs.root, removingLeftovers: true) }
        return Report(rows: ids.count, blobs: digests.count, orphanBlobs: orphans, rowsWithoutBlob: missing, repaired: repair)
    }
}

/// An exclusive `flock` on `DATA_DIR/ferry.lock`: one service per data directory, and `ferry fsck --repair` only
/// while none runs. The kernel drops it with the descriptor, also when the process is killed.
public final class DataDirectoryLock: @unchecked Sendable {
    // @unchecked Sendable invariant: `fd` is only touched with `lock` held.
    private let lock = NSLock()
    private var fd: Int32

    /// - Throws: `CatalogError(.storageFailed)` when another process holds the directory.
    public init(_ directory: String) throws {
        let path = directory + "/ferry.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CatalogError(.storageFailed, "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw CatalogError(.storageFailed, "another Ferry process (a running ferry serve) is using the data directory \(directory)")
        }
    }

    deinit { release() }

    public func release() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }
}
