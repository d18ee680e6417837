import CheckpointArchive
import FerryCatalog
import FerryHTTP

/// Every error code the service answers with, its HTTP status and what it means: the one registry. Handlers throw
/// `HTTPError(.code, message)`; the catalog's and the archive reader's codes map to statuses here only; the
/// README's error table is kept equal to ``all`` by a test. Never rename a code: clients branch on them.
struct ServiceErrorCode: Hashable, Sendable {
    let rawValue: String
    let status: Int
    let meaning: String

    // 400
    static let bodyRequired = Self("BODY_REQUIRED", 400, "The request needs a body (an archive, a JSON document).")
    static let invalidQuery = Self("INVALID_QUERY", 400, "A query parameter is malformed or out of range.")
    static let invalidLabels = Self("INVALID_LABELS", 400, "Labels are not `key=value` pairs of the allowed characters.")
    static let invalidNode = Self("INVALID_NODE", 400, "A node name is not letters, digits, '-', '.' and '_'.")
    static let invalidPreflight = Self("INVALID_PREFLIGHT", 400, "The preflight request is not `{target, options}` JSON.")
    static let invalidHeartbeat = Self("INVALID_HEARTBEAT", 400, "The heartbeat is not the agent's JSON, or names another node.")
    static let invalidMigration = Self("INVALID_MIGRATION", 400, "The migration request is not a valid `MigrationRequest`.")
    static let invalidReport = Self("INVALID_REPORT", 400, "The job report is not a valid `JobReport`, or names another job.")
    static let invalidCheckpointRequest = Self("INVALID_CHECKPOINT_REQUEST", 400, "The node checkpoint request is not a valid `NodeCheckpointRequest`.")
    static let invalidPin = Self("INVALID_PIN", 400, "The pin request is not `{\"reason\": \"…\"}` with a reason of 1 to 500 characters.")
    static let invalidUploadID = Self("INVALID_UPLOAD_ID", 400, "`Ferry-Upload-ID` is not 1 to 128 letters, digits, '-', '.' and '_'.")
    static let badRequest = Self("BAD_REQUEST", 400, "The request is malformed.")
    static let badFraming = Self("BAD_FRAMING", 400, "The message length is ambiguous (RFC 9112); the connection is closed.")
    // 401, 403
    static let unauthorized = Self("UNAUTHORIZED", 401, "No token, an unknown token, or an expired sign-in.")
    static let forbidden = Self("FORBIDDEN", 403, "The token's role may not do this.")
    // 404, 405, 409, 410
    static let notFound = Self("NOT_FOUND", 404, "No such route or resource.")
    static let checkpointNotFound = Self("CHECKPOINT_NOT_FOUND", 404, "No checkpoint with that ID or prefix.")
    static let migrationNotFound = Self("MIGRATION_NOT_FOUND", 404, "No migration with that ID (or no migration has that job).")
    static let nodeNotFound = Self("NODE_NOT_FOUND", 404, "No node of that name has registered.")
    static let jobNotFound = Self("JOB_NOT_FOUND", 404, "No checkpoint job with that ID on that node.")
    static let uploadNotFound = Self("UPLOAD_NOT_FOUND", 404, "No upload of that name from that node is arriving or ended in the last 10 minutes.")
    static let statementNotFound = Self("STATEMENT_NOT_FOUND", 404, "No signed statement for that checkpoint, or no chain for that container.")
    static let methodNotAllowed = Self("METHOD_NOT_ALLOWED", 405, "The route exists, not with this method.")
    static let ambiguousID = Self("AMBIGUOUS_ID", 409, "The ID prefix matches several checkpoints.")
    static let factsMissing = Self("FACTS_MISSING", 409, "The node has not reported the facts preflight needs.")
    static let migrationFinished = Self("MIGRATION_FINISHED", 409, "The migration has already ended.")
    static let nodeDown = Self("NODE_DOWN", 409, "The node has sent no heartbeat within `--node-timeout`.")
    static let uploadFailed = Self("UPLOAD_FAILED", 409, "The live upload ended without being catalogued.")
    static let checkpointPinned = Self("CHECKPOINT_PINNED", 409, "The checkpoint is pinned; unpin it before deleting it.")
    static let checkpointInUse = Self("CHECKPOINT_IN_USE", 409, "An unfinished migration restores the checkpoint.")
    static let retentionNotConfigured = Self("RETENTION_NOT_CONFIGURED", 409, "No retention policies are configured (`--retention FILE`).")
    static let notKubernetesMigration = Self("NOT_A_KUBERNETES_MIGRATION", 409, "Only a migration into Kubernetes takes an outcome from its client.")
    static let containerMismatch = Self("CONTAINER_MISMATCH", 409, "The two checkpoints compared are of different containers.")
    static let blobMissing = Self("BLOB_MISSING", 410, "The catalog has the checkpoint but its archive is gone from the store.")
    // 413, 415, 416, 422, 431
    static let payloadTooLarge = Self("PAYLOAD_TOO_LARGE", 413, "The body is larger than the server takes.")
    static let unsupportedMediaType = Self("UNSUPPORTED_MEDIA_TYPE", 415, "An upload must be `application/octet-stream` (or a tar type).")
    static let rangeNotSatisfiable = Self("RANGE_NOT_SATISFIABLE", 416, "The range lies outside the archive.")
    static let requestHeadersTooLarge = Self("REQUEST_HEADERS_TOO_LARGE", 431, "The request line and headers are too large.")
    // 499, 500, 503, 507
    static let clientDisconnected = Self("CLIENT_DISCONNECTED", 499, "The client went away mid-request (logged, never sent).")
    static let internalError = Self("INTERNAL_ERROR", 500, "A bug; the log has the details.")
    static let databaseFailed = Self("DATABASE_FAILED", 500, "The catalog database failed.")
    static let storageFailed = Self("STORAGE_FAILED", 500, "The blob store could not be written.")
    static let databaseTooNew = Self("DATABASE_TOO_NEW", 500, "The catalog was written by a newer Ferry.")
    static let invalidCatalog = Self("INVALID_CATALOG", 500, "--catalog names no catalog Ferry can open (sqlite, a file or a postgres:// URL).")
    static let objectStoreFailed = Self("OBJECT_STORE_FAILED", 502, "The object store (`--blobs s3://…`) could not be reached, or refused or failed a request.")
    static let blobCorrupt = Self("BLOB_CORRUPT", 500, "An encrypted blob or sealed catalog value failed authentication (changed, cut short or mixed up); no bytes of it are served.")
    static let encryptionKeyInvalid = Self("ENCRYPTION_KEY_INVALID", 500, "At start: `--encryption-key` is not a Ferry key file, or is damaged.")
    static let encryptionKeyUnsafe = Self("ENCRYPTION_KEY_UNSAFE", 500, "At start: the key file is readable or writable by group or others (chmod 600).")
    static let encryptionKeyMismatch = Self("ENCRYPTION_KEY_MISMATCH", 500, "At start: the data directory's data keys are wrapped under another key (or a rotation is unfinished: run `ferry rekey` again).")
    static let encryptionKeyRequired = Self("ENCRYPTION_KEY_REQUIRED", 500, "At start: the data directory holds encrypted data and no `--encryption-key` was given.")
    static let encryptionKeyExists = Self("ENCRYPTION_KEY_EXISTS", 500, "`ferry keygen -o FILE`: FILE exists; a key is never overwritten.")
    static let notReady = Self("NOT_READY", 503, "The catalog cannot be read or the data directory written.")
    static let lowDiskSpace = Self("LOW_DISK_SPACE", 503, "Free space is below `--min-free-space`.")
    static let serverShuttingDown = Self("SERVER_SHUTTING_DOWN", 503, "The service is stopping.")
    static let storageFull = Self("STORAGE_FULL", 507, "The disk is full.")

