/// The states of a migration. Terminal: succeeded, failed, cancelled.
///
/// pending (preflight against both nodes' live facts; nothing is stopped yet) → checkpointing (on the source) →
/// transferring (the target downloads) → restoring (the target's runtime) → succeeded. Anything failing after the
/// source was stopped goes through rolling_back (the source restores its own archive) to failed or cancelled.
public enum MigrationState: String, Codable, Sendable, CaseIterable {
    case pending, checkpointing, transferring, restoring
    case rollingBack = "rolling_back"
    case succeeded, failed, cancelled

    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// `POST /api/v1/migrations` (client → service): move a catalogued checkpoint, or a running container
/// (checkpointed first on its source node), to a target node.
public struct MigrationRequest: Codable, Sendable, Equatable {
    public struct Source: Codable, Sendable, Equatable {
        public var node: String
        public var container: String
        public init(node: String, container: String) {
            self.node = node
            self.container = container
        }
    }

    /// A catalogued checkpoint (ID or unique prefix)…
    public var checkpoint: String?
    /// …or a running container to checkpoint first.
    public var source: Source?
    public var target: String
    /// Restore options for the target's driver (`RestoreOptions` keys plus `keep`, `ignore_volumes`).
    public var options: [String: JSONScalar]?
    /// Checkpoint options on the source (`compress`, `leave_running`, `tcp_established`, `keep`).
    public var checkpointOptions: [String: JSONScalar]?
    /// Preflight finding codes to accept anyway.
    public var waive: [String]?
    public var timeoutSeconds: Double?
    /// Restore as this Pod in Kubernetes (`target` is then a Kubernetes node); needs `checkpoint`.
    public var kubernetes: KubernetesTarget?
    /// For a live migration: whether the target starts downloading while the source's upload still arrives
    /// (default true).
    public var cutThrough: Bool?

    public init(checkpoint: String? = nil, source: Source? = nil, target: String, options: [String: JSONScalar]? = nil,
                checkpointOptions: [String: JSONScalar]? = nil, waive: [String]? = nil, timeoutSeconds: Double? = nil,
                kubernetes: KubernetesTarget? = nil, cutThrough: Bool? = nil) {
        self.cutThrough = cutThrough
        self.kubernetes = kubernetes
        self.checkpoint = checkpoint
        self.source = source
        self.target = target
        self.options = options
        self.checkpointOptions = checkpointOptions
        self.waive = waive
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey {
        case checkpoint, source, target, options, waive, kubernetes
        case checkpointOptions = "checkpoint_options"
        case timeoutSeconds = "timeout_seconds"
        case cutThrough = "cut_through"
    }
}

/// A migration's options as stored and shown.
public struct MigrationOptions: Codable, Sendable, Equatable {
    public var restore: [String: JSONScalar]
    public var checkpoint: [String: JSONScalar]
    public var waive: [String]
    /// For a migration into Kubernetes: its Pod.
    public var kubernetes: KubernetesTarget?
    /// False: the target downloads only once the checkpoint is catalogued (no cut-through).
    public var cutThrough: Bool?

    public init(restore: [String: JSONScalar] = [:], checkpoint: [String: JSONScalar] = [:], waive: [String] = [],
                kubernetes: KubernetesTarget? = nil, cutThrough: Bool? = nil) {
        self.cutThrough = cutThrough
        self.kubernetes = kubernetes
        self.restore = restore
        self.checkpoint = checkpoint
        self.waive = waive
    }

    enum CodingKeys: String, CodingKey {
        case restore, checkpoint, waive, kubernetes
        case cutThrough = "cut_through"
    }
}

/// One timed phase of a migration: `preflight`, `checkpoint`, `frozen` (the processes' frozen time CRIU
/// recorded in `stats-dump`), `upload`, `transfer`, `restore`, `rollback`. Times are the clock of the node that
/// did the work (the service's for preflight); `frozen` has a duration only.
public struct MigrationPhase: Codable, Sendable, Equatable {
    public var name: String
    public var node: String?
    public var startedAt: String?
    public var endedAt: String?
    public var durationMs: Int64?

