/// A stable, machine-readable error code. The same code appears in the CLI's message, the API's JSON and the
/// README's table, so never rename one.
public struct CheckpointErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// The path does not exist or is not a regular file.
    public static let fileNotFound = CheckpointErrorCode(rawValue: "FILE_NOT_FOUND")
    /// The file or stream holds no bytes at all.
    public static let archiveEmpty = CheckpointErrorCode(rawValue: "ARCHIVE_EMPTY")
    /// The bytes are not a tar archive (plain, gzip, zstd, xz or bzip2) that libarchive can read.
    public static let archiveCorrupt = CheckpointErrorCode(rawValue: "ARCHIVE_CORRUPT")
    /// The archive ends in the middle of a header or an entry.
    public static let archiveTruncated = CheckpointErrorCode(rawValue: "ARCHIVE_TRUNCATED")
    /// Reading the file or stream failed below libarchive (I/O error).
    public static let archiveReadFailed = CheckpointErrorCode(rawValue: "ARCHIVE_READ_FAILED")
    /// An entry that Ferry reads whole (JSON metadata, small CRIU images) is larger than its bound.
    public static let entryTooLarge = CheckpointErrorCode(rawValue: "ENTRY_TOO_LARGE")
    /// The archive decompresses to far more than real checkpoints do (a zstd or gzip bomb).
    public static let decompressionBomb = CheckpointErrorCode(rawValue: "DECOMPRESSION_BOMB")
    /// The archive has more entries than the bound allows (a tar bomb).
    public static let tooManyEntries = CheckpointErrorCode(rawValue: "TOO_MANY_ENTRIES")
    /// A readable tar without a `checkpoint/` directory: not a container checkpoint.
    public static let notACheckpoint = CheckpointErrorCode(rawValue: "NOT_A_CHECKPOINT")
    /// A metadata file every engine writes (`config.dump`, `spec.dump`) is absent.
    public static let metadataMissing = CheckpointErrorCode(rawValue: "METADATA_MISSING")
    /// A metadata file is present but is not the JSON its engine writes.
    public static let metadataInvalid = CheckpointErrorCode(rawValue: "METADATA_INVALID")
    /// A CRIU image does not start with the magic its name calls for.
    public static let criuBadMagic = CheckpointErrorCode(rawValue: "CRIU_BAD_MAGIC")
    /// A CRIU image ends inside an entry's length prefix or body.
    public static let criuImageTruncated = CheckpointErrorCode(rawValue: "CRIU_IMAGE_TRUNCATED")
    /// A CRIU image entry is not valid protobuf, or lacks a required field.
    public static let criuImageInvalid = CheckpointErrorCode(rawValue: "CRIU_IMAGE_INVALID")
    /// A process asked for (`--pid`) is not in the checkpoint.
    public static let processNotFound = CheckpointErrorCode(rawValue: "PROCESS_NOT_FOUND")
}

/// An error met while reading a checkpoint archive: a stable code, the archive entry it concerns (if any) and a
/// message meant for people. `underlying` keeps a C library's own text for logs.
public struct CheckpointError: Error, Sendable, CustomStringConvertible {
    public var code: CheckpointErrorCode
    public var message: String
    /// The path inside the archive the error concerns, e.g. `checkpoint/core-1.img`.
    public var entry: String?
    public var underlying: String?

    public init(_ code: CheckpointErrorCode, _ message: String, entry: String? = nil, underlying: String? = nil) {
        self.code = code
        self.message = message
        self.entry = entry
        self.underlying = underlying
    }

    public var description: String {
        var text = message
        if let entry { text = "\(entry): \(text)" }
        return "\(text) [\(code)]"
    }
}
