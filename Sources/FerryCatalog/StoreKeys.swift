internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// The wrapped data keys of a data directory as a whole: checked at start-up against the key given, and rotated
/// from one key-encryption key to another by `ferry rekey`.
public enum StoreKeys {
    /// What the start-up check found.
    public struct Census: Sendable, Equatable {
        /// Blobs stored sealed (with a key file).
        public var sealedBlobs: Int
        /// Whether the catalog has a column key (`catalog.key`).
        public var catalogKey: Bool
    }

    /// What a rotation did.
    public struct Rotation: Codable, Sendable, Equatable {
        /// Key files re-wrapped under the new key by this run.
        public var rewrapped: Int
        /// Key files already under the new key (an earlier, interrupted run did them).
        public var alreadyNew: Int

        enum CodingKeys: String, CodingKey {
            case rewrapped
            case alreadyNew = "already_new"
        }
    }

    /// Every key file of the data directory whose blob exists, and the context its key was wrapped for.
    /// Leftovers (`*.key.new` of an interrupted write, keys whose blob is gone) are removed if `removingLeftovers`.
    static func keyFiles(dataDirectory: String, removingLeftovers: Bool) -> [(path: String, context: String)] {
        var files: [(String, String)] = []
        let catalogKey = dataDirectory + "/" + ColumnCipher.fileName
        if access(catalogKey, F_OK) == 0 { files.append((catalogKey, ColumnCipher.context)) }
        if removingLeftovers { unlink(catalogKey + ".new") }
        let base = dataDirectory + "/blobs/sha256"
        for prefix in ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).sorted() {
            let directory = base + "/" + prefix
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
                let path = directory + "/" + name
                if name.hasSuffix(".key.new") {
                    if removingLeftovers { unlink(path) }
                    continue
                }
                guard name.hasSuffix(".key") else { continue }
                let digest = String(name.dropLast(4))
                guard access(directory + "/" + digest, F_OK) == 0 else {
                    if removingLeftovers { unlink(path) }
                    continue
                }
                files.append((path, BlobStore.keyContext(digest)))
            }
        }
        return files
    }

    /// Checks that `key` opens the data directory: every wrapped data key must name it. Without a key, a
    /// directory holding any wrapped key is refused, so an encrypted store never starts half-readable.
    /// - Throws: `ENCRYPTION_KEY_REQUIRED`, `ENCRYPTION_KEY_MISMATCH`, `BLOB_CORRUPT` (a damaged key file).
    public static func verify(dataDirectory: String, key: EncryptionKey?, removingLeftovers: Bool) throws -> Census {
        let files = keyFiles(dataDirectory: dataDirectory, removingLeftovers: removingLeftovers)
        var census = Census(sealedBlobs: 0, catalogKey: false)
        var foreign: [String: Int] = [:]
        for file in files {
            guard let wrapped = try WrappedDataKey.read(path: file.path, context: file.context) else { continue }
            if file.context == ColumnCipher.context { census.catalogKey = true } else { census.sealedBlobs += 1 }
            if wrapped.keyID != key?.id { foreign[wrapped.keyID, default: 0] += 1 }
        }
        guard !foreign.isEmpty else { return census }
        let named = foreign.sorted { $0.key < $1.key }.map { "\($0.value) under key \($0.key)" }.joined(separator: ", ")
        guard let key else {
            throw CatalogError(.encryptionKeyRequired,
                "the data directory \(dataDirectory) is encrypted (\(named)); start with --encryption-key FILE")
        }
        throw CatalogError(.encryptionKeyMismatch,
            "the data directory \(dataDirectory) has data keys wrapped under another key than \(key.id) (\(named)); give that key, "
            + "or finish an interrupted rotation with ferry rekey --old-key OLD --new-key NEW")
    }

    /// Re-wraps every data key of the data directory from `old` to `new`, one key file at a time, each replaced
    /// by a synced rename: blobs are not touched, and however the run ends (a kill -9 included) every key file is
    /// whole and under one of the two keys. Run it again to finish; files already under `new` are skipped.
    /// `afterEach` runs after each re-wrapped file with the count so far (tests stop a run there).
    /// The caller holds the data directory's lock (no service runs).
    /// - Throws: `ENCRYPTION_KEY_MISMATCH` for a key file under neither key (nothing else is changed after it).
    public static func rotate(dataDirectory: String, from old: EncryptionKey, to new: EncryptionKey,
                              afterEach: ((Int) throws -> Void)? = nil) throws -> Rotation {
        var rotation = Rotation(rewrapped: 0, alreadyNew: 0)
        var touched: Set<String> = []
        defer {
            // Renames are durable once their directory is synced; a crash before that leaves the old file, whole.
            for directory in touched { try? BlobStore.fsyncDirectory(directory) }
        }
        for file in keyFiles(dataDirectory: dataDirectory, removingLeftovers: true) {
            guard let wrapped = try WrappedDataKey.read(path: file.path, context: file.context) else { continue }
            if wrapped.keyID == new.id {
                rotation.alreadyNew += 1
                continue
            }
            let dataKey = try wrapped.unwrap(using: old, context: file.context)
            try WrappedDataKey.wrap(dataKey, under: new, context: file.context).write(path: file.path)
            touched.insert((file.path as NSString).deletingLastPathComponent)
            rotation.rewrapped += 1
            try afterEach?(rotation.rewrapped)
        }
        return rotation
    }
}
