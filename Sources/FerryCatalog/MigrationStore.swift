internal import Foundation
public import FerryAPI

/// A node as its agent last reported it.
public struct NodeRecord: Codable, Sendable, Equatable {
    public var name: String
    public var agentURL: String
    public var driver: String?
    /// The node's facts (FerryValidation's `TargetFacts`) as JSON.
    public var facts: String
    public var runtimeVersion: String?
    public var freeDiskBytes: Int64?
    public var version: String?
    public var firstSeenAt: String
    public var lastSeenAt: String

    enum CodingKeys: String, CodingKey {
        case name, driver, facts, version
        case agentURL = "agent_url"
        case runtimeVersion = "runtime_version"
        case freeDiskBytes = "free_disk_bytes"
        case firstSeenAt = "first_seen_at"
        case lastSeenAt = "last_seen_at"
    }

    public init(name: String, agentURL: String, driver: String?, facts: String, runtimeVersion: String?,
                freeDiskBytes: Int64?, version: String?, firstSeenAt: String, lastSeenAt: String) {
        self.name = name
        self.agentURL = agentURL
        self.driver = driver
        self.facts = facts
        self.runtimeVersion = runtimeVersion
        self.freeDiskBytes = freeDiskBytes
        self.version = version
        self.firstSeenAt = firstSeenAt
        self.lastSeenAt = lastSeenAt
    }
}

/// A migration: a persisted state machine that moves a checkpoint (or a running container, checkpointed first)
/// to a target node and restores it there.
public struct MigrationRecord: Codable, Sendable, Equatable {
    public var id: String
    public var requestKey: String
    public var explicitKey: Bool
    public var checkpointID: String?
    public var sourceNode: String?
    public var sourceContainer: String?
    public var targetNode: String
    /// Restore and checkpoint options as JSON.
    public var options: String
    public var state: MigrationState
    public var errorCode: String?
    public var errorMessage: String?
    /// The driver's result (``JobResult``) as JSON.
    public var result: String?
    /// Whether the source container was stopped by this migration's checkpoint (so a failure must roll back).
    public var sourceStopped: Bool
    /// After a failure that needed a rollback: whether the source runs the container again.
    public var rolledBack: Bool?
    /// `[MigrationPhase]` as JSON.
    public var phases: String
    /// The `[BlockingFinding]` that stopped the migration, as JSON.
    public var findings: String?
    public var bytesDone: Int64
    public var bytesTotal: Int64
    public var createdAt: String
    public var updatedAt: String
    public var finishedAt: String?
    public var deadlineAt: String

    enum CodingKeys: String, CodingKey {
        case id, options, state, result, phases, findings
        case sourceStopped = "source_stopped"
        case rolledBack = "rolled_back"
        case requestKey = "request_key"
        case explicitKey = "explicit_key"
        case checkpointID = "checkpoint_id"
        case sourceNode = "source_node"
        case sourceContainer = "source_container"
        case targetNode = "target_node"
        case errorCode = "error_code"
        case errorMessage = "error_message"
        case bytesDone = "bytes_done"
        case bytesTotal = "bytes_total"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case finishedAt = "finished_at"
        case deadlineAt = "deadline_at"
    }

    public init(id: String, requestKey: String, explicitKey: Bool, checkpointID: String?, sourceNode: String?,
                sourceContainer: String?, targetNode: String, options: String, deadlineAt: String) {
        self.id = id
        self.requestKey = requestKey
        self.explicitKey = explicitKey
        self.checkpointID = checkpointID
        self.sourceNode = sourceNode
        self.sourceContainer = sourceContainer
        self.targetNode = targetNode
        self.options = options
        self.state = .pending
        self.sourceStopped = false
        self.phases = "[]"
        self.bytesDone = 0
        self.bytesTotal = 0
        let now = Catalog.timestamp()
        self.createdAt = now
        self.updatedAt = now
        self.deadlineAt = deadlineAt
    }
}

extension NodeRecord {
    init(row: SQLRow) throws {
        self.init(name: try row("name"), agentURL: try row("agent_url"), driver: try row("driver"), facts: try row("facts"),
                  runtimeVersion: try row("runtime_version"), freeDiskBytes: try row("free_disk_bytes"),
                  version: try row("version"), firstSeenAt: try row("first_seen_at"), lastSeenAt: try row("last_seen_at"))
    }

