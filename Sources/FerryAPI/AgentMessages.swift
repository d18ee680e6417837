public import FerryValidation

/// What an agent job does. `restore` (target node): download a catalogued checkpoint and restore it.
/// `checkpoint` (source node): checkpoint a running container and upload the archive. `rollback` (source node):
/// bring the container back from the archive its checkpoint job kept, after the migration failed.
public enum AgentJobKind: String, Codable, Sendable, CaseIterable {
    case restore, checkpoint, rollback
}

/// A job's states. restore: downloading → restoring → succeeded | failed; checkpoint: checkpointing → uploading →
/// succeeded | failed; rollback: restoring → succeeded | failed. A finished job never changes again.
public enum AgentJobState: String, Codable, Sendable, CaseIterable {
    case downloading, restoring, checkpointing, uploading, succeeded, failed

    public var isFinished: Bool { self == .succeeded || self == .failed }
}

/// The container a restore is expected to create, from the checkpoint's `config.dump` (or `--name`): how an agent
/// recognises, after a restart, a restore it already completed, and what it removes after a failed one.
public struct ExpectedContainer: Codable, Sendable, Equatable {
    public var id: String?
    public var name: String?

    public init(id: String?, name: String?) {
        self.id = id
        self.name = name
    }
}

/// `POST /v1/jobs` on an agent (service → agent).
public struct AgentJobRequest: Codable, Sendable, Equatable {
    public var id: String
    public var kind: AgentJobKind
    /// restore: the checkpoint ID (64 hex digits) to download; rollback: the same, downloaded only when the
    /// checkpoint job's archive is gone.
    public var checkpoint: String?
    /// restore: the archive's size in bytes.
    public var size: Int64?
    /// checkpoint, rollback: the container's name or ID on this node.
    public var container: String?
    /// The runtime's options (restore: `RestoreOptions` keys plus `keep`, `ignore_volumes`; checkpoint:
    /// `compress`, `leave_running`, `tcp_established`, `keep`).
    public var options: [String: JSONScalar]?
    /// restore, rollback: the container the restore creates.
    public var expected: ExpectedContainer?
    /// rollback: the checkpoint job whose archive to restore from.
    public var sourceJob: String?
    /// restore: the live upload a prefetch on this node may already have fetched (the migration's cut-through).
    public var prefetch: PrefetchRequest?

    public init(id: String, kind: AgentJobKind, checkpoint: String? = nil, size: Int64? = nil, container: String? = nil,
                options: [String: JSONScalar]? = nil, expected: ExpectedContainer? = nil, sourceJob: String? = nil,
                prefetch: PrefetchRequest? = nil) {
        self.prefetch = prefetch
        self.id = id
        self.kind = kind
        self.checkpoint = checkpoint
        self.size = size
        self.container = container
        self.options = options
        self.expected = expected
        self.sourceJob = sourceJob
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, checkpoint, size, container, options, expected, prefetch
        case sourceJob = "source_job"
    }
}

/// `POST /v1/prefetch` (service → target agent): start fetching an upload while it still arrives at the service
/// (`GET /api/v1/nodes/{node}/uploads/{upload}/archive`), so that the restore job that follows finds the archive
/// on disk. Idempotent: a second request for the same upload changes nothing.
public struct PrefetchRequest: Codable, Sendable, Equatable, Hashable {
    /// The node the upload comes from.
    public var node: String
    /// Its name for the upload (the source's checkpoint job ID).
    public var upload: String

    public init(node: String, upload: String) {
        self.node = node
        self.upload = upload
    }

    /// `NODE/UPLOAD`, the service's name for it.
    public var key: String { "\(node)/\(upload)" }
}

/// One timed step of a job, in the agent's own clock: `checkpoint`, `upload`, `transfer`, `restore`, `rollback`.
public struct JobPhase: Codable, Sendable, Equatable {
    public var name: String
    public var startedAt: String
    public var endedAt: String?

    public init(name: String, startedAt: String, endedAt: String? = nil) {
        self.name = name
        self.startedAt = startedAt
        self.endedAt = endedAt
    }

    enum CodingKeys: String, CodingKey {
        case name
        case startedAt = "started_at"
        case endedAt = "ended_at"
    }
}

/// What the runtime left: the restored container, the exit status and the end of its output.
public struct JobResult: Codable, Sendable, Equatable {
    public var containerID: String?
    public var exitStatus: Int32?
    public var outputTail: String?
    /// A container the agent removed: one a failed restore left behind, or one restored for a migration the
    /// service had given up on.
    public var removedContainer: String?

    public init(containerID: String? = nil, exitStatus: Int32? = nil, outputTail: String? = nil, removedContainer: String? = nil) {
        self.containerID = containerID
        self.exitStatus = exitStatus
        self.outputTail = outputTail
        self.removedContainer = removedContainer
    }

