internal import FerryAPI
internal import Crypto
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// The key-encryption key of a data directory (`--encryption-key FILE`): 256 random bits that wrap every blob's
/// own data key and the catalog's column key. It never encrypts archive bytes itself, so rotating it re-wraps a
/// few bytes per blob and rewrites no blob.
///
/// The file is one line, `ferry-encryption-key:v1:<id>:<base64 of 32 bytes>`, after optional `#` comments. The id is
/// derived from the key (HMAC-SHA256 of a fixed label, first 8 bytes in hex), so a wrapped key names the key it
/// needs without revealing anything about it, and a key file whose id does not match its key is refused.
public struct EncryptionKey: @unchecked Sendable {
    // @unchecked Sendable invariant: SymmetricKey (not marked Sendable by swift-crypto) is an immutable value whose
    // storage is never written after init.
    public let id: String
    let key: SymmetricKey

    static let prefix = "ferry-encryption-key:v1:"

    init(key: SymmetricKey) {
        self.key = key
        id = Self.identifier(of: key)
    }

    /// A new random key.
    public static func generate() -> EncryptionKey {
        EncryptionKey(key: SymmetricKey(size: .bits256))
    }

    static func identifier(of key: SymmetricKey) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("ferry key id v1".utf8), using: key)
        return Hex.string(Array(mac).prefix(8))
    }

    /// The file's text.
    public var fileText: String {
        let bytes = key.withUnsafeBytes { Data($0) }
        return "# Ferry encryption key (ferry keygen). Without it the encrypted data directory cannot be read.\n"
            + Self.prefix + id + ":" + bytes.base64EncodedString() + "\n"
    }

    /// Parses a key file's text.
    /// - Throws: `ENCRYPTION_KEY_INVALID`.
    public init(fileText text: String, path: String = "the key file") throws {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard lines.count == 1, lines[0].hasPrefix(Self.prefix) else {
            throw CatalogError(.encryptionKeyInvalid, "\(path) is not a Ferry encryption key (make one with ferry keygen -o FILE)")
        }
        let fields = lines[0].dropFirst(Self.prefix.count).split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 2, let bytes = Data(base64Encoded: String(fields[1])), bytes.count == 32 else {
            throw CatalogError(.encryptionKeyInvalid, "\(path) does not hold a 256-bit key")
        }
        self.init(key: SymmetricKey(data: bytes))
        guard id == fields[0] else {
            throw CatalogError(.encryptionKeyInvalid, "\(path) is damaged: its key id \(fields[0]) is not the id of its key")
        }
    }

    /// Reads a key file, refusing one that group or others may read or write: the key opens every archive.
    /// - Throws: `ENCRYPTION_KEY_UNSAFE`, `ENCRYPTION_KEY_INVALID`.
    public static func load(path: String) throws -> EncryptionKey {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CatalogError(.encryptionKeyInvalid, "cannot open the encryption key \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw CatalogError(.encryptionKeyInvalid, "the encryption key \(path) is not a regular file")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw CatalogError(.encryptionKeyUnsafe,
                "the encryption key \(path) has mode \(String(info.st_mode & 0o777, radix: 8)); it must be readable by its owner only (chmod 600)")
        }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { throw CatalogError(.encryptionKeyInvalid, "cannot read the encryption key \(path)") }
        return try EncryptionKey(fileText: String(decoding: bytes[..<count], as: UTF8.self), path: path)
    }

    /// Writes the key to a new file, mode 0600, synced; never replaces an existing file.
    /// - Throws: `ENCRYPTION_KEY_EXISTS`, `STORAGE_FAILED`.
    public func write(toNewFile path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw CatalogError(.encryptionKeyExists, "\(path) exists; ferry keygen never replaces a key (the data it wraps would be lost)")
            }
            throw CatalogError(.storageFailed, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // The mode asked for is filtered by the umask; make sure it is exactly 0600.
        fchmod(fd, 0o600)
        let bytes = Array(fileText.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw CatalogError(.storageFailed, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