    /// Inserts the node, or replaces what its row says.
    func save(_ db: any SQLConnection) throws {
        try db.execute("""
            INSERT INTO node (name, agent_url, driver, facts, runtime_version, free_disk_bytes, version, first_seen_at, last_seen_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET agent_url = excluded.agent_url, driver = excluded.driver, facts = excluded.facts,
                runtime_version = excluded.runtime_version, free_disk_bytes = excluded.free_disk_bytes,
                version = excluded.version, last_seen_at = excluded.last_seen_at
            """, name, agentURL, driver, facts, runtimeVersion, freeDiskBytes, version, firstSeenAt, lastSeenAt)
    }
}

extension MigrationRecord {
    init(row: SQLRow) throws {
        self.init(id: try row("id"), requestKey: try row("request_key"), explicitKey: try row("explicit_key"),
                  checkpointID: try row("checkpoint_id"), sourceNode: try row("source_node"),
                  sourceContainer: try row("source_container"), targetNode: try row("target_node"),
                  options: try row("options"), deadlineAt: try row("deadline_at"))
        let stateText: String = try row("state")
        guard let state = MigrationState(rawValue: stateText) else {
            throw CatalogError(.databaseFailed, "migration \(id) has the unknown state \(stateText.prefix(40))")
        }
        self.state = state
        errorCode = try row("error_code")
        errorMessage = try row("error_message")
        result = try row("result")
        sourceStopped = try row("source_stopped")
        rolledBack = try row("rolled_back")
        phases = try row("phases")
        findings = try row("findings")
        bytesDone = try row("bytes_done")
        bytesTotal = try row("bytes_total")
        createdAt = try row("created_at")
        updatedAt = try row("updated_at")
        finishedAt = try row("finished_at")
    }

    /// The columns after `id`, in the order `values` gives them.
    private static let columns = [
        "request_key", "explicit_key", "checkpoint_id", "source_node", "source_container", "target_node", "options",
        "state", "error_code", "error_message", "result", "source_stopped", "rolled_back", "phases", "findings",
        "bytes_done", "bytes_total", "created_at", "updated_at", "finished_at", "deadline_at",
    ]

    private var values: [any SQLArgument] {
        [requestKey, explicitKey, checkpointID, sourceNode, sourceContainer, targetNode, options, state.rawValue,
         errorCode, errorMessage, result, sourceStopped, rolledBack, phases, findings, bytesDone, bytesTotal, createdAt,
         updatedAt, finishedAt, deadlineAt]
    }

    func insert(_ db: any SQLConnection) throws {
        try db.insert(into: "migration", columns: ["id"] + Self.columns, values: [id] + values)
    }

    func update(_ db: any SQLConnection) throws {
        let assignments = Self.columns.map { "\($0) = ?" }.joined(separator: ", ")
        try db.execute("UPDATE migration SET \(assignments) WHERE id = ?", values + [id])
    }
}

extension Catalog {
    // MARK: Nodes

    /// Records a heartbeat: inserts the node or updates what it reported.
    public func recordHeartbeat(name: String, agentURL: String, driver: String?, facts: String, runtimeVersion: String?,
                                freeDiskBytes: Int64?, version: String?) throws -> NodeRecord {
        let now = Catalog.timestamp()
        return try writeNodesAndMigrations { db in
            var node = try db.row("SELECT * FROM node WHERE name = ?", name).map(NodeRecord.init(row:)) ?? NodeRecord(
                name: name, agentURL: agentURL, driver: driver, facts: facts, runtimeVersion: runtimeVersion,
                freeDiskBytes: freeDiskBytes, version: version, firstSeenAt: now, lastSeenAt: now)
            node.agentURL = agentURL
            node.driver = driver
            node.facts = facts
            node.runtimeVersion = runtimeVersion
            node.freeDiskBytes = freeDiskBytes
            node.version = version
            node.lastSeenAt = now
            try node.save(db)
            return node
        }
    }

    public func node(_ name: String) throws -> NodeRecord? {
        try read { try $0.row("SELECT * FROM node WHERE name = ?", name).map(NodeRecord.init(row:)) }
    }

    public func nodes() throws -> [NodeRecord] {
        try read { try $0.rows("SELECT * FROM node ORDER BY name").map(NodeRecord.init(row:)) }
    }

