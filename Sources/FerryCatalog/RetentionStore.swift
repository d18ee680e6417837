internal import Foundation

/// A pin: the checkpoint is kept whatever the retention policies say (it still counts toward their limits).
public struct PinRecord: Codable, Sendable, Equatable {
    public var checkpointID: String
    public var reason: String
    public var pinnedBy: String
    public var pinnedAt: String

    enum CodingKeys: String, CodingKey {
        case checkpointID = "checkpoint_id"
        case reason
        case pinnedBy = "pinned_by"
        case pinnedAt = "pinned_at"
    }
}

/// One deletion as recorded: what went, when, by whom (a token's name, or `policy:SCOPE`) and why.
public struct DeletionRecord: Codable, Sendable, Equatable {
    public var checkpointID: String
    public var containerName: String
    public var podName: String?
    public var podNamespace: String?
    public var size: Int64
    public var uploadedAt: String
    public var deletedAt: String
    public var deletedBy: String
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case checkpointID = "checkpoint_id"
        case containerName = "container_name"
        case podName = "pod_name"
        case podNamespace = "pod_namespace"
        case size
        case uploadedAt = "uploaded_at"
        case deletedAt = "deleted_at"
        case deletedBy = "deleted_by"
        case reason
    }
}

/// Who deletes a checkpoint, and why: written beside the delete, in its transaction.
public struct DeletionCause: Sendable, Equatable {
    public var by: String
    public var reason: String
    /// A policy never deletes a pinned checkpoint or one an unfinished migration uses; a person may delete one
    /// an unfinished migration no longer needs only by cancelling it first, and a pinned one only by unpinning it.
    public init(by: String, reason: String) {
        self.by = by
        self.reason = reason
    }
}

/// What retention needs of every catalogued checkpoint, oldest upload first.
public struct RetentionItem: Sendable, Equatable {
    public var id: String
    /// Empty for a Podman checkpoint (no namespace, no pod).
    public var namespace: String
    public var pod: String
    public var container: String
    public var containerID: String
    public var size: Int64
    public var uploadedAt: String
    public var sourceNode: String?
    public var pinned: Bool
    /// An unfinished migration restores it.
    public var inUse: Bool

    public init(id: String, namespace: String, pod: String, container: String, containerID: String = "", size: Int64,
                uploadedAt: String, sourceNode: String? = nil, pinned: Bool = false, inUse: Bool = false) {
        self.id = id
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.containerID = containerID
        self.size = size
        self.uploadedAt = uploadedAt
        self.sourceNode = sourceNode
        self.pinned = pinned
        self.inUse = inUse
    }
}

extension PinRecord {
    init(row: SQLRow) throws {
        self.init(checkpointID: try row("checkpoint_id"), reason: try row("reason"), pinnedBy: try row("pinned_by"),
                  pinnedAt: try row("pinned_at"))
    }
}

extension DeletionRecord {
    init(row: SQLRow) throws {
        self.init(checkpointID: try row("checkpoint_id"), containerName: try row("container_name"), podName: try row("pod_name"),
                  podNamespace: try row("pod_namespace"), size: try row("size"), uploadedAt: try row("uploaded_at"),
                  deletedAt: try row("deleted_at"), deletedBy: try row("deleted_by"), reason: try row("reason"))
    }
}

extension Catalog {
    // MARK: Pins

    /// Pins a checkpoint (its full ID); pinning again replaces the reason.
    @discardableResult
    public func pin(_ id: String, reason: String, by: String) throws -> PinRecord {
        let pin = PinRecord(checkpointID: id, reason: reason, pinnedBy: by, pinnedAt: Catalog.timestamp())
        try write { db in
            guard try db.row("SELECT 1 FROM checkpoint WHERE id = ?", id) != nil else {
                throw CatalogError(.checkpointNotFound, "no checkpoint \(id)")
            }
            try db.execute("""
                INSERT INTO checkpoint_pin (checkpoint_id, reason, pinned_by, pinned_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (checkpoint_id) DO UPDATE SET reason = excluded.reason, pinned_by = excluded.pinned_by,
                    pinned_at = excluded.pinned_at
                """, pin.checkpointID, pin.reason, pin.pinnedBy, pin.pinnedAt)
        }
        return pin
    }