    public init(name: String, node: String?, startedAt: String?, endedAt: String?, durationMs: Int64?) {
        self.name = name
        self.node = node
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.durationMs = durationMs
    }

    enum CodingKeys: String, CodingKey {
        case name, node
        case startedAt = "started_at"
        case endedAt = "ended_at"
        case durationMs = "duration_ms"
    }
}

/// One entry of a migration's event log. `at` is when it happened, in the clock of the node that reported it.
public struct MigrationEvent: Codable, Sendable, Equatable {
    public var at: String
    public var state: MigrationState
    public var message: String

    public init(at: String, state: MigrationState, message: String) {
        self.at = at
        self.state = state
        self.message = message
    }
}

/// A preflight finding that blocked a migration.
public struct BlockingFinding: Codable, Sendable, Equatable {
    public var code: String
    public var message: String
    public var waiver: String?

    public init(code: String, message: String, waiver: String?) {
        self.code = code
        self.message = message
        self.waiver = waiver
    }
}

/// A migration as the API shows it (`GET /api/v1/migrations/{id}`, and each item of the list).
public struct MigrationView: Codable, Sendable, Equatable {
    public struct Failure: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }
    public struct Progress: Codable, Sendable, Equatable {
        public var bytesDone: Int64
        public var bytesTotal: Int64
        public init(bytesDone: Int64, bytesTotal: Int64) {
            self.bytesDone = bytesDone
            self.bytesTotal = bytesTotal
        }
        enum CodingKeys: String, CodingKey { case bytesDone = "bytes_done", bytesTotal = "bytes_total" }
    }

    public var id: String
    public var state: MigrationState
    public var checkpoint: String?
    public var source: MigrationRequest.Source?
    public var target: String
    public var options: MigrationOptions
    public var error: Failure?
    /// After a failure: true when the source runs the container again (restored from its own archive, or never
    /// stopped), false when the rollback failed; nil for a migration of a catalogued checkpoint, which stops nothing.
    public var rolledBack: Bool?
    /// Where the container runs now, as far as the service knows: the target node, the source node, or nil.
    public var runningOn: String?
    public var progress: Progress
    public var phases: [MigrationPhase]
    public var findings: [BlockingFinding]?
    public var result: JobResult?
    public var createdAt: String
    public var updatedAt: String
    public var finishedAt: String?
    public var deadlineAt: String
    /// Only in `GET /api/v1/migrations/{id}`.
    public var events: [MigrationEvent]?

    public init(id: String, state: MigrationState, checkpoint: String?, source: MigrationRequest.Source?, target: String,
                options: MigrationOptions, error: Failure?, rolledBack: Bool?, runningOn: String?, progress: Progress,
                phases: [MigrationPhase], findings: [BlockingFinding]?, result: JobResult?, createdAt: String,
                updatedAt: String, finishedAt: String?, deadlineAt: String, events: [MigrationEvent]?) {
        self.id = id
        self.state = state
        self.checkpoint = checkpoint
        self.source = source
        self.target = target
        self.options = options
        self.error = error
        self.rolledBack = rolledBack
        self.runningOn = runningOn
        self.progress = progress
        self.phases = phases
        self.findings = findings
        self.result = result
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
        self.deadlineAt = deadlineAt
        self.events = events
    }

    enum CodingKeys: String, CodingKey {
        case id, state, checkpoint, source, target, options, error, progress, phases, findings, result, events
        case rolledBack = "rolled_back"
        case runningOn = "running_on"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case finishedAt = "finished_at"
        case deadlineAt = "deadline_at"
    }
}

/// `GET /api/v1/migrations`.
public struct MigrationList: Codable, Sendable, Equatable {
    public var items: [MigrationView]
    public init(items: [MigrationView]) { self.items = items }
}