    // MARK: Migrations

    /// Creates a migration, unless one with the same request key should answer instead: any migration with the
    /// same explicit Idempotency-Key, or an unfinished one for the same request. Returns it and whether it is new.
    public func createMigration(_ migration: MigrationRecord) throws -> (MigrationRecord, created: Bool) {
        try writeNodesAndMigrations { db in
            let sameKey = try db.rows("SELECT * FROM migration WHERE request_key = ? ORDER BY created_at DESC",
                                      migration.requestKey).map(MigrationRecord.init(row:))
            if let existing = sameKey.first(where: { migration.explicitKey || !$0.state.isTerminal }) {
                return (existing, false)
            }
            try migration.insert(db)
            try Self.appendEvent(db, migration.id, .pending, "migration requested")
            return (migration, true)
        }
    }

    public func migration(_ id: String) throws -> MigrationRecord {
        guard let migration = try read({ try $0.row("SELECT * FROM migration WHERE id = ?", id).map(MigrationRecord.init(row:)) }) else {
            throw CatalogError(.migrationNotFound, "no migration \(id.prefix(80))")
        }
        return migration
    }

    /// Migrations, newest first, optionally only those in one state.
    public func migrations(state: MigrationState? = nil, limit: Int = 100) throws -> [MigrationRecord] {
        try read { db in
            let rows = if let state {
                try db.rows("SELECT * FROM migration WHERE state = ? ORDER BY created_at DESC, id DESC LIMIT ?", state.rawValue, limit)
            } else {
                try db.rows("SELECT * FROM migration ORDER BY created_at DESC, id DESC LIMIT ?", limit)
            }
            return try rows.map(MigrationRecord.init(row:))
        }
    }

    /// The migrations not yet finished, oldest first: the orchestrator's work list.
    public func unfinishedMigrations() throws -> [MigrationRecord] {
        try read { db in
            try db.rows("SELECT * FROM migration WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY created_at, id")
                .map(MigrationRecord.init(row:))
        }
    }

    /// Applies `change` to a migration in one transaction and logs `events` (each at its own time, the reporting
    /// node's clock; nil means now). A finished migration is never changed again (a late agent answer cannot revive
    /// a cancelled one), except when `changingFinished` is set: a late rollback outcome is still recorded.
    @discardableResult
    public func updateMigration(_ id: String, events: [(at: String?, message: String)] = [], changingFinished: Bool = false,
                                _ change: (inout MigrationRecord) -> Void) throws -> MigrationRecord {
        try writeNodesAndMigrations { db in
            guard var migration = try db.row("SELECT * FROM migration WHERE id = ?", id).map(MigrationRecord.init(row:)) else {
                throw CatalogError(.migrationNotFound, "no migration \(id)")
            }
            guard !migration.state.isTerminal || changingFinished else { return migration }
            let before = migration
            change(&migration)
            if migration != before {
                migration.updatedAt = Catalog.timestamp()
                if migration.state.isTerminal && !before.state.isTerminal { migration.finishedAt = migration.updatedAt }
                try migration.update(db)
            }
            for event in events { try Self.appendEvent(db, id, migration.state, event.message, at: event.at) }
            return migration
        }
    }

    /// ``updateMigration(_:events:changingFinished:_:)`` with one event logged now.
    @discardableResult
    public func updateMigration(_ id: String, event: String?, _ change: (inout MigrationRecord) -> Void) throws -> MigrationRecord {
        try updateMigration(id, events: event.map { [(at: nil, message: $0)] } ?? [], change)
    }


    public func migrationEvents(_ id: String) throws -> [MigrationEvent] {
        try read { db in
            try db.rows("SELECT at, state, message FROM migration_event WHERE migration_id = ? ORDER BY id", id).map { row in
                MigrationEvent(at: try row("at"), state: MigrationState(rawValue: try row("state")) ?? .pending, message: try row("message"))
            }
        }
    }

    private static func appendEvent(_ db: any SQLConnection, _ id: String, _ state: MigrationState, _ message: String,
                                    at: String? = nil) throws {
        try db.execute("INSERT INTO migration_event (migration_id, at, state, message) VALUES (?, ?, ?, ?)",
                       id, at ?? Catalog.timestamp(), state.rawValue, message)
    }
}