    enum CodingKeys: String, CodingKey {
        case containerID = "container_id"
        case exitStatus = "exit_status"
        case outputTail = "output_tail"
        case removedContainer = "removed_container"
    }
}

/// Why a job failed: a stable code and a message (with the runtime's own error line when it gave one).
public struct JobFailure: Codable, Sendable, Equatable {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// A job as an agent shows it (`GET /v1/jobs/{id}`) and reports it to the service.
public struct AgentJobStatus: Codable, Sendable, Equatable {
    public var id: String
    public var kind: AgentJobKind
    public var state: AgentJobState
    public var bytesDone: Int64
    public var bytesTotal: Int64
    public var checkpoint: String?
    public var container: String?
    public var result: JobResult?
    public var error: JobFailure?
    public var phases: [JobPhase]
    /// checkpoint jobs: whether the container still runs on this node, as the agent found it after the job ended
    /// (nil: unknown). A failed checkpoint whose container runs needs no rollback.
    public var containerRunning: Bool?
    /// restore jobs: the archive came from the prefetch of the live upload (cut-through), not a download after it.
    public var prefetched: Bool?
    public var createdAt: String
    public var updatedAt: String

    public init(id: String, kind: AgentJobKind, state: AgentJobState, bytesDone: Int64 = 0, bytesTotal: Int64 = 0,
                checkpoint: String? = nil, container: String? = nil, result: JobResult? = nil, error: JobFailure? = nil,
                phases: [JobPhase] = [], containerRunning: Bool? = nil, prefetched: Bool? = nil, createdAt: String, updatedAt: String) {
        self.prefetched = prefetched
        self.id = id
        self.kind = kind
        self.state = state
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.checkpoint = checkpoint
        self.container = container
        self.result = result
        self.error = error
        self.phases = phases
        self.containerRunning = containerRunning
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, state, checkpoint, container, result, error, phases, prefetched
        case bytesDone = "bytes_done"
        case bytesTotal = "bytes_total"
        case containerRunning = "container_running"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// `POST /api/v1/nodes/{node}/jobs/{id}/report` (agent → service): a job's state, sent as it changes, and
/// before each irreversible step (starting or resuming a checkpoint or a restore) to ask whether to go on.
public struct JobReport: Codable, Sendable, Equatable {
    public var job: AgentJobStatus
    /// When the agent sent it, in its own clock.
    public var sentAt: String

    public init(job: AgentJobStatus, sentAt: String) {
        self.job = job
        self.sentAt = sentAt
    }

    enum CodingKeys: String, CodingKey {
        case job
        case sentAt = "sent_at"
    }
}

/// The service's answer to a ``JobReport``: whether the migration still wants this job. `proceed: false` means the
/// service has given up on it (node down, timeout, cancel, rollback): the agent starts nothing more for it and
/// undoes a restore it completed.
public struct JobVerdict: Codable, Sendable, Equatable {
    public var proceed: Bool
    public var reason: String?

    public init(proceed: Bool, reason: String? = nil) {
        self.proceed = proceed
        self.reason = reason
    }
}

/// `GET /v1/containers/{name}` on an agent: a container as its runtime sees it right now, with the facts the
/// preflight judges a migration of it by (image, addresses, TCP connections), before anything is stopped.
public struct ContainerReport: Codable, Sendable, Equatable {
    public var name: String
    public var exists: Bool
    public var running: Bool
    /// The runtime's own word for the state (`running`, `exited`, `created`, …).
    public var status: String?
    public var id: String?
    /// The checkpoint facts the container would produce; nil when the driver cannot tell.
    public var facts: CheckpointFacts?

    public init(name: String, exists: Bool, running: Bool, status: String? = nil, id: String? = nil, facts: CheckpointFacts? = nil) {
        self.name = name
        self.exists = exists
        self.running = running
        self.status = status
        self.id = id
        self.facts = facts
    }
}

/// `POST /api/v1/nodes/{name}/heartbeat` (agent → service).
public struct HeartbeatRequest: Codable, Sendable, Equatable {
    public var name: String
    public var agentURL: String
    public var driver: String?
    public var facts: TargetFacts?
    public var runtimeVersion: String?
    public var freeDiskBytes: Int64?
    public var version: String?

    public init(name: String, agentURL: String, driver: String?, facts: TargetFacts?, runtimeVersion: String?,
                freeDiskBytes: Int64?, version: String?) {
        self.name = name
        self.agentURL = agentURL
        self.driver = driver
        self.facts = facts
        self.runtimeVersion = runtimeVersion
        self.freeDiskBytes = freeDiskBytes
        self.version = version
    }

    enum CodingKeys: String, CodingKey {
        case name, driver, facts, version
        case agentURL = "agent_url"
        case runtimeVersion = "runtime_version"
        case freeDiskBytes = "free_disk_bytes"
    }
}

/// The JSON error body of the service and the agents: `{"error":{"code","message"}}`.
public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
    }
    public var error: Detail
}
