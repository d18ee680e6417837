internal import Crypto
internal import Foundation

/// Seals the catalog's values that come out of an archive's contents (today: the stored inspection, with every
/// process's command line, environment and mounts) when the data directory is encrypted, so the SQLite files hold
/// no archive secret either.
///
/// Values are sealed with AES-256-GCM under the catalog's data key, which is kept wrapped by the key-encryption
/// key in `catalog.key` (``WrappedDataKey``), created with the first encrypted start. A sealed value is the text
/// `ferry-sealed:v1:` + base64(nonce ‖ ciphertext ‖ tag); its associated data names the column and the row, so
/// values cannot be moved between rows. Values written before encryption was on stay readable as they are.
public final class ColumnCipher: @unchecked Sendable {
    // @unchecked Sendable invariant: `dataKey` is immutable (see EncryptionKey).
    let dataKey: SymmetricKey
    static let prefix = "ferry-sealed:v1:"
    static let fileName = "catalog.key"
    static let context = "catalog"

    init(dataKey: SymmetricKey) { self.dataKey = dataKey }

    /// The catalog's cipher of `dataDirectory`: `catalog.key` opened with `key`, or made now when it is missing.
    /// - Throws: `ENCRYPTION_KEY_MISMATCH` when `catalog.key` is wrapped under another key, `BLOB_CORRUPT`.
    public static func open(dataDirectory: String, key: EncryptionKey) throws -> ColumnCipher {
        let path = dataDirectory + "/" + fileName
        if let wrapped = try WrappedDataKey.read(path: path, context: context) {
            return ColumnCipher(dataKey: try wrapped.unwrap(using: key, context: context))
        }
        let dataKey = SymmetricKey(size: .bits256)
        try WrappedDataKey.wrap(dataKey, under: key, context: context).write(path: path)
        try BlobStore.fsyncDirectory(dataDirectory)
        return ColumnCipher(dataKey: dataKey)
    }

    static func isSealed(_ text: String) -> Bool { text.hasPrefix(prefix) }

    func seal(_ text: String, column: String, row: String) throws -> String {
        let box = try AES.GCM.seal(Array(text.utf8), using: dataKey, authenticating: Array("\(column):\(row)".utf8))
        return Self.prefix + (box.combined ?? Data()).base64EncodedString()
    }

    func open(_ text: String, column: String, row: String) throws -> String {
        guard let data = Data(base64Encoded: String(text.dropFirst(Self.prefix.count))),
              let box = try? AES.GCM.SealedBox(combined: data),
              let plain = try? AES.GCM.open(box, using: dataKey, authenticating: Array("\(column):\(row)".utf8)) else {
            throw CatalogError(.blobCorrupt, "the sealed \(column) of \(row.prefix(12)) does not open")
        }
        return String(decoding: plain, as: UTF8.self)
    }
}
