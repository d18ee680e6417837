internal import GRDB
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

struct PinRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "checkpoint_pin"
    var checkpoint_id: String
    var reason: String
    var pinned_by: String
    var pinned_at: String

    var record: PinRecord {
        PinRecord(checkpointID: checkpoint_id, reason: reason, pinnedBy: pinned_by, pinnedAt: pinned_at)
    }
}

struct DeletionRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "checkpoint_deletion"
    var id: Int64?
    var checkpoint_id: String
    var container_name: String
    var pod_name: String?
    var pod_namespace: String?
    var size: Int64
    var uploaded_at: String
    var deleted_at: String
    var deleted_by: String
    var reason: String

    var record: DeletionRecord {
        DeletionRecord(checkpointID: checkpoint_id, containerName: container_name, podName: pod_name, podNamespace: pod_namespace,
                       size: size, uploadedAt: uploaded_at, deletedAt: deleted_at, deletedBy: deleted_by, reason: reason)
    }
}

extension Catalog {
    // MARK: Pins

    /// Pins a checkpoint (its full ID); pinning again replaces the reason.
    @discardableResult
    public func pin(_ id: String, reason: String, by: String) throws -> PinRecord {
        let row = PinRow(checkpoint_id: id, reason: reason, pinned_by: by, pinned_at: Catalog.timestamp())
        try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM checkpoint WHERE id = ?", arguments: [id]) == true else {
                throw CatalogError(.checkpointNotFound, "no checkpoint \(id)")
            }
            try row.save(db)
        }
        return row.record
    }

    /// Removes a pin; false when there was none.
    @discardableResult
    public func unpin(_ id: String) throws -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM checkpoint_pin WHERE checkpoint_id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func pin(of id: String) throws -> PinRecord? {
        try read { try PinRow.fetchOne($0, key: id)?.record }
    }

    public func pins() throws -> [PinRecord] {
        try read { try PinRow.order(sql: "pinned_at, checkpoint_id").fetchAll($0).map(\.record) }
    }

    // MARK: Retention

    /// Every checkpoint as retention sees it, oldest upload first (ties by ID).
    public func retentionItems() throws -> [RetentionItem] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.id, coalesce(c.pod_namespace, '') AS namespace, coalesce(c.pod_name, '') AS pod,
                       c.container_name, c.container_id, c.size, c.uploaded_at, c.source_node,
                       EXISTS (SELECT 1 FROM checkpoint_pin p WHERE p.checkpoint_id = c.id) AS pinned,
                       EXISTS (SELECT 1 FROM migration m WHERE m.checkpoint_id = c.id
                               AND m.state NOT IN ('succeeded', 'failed', 'cancelled')) AS in_use
                FROM checkpoint c ORDER BY c.uploaded_at, c.id
                """).map { row in
                RetentionItem(id: row["id"], namespace: row["namespace"], pod: row["pod"], container: row["container_name"],
                              containerID: row["container_id"], size: row["size"], uploadedAt: row["uploaded_at"],
                              sourceNode: row["source_node"], pinned: row["pinned"], inUse: row["in_use"])
            }
        }
    }

    /// Deletes a checkpoint row and records why, in one transaction. With `protecting`, a pinned checkpoint or one
    /// an unfinished migration uses is refused (`CHECKPOINT_PINNED`, `CHECKPOINT_IN_USE`) inside that transaction,
    /// so a pin or a migration that lands after a retention plan was made still wins.
    @discardableResult
    public func delete(_ id: String, cause: DeletionCause, protecting: Bool = true) throws -> CheckpointRecord {
        try write { db in
            guard let row = try CheckpointRow.fetchOne(db, key: id) else {
                throw CatalogError(.checkpointNotFound, "no checkpoint \(id)")
            }
            if protecting {
                if let pin = try PinRow.fetchOne(db, key: id) {
                    throw CatalogError(.checkpointPinned, "checkpoint \(id.prefix(12)) is pinned by \(pin.pinned_by) (\(pin.reason)); unpin it first")
                }
                if let migration = try String.fetchOne(db, sql: """
                    SELECT id FROM migration WHERE checkpoint_id = ? AND state NOT IN ('succeeded', 'failed', 'cancelled') LIMIT 1
                    """, arguments: [id]) {
                    throw CatalogError(.checkpointInUse, "checkpoint \(id.prefix(12)) is being restored by migration \(migration)")
                }
            }
            let record = row.record
            try row.delete(db)
            let deletion = DeletionRow(
                id: nil, checkpoint_id: id, container_name: record.containerName, pod_name: record.podName,
                pod_namespace: record.podNamespace, size: record.size, uploaded_at: record.uploadedAt,
                deleted_at: Catalog.timestamp(), deleted_by: cause.by, reason: cause.reason)
            try deletion.insert(db)
            return record
        }
    }

    /// Recorded deletions, newest first.
    public func deletions(limit: Int = 100, checkpoint: String? = nil) throws -> [DeletionRecord] {
        try read { db in
            var request = DeletionRow.order(sql: "deleted_at DESC, id DESC").limit(limit)
            if let checkpoint { request = request.filter(sql: "checkpoint_id = ?", arguments: [checkpoint]) }
            return try request.fetchAll(db).map(\.record)
        }
    }
}