    /// Removes a pin; false when there was none.
    @discardableResult
    public func unpin(_ id: String) throws -> Bool {
        try write { try $0.execute("DELETE FROM checkpoint_pin WHERE checkpoint_id = ?", id) > 0 }
    }

    public func pin(of id: String) throws -> PinRecord? {
        try read { try $0.row("SELECT * FROM checkpoint_pin WHERE checkpoint_id = ?", id).map(PinRecord.init(row:)) }
    }

    public func pins() throws -> [PinRecord] {
        try read { try $0.rows("SELECT * FROM checkpoint_pin ORDER BY pinned_at, checkpoint_id").map(PinRecord.init(row:)) }
    }

    // MARK: Retention

    /// Every checkpoint as retention sees it, oldest upload first (ties by ID).
    public func retentionItems() throws -> [RetentionItem] {
        try read { db in
            try db.rows("""
                SELECT c.id, coalesce(c.pod_namespace, '') AS namespace, coalesce(c.pod_name, '') AS pod,
                       c.container_name, c.container_id, c.size, c.uploaded_at, c.source_node,
                       EXISTS (SELECT 1 FROM checkpoint_pin p WHERE p.checkpoint_id = c.id) AS pinned,
                       EXISTS (SELECT 1 FROM migration m WHERE m.checkpoint_id = c.id
                               AND m.state NOT IN ('succeeded', 'failed', 'cancelled')) AS in_use
                FROM checkpoint c ORDER BY c.uploaded_at, c.id
                """).map { row in
                RetentionItem(id: try row("id"), namespace: try row("namespace"), pod: try row("pod"),
                              container: try row("container_name"), containerID: try row("container_id"), size: try row("size"),
                              uploadedAt: try row("uploaded_at"), sourceNode: try row("source_node"), pinned: try row("pinned"),
                              inUse: try row("in_use"))
            }
        }
    }

    /// Deletes a checkpoint row and records why, in one transaction. With `protecting`, a pinned checkpoint or one
    /// an unfinished migration uses is refused (`CHECKPOINT_PINNED`, `CHECKPOINT_IN_USE`) inside that transaction,
    /// so a pin or a migration that lands after a retention plan was made still wins.
    @discardableResult
    public func delete(_ id: String, cause: DeletionCause, protecting: Bool = true) throws -> CheckpointRecord {
        try write { db in
            guard let row = try db.row("SELECT * FROM checkpoint WHERE id = ?", id) else {
                throw CatalogError(.checkpointNotFound, "no checkpoint \(id)")
            }
            if protecting {
                if let pin = try db.row("SELECT * FROM checkpoint_pin WHERE checkpoint_id = ?", id).map(PinRecord.init(row:)) {
                    throw CatalogError(.checkpointPinned, "checkpoint \(id.prefix(12)) is pinned by \(pin.pinnedBy) (\(pin.reason)); unpin it first")
                }
                if let migration: String = try db.value("""
                    SELECT id FROM migration WHERE checkpoint_id = ? AND state NOT IN ('succeeded', 'failed', 'cancelled') LIMIT 1
                    """, id) {
                    throw CatalogError(.checkpointInUse, "checkpoint \(id.prefix(12)) is being restored by migration \(migration)")
                }
            }
            let record = try CheckpointRecord(row: row)
            try db.execute("DELETE FROM checkpoint WHERE id = ?", id)
            try db.execute("""
                INSERT INTO checkpoint_deletion (checkpoint_id, container_name, pod_name, pod_namespace, size, uploaded_at,
                                                 deleted_at, deleted_by, reason)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, id, record.containerName, record.podName, record.podNamespace, record.size, record.uploadedAt,
                Catalog.timestamp(), cause.by, cause.reason)
            return record
        }
    }

    /// Recorded deletions, newest first.
    public func deletions(limit: Int = 100, checkpoint: String? = nil) throws -> [DeletionRecord] {
        try read { db in
            let rows = if let checkpoint {
                try db.rows("SELECT * FROM checkpoint_deletion WHERE checkpoint_id = ? ORDER BY deleted_at DESC, id DESC LIMIT ?",
                            checkpoint, limit)
            } else {
                try db.rows("SELECT * FROM checkpoint_deletion ORDER BY deleted_at DESC, id DESC LIMIT ?", limit)
            }
            return try rows.map(DeletionRecord.init(row:))
        }
    }
}
