internal import FerryAPI
internal import Crypto
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// A data key sealed by a key-encryption key (AES-256-GCM), as kept in a small file beside what it opens:
/// `blobs/sha256/XX/<digest>.key` for a blob, `catalog.key` for the catalog's sealed columns.
///
/// Layout (76 bytes): magic `FRYWKEY1`, the wrapping key's 8-byte id, a 12-byte random nonce, the 32-byte sealed
/// data key and its 16-byte tag. The associated data is the magic, the id and the file's context (`blob:<digest>`,
/// `catalog`), so a key file copied onto another blob does not open. Outside the blob, so that rotating the
/// key-encryption key replaces this file (write, sync, rename) and never the blob.
struct WrappedDataKey: Sendable, Equatable {
    static let magic = Array("FRYWKEY1".utf8)
    static let size = 76
    /// Hex of the wrapping key's id.
    var keyID: String
    var nonce: [UInt8]
    var sealed: [UInt8]
    var tag: [UInt8]

    /// Seals `dataKey` under `key` for `context`.
    static func wrap(_ dataKey: SymmetricKey, under key: EncryptionKey, context: String) throws -> WrappedDataKey {
        let idBytes = hexBytes(key.id)
        let box = try AES.GCM.seal(dataKey.withUnsafeBytes { Array($0) }, using: key.key,
                                   authenticating: magic + idBytes + Array(context.utf8))
        return WrappedDataKey(keyID: key.id, nonce: Array(box.nonce), sealed: Array(box.ciphertext), tag: Array(box.tag))
    }

    /// The data key, if `key` is the one it was wrapped under and nothing was changed.
    /// - Throws: `ENCRYPTION_KEY_MISMATCH` for another key's file, `BLOB_CORRUPT` when it does not open.
    func unwrap(using key: EncryptionKey, context: String) throws -> SymmetricKey {
        guard key.id == keyID else {
            throw CatalogError(.encryptionKeyMismatch, "\(context) is wrapped under key \(keyID), not under the given key \(key.id)")
        }
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: sealed, tag: tag)
            let bytes = try AES.GCM.open(box, using: key.key, authenticating: Self.magic + Self.hexBytes(keyID) + Array(context.utf8))
            return SymmetricKey(data: bytes)
        } catch {
            throw CatalogError(.blobCorrupt, "the wrapped data key of \(context) does not open: it was changed or belongs elsewhere")
        }
    }

    var bytes: [UInt8] { Self.magic + Self.hexBytes(keyID) + nonce + sealed + tag }

    init(keyID: String, nonce: [UInt8], sealed: [UInt8], tag: [UInt8]) {
        self.keyID = keyID
        self.nonce = nonce
        self.sealed = sealed
        self.tag = tag
    }

    init(bytes: [UInt8], context: String) throws {
        guard bytes.count == Self.size, Array(bytes[0..<8]) == Self.magic else {
            throw CatalogError(.blobCorrupt, "the key file of \(context) is not a Ferry wrapped key")
        }
        keyID = Hex.string(bytes[8..<16])
        nonce = Array(bytes[16..<28])
        sealed = Array(bytes[28..<60])
        tag = Array(bytes[60..<76])
    }

    /// Reads a key file; nil when there is none.
    static func read(path: String, context: String) throws -> WrappedDataKey? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw CatalogError(.storageFailed, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: size + 1)
        let count = Glibc.read(fd, &buffer, buffer.count)
        guard count >= 0 else { throw CatalogError(.storageFailed, "cannot read \(path)") }
        return try WrappedDataKey(bytes: Array(buffer[..<count]), context: context)
    }

    /// Replaces `path` with this key, crash-safely: written to `path.new`, synced, renamed over `path`. At every
    /// instant `path` holds either the old file or this one, whole. The caller syncs the directory.
    func write(path: String) throws {
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CatalogError(errno == ENOSPC ? .storageFull : .storageFailed, "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        let data = bytes
        let written = Glibc.write(fd, data, data.count)
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            let full = errno == ENOSPC
            unlink(temporary)
            throw CatalogError(full ? .storageFull : .storageFailed, "cannot write the key file \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }
}
