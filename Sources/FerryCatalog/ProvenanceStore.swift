internal import GRDB
public import FerryAPI
internal import Foundation

/// Where a new statement goes in its chain: given to the signer inside the insert's transaction, so two uploads of
/// one container at once still form one chain.
public struct ChainPosition: Sendable, Equatable {
    public var key: String
    public var index: Int
    public var previousStatement: String?
    public var previousCheckpoint: String?
}

/// A signed statement as the catalog keeps it.
public struct StoredStatement: Sendable, Equatable {
    public var checkpointID: String
    public var chainKey: String
    public var chainIndex: Int
    public var statementDigest: String
    /// The DSSE envelope, as JSON.
    public var envelope: String
    /// The envelope decoded; nil when the stored text is not one.
    public var decodedEnvelope: StatementEnvelope? {
        try? JSONDecoder().decode(StatementEnvelope.self, from: Data(envelope.utf8))
    }
    /// Whether the checkpoint is still catalogued.
    public var present: Bool
}

/// Signs a checkpoint at a chain position: returns the envelope (JSON) and the statement's digest.
public typealias StatementSigning = (CheckpointRecord, ChainPosition) throws -> (envelope: String, digest: String)

extension Catalog {
    /// Signs and appends the statement of a checkpoint, inside `db`'s transaction.
    static func appendStatement(_ record: CheckpointRecord, sign: StatementSigning, _ db: Database) throws {
        let key = ProvenanceStatement.chainKey(
            containerName: record.containerName, podName: record.podName, podNamespace: record.podNamespace)
        let last = try Row.fetchOne(db, sql: """
            SELECT chain_index, statement_digest, checkpoint_id FROM checkpoint_statement
            WHERE chain_key = ? ORDER BY chain_index DESC LIMIT 1
            """, arguments: [key])
        let position = ChainPosition(
            key: key, index: last.map { ($0["chain_index"] as Int) + 1 } ?? 0,
            previousStatement: last?["statement_digest"], previousCheckpoint: last.map { "sha256:" + ($0["checkpoint_id"] as String) })
        let signed = try sign(record, position)
        try db.execute(sql: """
            INSERT INTO checkpoint_statement (checkpoint_id, chain_key, chain_index, statement_digest, envelope)
            VALUES (?, ?, ?, ?, ?)
            """, arguments: [record.id, key, position.index, signed.digest, signed.envelope])
    }

    /// Catalogued checkpoints without a statement (catalogued before provenance existed), oldest upload first.
    public func unsignedCheckpoints() throws -> [CheckpointRecord] {
        try read { db in
            try CheckpointRow.filter(sql: "id NOT IN (SELECT checkpoint_id FROM checkpoint_statement)")
                .order(sql: "uploaded_at, id").fetchAll(db).map(\.record)
        }
    }

    /// Signs a checkpoint that has no statement yet; a no-op when it has one or is gone.
    public func addStatement(for id: String, sign: StatementSigning) throws {
        try write { db in
            guard let row = try CheckpointRow.fetchOne(db, key: id),
                  try !Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM checkpoint_statement WHERE checkpoint_id = ?)",
                                     arguments: [id])! else { return }
            try Self.appendStatement(row.record, sign: sign, db)
        }
    }

    /// The latest statement of a checkpoint (a checkpoint deleted and uploaded again has one per upload).
    public func statement(of id: String) throws -> StoredStatement? {
        try read { db in
            try Row.fetchOne(db, sql: """
                SELECT s.*, EXISTS (SELECT 1 FROM checkpoint WHERE id = s.checkpoint_id) AS present
                FROM checkpoint_statement s WHERE checkpoint_id = ? ORDER BY id DESC LIMIT 1
                """, arguments: [id]).map(Self.storedStatement)
        }
    }

    /// Every statement of a chain, in chain order.
    public func chain(_ key: String) throws -> [StoredStatement] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.*, EXISTS (SELECT 1 FROM checkpoint WHERE id = s.checkpoint_id) AS present
                FROM checkpoint_statement s WHERE chain_key = ? ORDER BY chain_index
                """, arguments: [key]).map(Self.storedStatement)
        }
    }

    static func storedStatement(_ row: Row) -> StoredStatement {
        StoredStatement(checkpointID: row["checkpoint_id"], chainKey: row["chain_key"], chainIndex: row["chain_index"],
                        statementDigest: row["statement_digest"], envelope: row["envelope"], present: row["present"])
    }
}
