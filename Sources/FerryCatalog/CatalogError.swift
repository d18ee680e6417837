/// A stable, machine-readable catalog error code (the README's table lists them with their HTTP status).
public struct CatalogErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// No checkpoint has that ID (or ID prefix).
    public static let checkpointNotFound = CatalogErrorCode(rawValue: "CHECKPOINT_NOT_FOUND")
    /// No migration has that ID.
    public static let migrationNotFound = CatalogErrorCode(rawValue: "MIGRATION_NOT_FOUND")
    /// An ID prefix matches more than one checkpoint.
    public static let ambiguousID = CatalogErrorCode(rawValue: "AMBIGUOUS_ID")
    /// A list filter, sort key or cursor is malformed.
    public static let invalidQuery = CatalogErrorCode(rawValue: "INVALID_QUERY")
    /// The disk holding the data directory is full.
    public static let storageFull = CatalogErrorCode(rawValue: "STORAGE_FULL")
    /// Writing, syncing or renaming a blob failed.
    public static let storageFailed = CatalogErrorCode(rawValue: "STORAGE_FAILED")
    /// The object store holding the blobs (`--blobs s3://…`) could not be reached, or refused or failed a request.
    public static let objectStoreFailed = CatalogErrorCode(rawValue: "OBJECT_STORE_FAILED")
    /// `--catalog` names no catalog Ferry can open (not `sqlite`, a path or a `postgres://` URL).
    public static let invalidCatalog = CatalogErrorCode(rawValue: "INVALID_CATALOG")
    /// The catalog's engine (SQLite or PostgreSQL) reported an error, or the PostgreSQL server could not be reached.
    public static let databaseFailed = CatalogErrorCode(rawValue: "DATABASE_FAILED")
    /// The checkpoint is pinned: nothing deletes it until it is unpinned.
    public static let checkpointPinned = CatalogErrorCode(rawValue: "CHECKPOINT_PINNED")
    /// An unfinished migration restores the checkpoint.
    public static let checkpointInUse = CatalogErrorCode(rawValue: "CHECKPOINT_IN_USE")
    /// The database was written by a newer Ferry (it has migrations this binary does not know).
    public static let databaseTooNew = CatalogErrorCode(rawValue: "DATABASE_TOO_NEW")
    /// A stored blob (or a sealed catalog value) failed authentication: changed, cut short, or mixed with another.
    public static let blobCorrupt = CatalogErrorCode(rawValue: "BLOB_CORRUPT")
    /// The encryption key file is not a Ferry key, or is damaged.
    public static let encryptionKeyInvalid = CatalogErrorCode(rawValue: "ENCRYPTION_KEY_INVALID")
    /// The encryption key file may be read or written by group or others.
    public static let encryptionKeyUnsafe = CatalogErrorCode(rawValue: "ENCRYPTION_KEY_UNSAFE")
    /// The data directory's data keys are wrapped under another key than the one given.
    public static let encryptionKeyMismatch = CatalogErrorCode(rawValue: "ENCRYPTION_KEY_MISMATCH")
    /// The data directory holds encrypted blobs and no key was given.
    public static let encryptionKeyRequired = CatalogErrorCode(rawValue: "ENCRYPTION_KEY_REQUIRED")
    /// `ferry keygen` was asked to write over an existing file.
    public static let encryptionKeyExists = CatalogErrorCode(rawValue: "ENCRYPTION_KEY_EXISTS")
}

/// An error of the catalog or blob store: a stable code and a message for people. `underlying` keeps SQLite's own
/// text for the log; it is never sent to clients.
public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public var code: CatalogErrorCode
    public var message: String
    public var underlying: String?

    public init(_ code: CatalogErrorCode, _ message: String, underlying: String? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { "\(message) [\(code)]" }
}
