/// A stable, machine-readable code for what went wrong in the agent: in a job's `error`, in the agent API's JSON
/// errors and in its log. Never rename one; the service and its users branch on them.
public struct AgentErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// The restore command exited with a non-zero status or could not be started.
    public static let restoreFailed = AgentErrorCode("RESTORE_FAILED")
    /// The checkpoint command exited with a non-zero status or could not be started.
    public static let checkpointFailed = AgentErrorCode("CHECKPOINT_FAILED")
    /// The service gave the job's migration up (node down, deadline, cancel, rollback); the agent stopped the job
    /// and undid what it had done (a restored container is removed).
    public static let abandoned = AgentErrorCode("ABANDONED")
    /// A rollback could not bring the container back on this node.
    public static let rollbackFailed = AgentErrorCode("ROLLBACK_FAILED")
    /// A restore would create a container whose name or ID is already taken on this node (it is left alone).
    public static let containerExists = AgentErrorCode("CONTAINER_EXISTS")
    /// The job was cancelled with `DELETE /v1/jobs/{id}`.
    public static let cancelled = AgentErrorCode("CANCELLED")
    /// The agent stopped while the driver ran, and the driver does not allow running it again.
    public static let interrupted = AgentErrorCode("INTERRUPTED")
    /// The archive could not be downloaded from the service (it stayed unreachable, or answered garbage).
    public static let downloadFailed = AgentErrorCode("DOWNLOAD_FAILED")
    /// The checkpoint archive could not be uploaded to the service.
    public static let uploadFailed = AgentErrorCode("UPLOAD_FAILED")
    /// The archive is not vouched for: it has no statement signed by the pinned service key, or its bytes are not
    /// the ones the statement signs. Nothing is restored.
    public static let signatureInvalid = AgentErrorCode("SIGNATURE_INVALID")
    /// The archive has an entry under `checkpoint/` whose name could escape the images directory.
    public static let unsafeArchive = AgentErrorCode("UNSAFE_ARCHIVE")
    /// The runtime driver cannot do this kind of job (the `criu` driver and checkpoints, a `command` driver
    /// without `--checkpoint-command`).
    public static let driverUnsupported = AgentErrorCode("DRIVER_UNSUPPORTED")
    /// A file in the work directory could not be written or read.
    public static let fileError = AgentErrorCode("FILE_ERROR")
    /// `POST /v1/jobs` with a body that is not a job.
    public static let invalidJob = AgentErrorCode("INVALID_JOB")
    /// No job with that ID.
    public static let jobNotFound = AgentErrorCode("JOB_NOT_FOUND")
    /// A request without the agent's bearer token.
    public static let unauthorized = AgentErrorCode("UNAUTHORIZED")
}

/// An error of the agent: a stable code and a message for people. Messages never carry archive contents or
/// environment values.
public struct AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: AgentErrorCode
    public var message: String

    public init(_ code: AgentErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(message) [\(code)]" }
}
