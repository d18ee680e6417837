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
    static func appendStatement(_ record: CheckpointRecord, sign: StatementSigning, _ db: any SQLConnection) throws {
        let key = ProvenanceStatement.chainKey(
            containerName: record.containerName, podName: record.podName, podNamespace: record.podNamespace)
        let last = try db.row("""
            SELECT chain_index, statement_digest, checkpoint_id FROM checkpoint_statement
            WHERE chain_key = ? ORDER BY chain_index DESC LIMIT 1
            """, key)
        let position = ChainPosition(
            key: key, index: try last.map { (try $0("chain_index") as Int) + 1 } ?? 0,
            previousStatement: try last?("statement_digest"),
            previousCheckpoint: try last.map { "sha256:" + (try $0("checkpoint_id") as String) })
        let signed = try sign(record, position)
        try db.execute("""
            INSERT INTO checkpoint_statement (checkpoint_id, chain_key, chain_index, statement_digest, envelope)
            VALUES (?, ?, ?, ?, ?)
            """, record.id, key, position.index, signed.digest, signed.envelope)
    }

    /// Catalogued checkpoints without a statement (catalogued before provenance existed), oldest upload first.
    /// An anti-join: PostgreSQL runs `NOT IN (subquery)` row by row once the subquery outgrows work_mem, which made
    /// this start-up query quadratic (minutes at 100,000 checkpoints).
    public func unsignedCheckpoints() throws -> [CheckpointRecord] {
        try read { db in
            try db.rows("""
                SELECT * FROM checkpoint c
                WHERE NOT EXISTS (SELECT 1 FROM checkpoint_statement s WHERE s.checkpoint_id = c.id) ORDER BY uploaded_at, id
                """).map(CheckpointRecord.init(row:))
        }
    }

    /// Signs a checkpoint that has no statement yet; a no-op when it has one or is gone.
    public func addStatement(for id: String, sign: StatementSigning) throws {
        try write { db in
            guard let row = try db.row("SELECT * FROM checkpoint WHERE id = ?", id),
                  try db.row("SELECT 1 FROM checkpoint_statement WHERE checkpoint_id = ?", id) == nil else { return }
            try Self.appendStatement(try CheckpointRecord(row: row), sign: sign, db)
        }
    }

    /// The latest statement of a checkpoint (a checkpoint deleted and uploaded again has one per upload).
    public func statement(of id: String) throws -> StoredStatement? {
        try read { db in
            try db.row("""
                SELECT s.*, EXISTS (SELECT 1 FROM checkpoint WHERE id = s.checkpoint_id) AS present
                FROM checkpoint_statement s WHERE checkpoint_id = ? ORDER BY id DESC LIMIT 1
                """, id).map(Self.storedStatement)
        }
    }

    /// Every statement of a chain, in chain order.
    public func chain(_ key: String) throws -> [StoredStatement] {
        try read { db in
            try db.rows("""
                SELECT s.*, EXISTS (SELECT 1 FROM checkpoint WHERE id = s.checkpoint_id) AS present
                FROM checkpoint_statement s WHERE chain_key = ? ORDER BY chain_index
                """, key).map(Self.storedStatement)
        }
    }

    static func storedStatement(_ row: SQLRow) throws -> StoredStatement {
        StoredStatement(checkpointID: try row("checkpoint_id"), chainKey: try row("chain_key"), chainIndex: try row("chain_index"),
                        statementDigest: try row("statement_digest"), envelope: try row("envelope"), present: try row("present"))
    }
}