    /// Every code, in the README's order. The archive reader's codes (422) are listed after these.
    static let all: [ServiceErrorCode] = [
        .bodyRequired, .invalidQuery, .invalidLabels, .invalidNode, .invalidPreflight, .invalidHeartbeat,
        .invalidMigration, .invalidReport, .invalidCheckpointRequest, .invalidPin, .invalidUploadID, .badRequest, .badFraming, .unauthorized,
        .forbidden, .notFound, .checkpointNotFound, .migrationNotFound, .nodeNotFound, .jobNotFound, .uploadNotFound, .statementNotFound,
        .methodNotAllowed, .ambiguousID, .factsMissing, .migrationFinished, .nodeDown, .uploadFailed, .checkpointPinned, .checkpointInUse, .retentionNotConfigured, .notKubernetesMigration, .containerMismatch, .blobMissing,
        .payloadTooLarge, .unsupportedMediaType, .rangeNotSatisfiable, .requestHeadersTooLarge,
        .clientDisconnected, .internalError, .databaseFailed, .storageFailed, .databaseTooNew, .invalidCatalog,
        .objectStoreFailed, .blobCorrupt, .encryptionKeyInvalid, .encryptionKeyUnsafe, .encryptionKeyMismatch, .encryptionKeyRequired, .encryptionKeyExists,
        .notReady, .lowDiskSpace, .serverShuttingDown, .storageFull,
    ]

    /// The archive reader's codes, each answered with 422 (an upload Ferry cannot read as a checkpoint).
    static let archiveCodes: [String] = [
        "FILE_NOT_FOUND", "ARCHIVE_EMPTY", "ARCHIVE_CORRUPT", "ARCHIVE_TRUNCATED", "ARCHIVE_READ_FAILED",
        "ENTRY_TOO_LARGE", "DECOMPRESSION_BOMB", "TOO_MANY_ENTRIES", "NOT_A_CHECKPOINT", "METADATA_MISSING",
        "METADATA_INVALID", "CRIU_BAD_MAGIC", "CRIU_IMAGE_TRUNCATED", "CRIU_IMAGE_INVALID", "PROCESS_NOT_FOUND",
    ]

    /// The registry entry of a catalog error (every catalog code is one; a test checks).
    static func of(_ code: CatalogErrorCode) -> ServiceErrorCode {
        all.first { $0.rawValue == code.rawValue } ?? .databaseFailed
    }

    private init(_ rawValue: String, _ status: Int, _ meaning: String) {
        self.rawValue = rawValue
        self.status = status
        self.meaning = meaning
    }
}

extension HTTPError {
    /// An error of the registry, with a message for people.
    init(_ code: ServiceErrorCode, _ message: String) {
        self.init(status: code.status, code: code.rawValue, message: message)
    }

    /// An archive the reader refused: 422 with the reader's own code.
    static func archiveRejected(_ error: CheckpointError) -> HTTPError {
        HTTPError(status: 422, code: error.code.rawValue, message: error.entry.map { "\($0): \(error.message)" } ?? error.message)
    }
}
