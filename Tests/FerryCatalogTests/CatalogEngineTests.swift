import FerryAPI
import FerryCatalog
import FerryTestSupport
import Foundation
import GRDB
import Testing

/// What only the choice of engine could break: the same schema from both sets of migrations, the tables beyond
/// checkpoints on both, PostgreSQL's upgrades and refusals, and several catalogs (replicas) on one server.
@Suite("catalog engines")
struct CatalogEngineTests {
    static let migrations = CatalogTests.migrations

    @Test("the migrations give SQLite and PostgreSQL the same tables with the same columns")
    func sameSchema() throws {
        let directory = try Fixtures.temporaryDirectory()
        let path = directory.appendingPathComponent("catalog.sqlite").path
        _ = try Catalog(path: path, migrationsDirectory: Self.migrations)
        var sqlite: Set<String> = []
        let queue = try DatabaseQueue(path: path)
        try queue.read { db in
            let tables = try String.fetchAll(db, sql: """
                SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                AND name NOT LIKE 'checkpoint_search%' AND name NOT LIKE 'grdb_%'
                """)
            for table in tables {
                for column in try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))") { sqlite.insert("\(table).\(column["name"] as String)") }
            }
        }
        let url = try TestPostgres.freshDatabase()
        _ = try Catalog(.postgres(url: url), migrationsDirectory: Self.migrations)
        let postgres = Set(try TestPostgres.psql(url, """
            SELECT c.table_name || '.' || c.column_name FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.table_name NOT LIKE 'ferry_%'
            """).split(separator: "\n").map(String.init))
        #expect(!sqlite.isEmpty)
        #expect(sqlite == postgres, "only in SQLite: \(sqlite.subtracting(postgres).sorted()); only in PostgreSQL: \(postgres.subtracting(sqlite).sorted())")
        // Every PostgreSQL variant replaces a shared migration of the same name.
        let shared = Set(try Catalog.migrations(in: Self.migrations).map(\.0))
        let variants = try FileManager.default.contentsOfDirectory(atPath: Self.migrations + "/postgres").map { String($0.dropLast(4)) }
        #expect(!variants.isEmpty && Set(variants).isSubset(of: shared), "\(variants)")
    }

    @Test("a PostgreSQL catalog of the first schema is upgraded and keeps its rows; one from a newer Ferry is refused")
    func postgresUpgradeAndRefusal() throws {
        let url = try TestPostgres.freshDatabase()
        do {
            let old = try Catalog(.postgres(url: url), migrationsDirectory: Self.migrations, upTo: "0001_create_checkpoint")
            #expect(try old.appliedMigrations() == ["0001_create_checkpoint"])
        }
        try TestPostgres.psql(url, """
            INSERT INTO checkpoint (id, size, compression, engine, container_id, container_name, pod_name, pod_namespace,
              checkpoint_size, memory_pages_size, process_count, labels, uploaded_at)
            VALUES ('\(String(repeating: "ab", count: 32))', 10, 'none', 'CRI-O', 'c1', 'counter', 'web-1', 'shop',
              5, 4, 2, '{"team":"payments"}', '2026-01-01T00:00:00.000Z')
            """)
        let catalog = try Catalog(.postgres(url: url), migrationsDirectory: Self.migrations)
        #expect(try catalog.appliedMigrations().count == (try Catalog.migrations(in: Self.migrations)).count)
        let row = try catalog.checkpoint("abababab")
        #expect(row.labels == ["team": "payments"])
        #expect(row.ociRepository == "checkpoints/shop/web-1/counter")
        var query = CheckpointQuery()
        query.labels = ["team": "payments"]
        #expect(try catalog.list(query).items.map(\.id) == [row.id], "the label table was filled from the old row")
        query = CheckpointQuery()
        query.text = "PAYMENTS shop"
        #expect(try catalog.list(query).items.map(\.id) == [row.id])
        #expect(try catalog.totals().count == 1)

        try TestPostgres.psql(url, "INSERT INTO ferry_migrations (identifier, applied_at) VALUES ('9999_from_the_future', 'x')")
        #expect { try Catalog(.postgres(url: url), migrationsDirectory: Self.migrations) } throws: { error in
            (error as? CatalogError)?.code == .databaseTooNew
        }
    }

    @Test("--catalog names sqlite, a file or a postgres:// URL; anything else, or a server that is not there, is a clear error")
    func locations() throws {
        #expect(try CatalogLocation(parsing: "sqlite", dataDirectory: "/d") == .sqlite(path: "/d/catalog.sqlite"))
        #expect(try CatalogLocation(parsing: "/x/c.db", dataDirectory: "/d") == .sqlite(path: "/x/c.db"))
        #expect(try CatalogLocation(parsing: "postgres://u:p@h:5/db", dataDirectory: "/d") == .postgres(url: "postgres://u:p@h:5/db"))
        for bad in ["mysql://h/db", "postgres://", "postgres://h:5"] {
            #expect(throws: CatalogError.self, "\(bad)") { try CatalogLocation(parsing: bad, dataDirectory: "/d") }
            #expect((try? CatalogLocation(parsing: bad, dataDirectory: "/d")) == nil)
        }
        do {
            _ = try Catalog(.postgres(url: "postgres://ferry:sekrit@127.0.0.1:1/ferry"), migrationsDirectory: Self.migrations)
            Issue.record("a server that is not there was opened")
        } catch let error as CatalogError {
            #expect(error.code == .databaseFailed)
            #expect(!error.message.contains("sekrit"), "the password is never in a message: \(error.message)")
            #expect(error.message.contains("127.0.0.1"))
        }
    }

    @Test("nodes, migrations, pins, deletions and signed chains behave the same on both engines",
          arguments: CatalogBackend.allCases)
    func otherTables(backend: CatalogBackend) throws {
        let catalog = try CatalogTests.openCatalog(backend)
        // Nodes: a second heartbeat updates the row and keeps first_seen_at.
        let first = try catalog.recordHeartbeat(name: "node-b", agentURL: "http://10.0.0.2:9000", driver: "podman",
                                                facts: "{}", runtimeVersion: "4.3.1", freeDiskBytes: 5 << 40, version: "1")
        let second = try catalog.recordHeartbeat(name: "node-b", agentURL: "http://10.0.0.2:9001", driver: "podman",
                                                 facts: "{\"a\":1}", runtimeVersion: "4.3.1", freeDiskBytes: 6 << 40, version: "1")
        #expect(second.firstSeenAt == first.firstSeenAt)
        #expect(try catalog.node("node-b")?.agentURL == "http://10.0.0.2:9001")
        #expect(try catalog.node("node-b")?.freeDiskBytes == 6 << 40, "64-bit sizes survive")
        #expect(try catalog.nodes().map(\.name) == ["node-b"])

        // Migrations: created once per request key, updated, events logged, finished ones frozen.
        let record = CatalogTests.record(1, namespace: "shop", size: 5 << 32)
        _ = try catalog.insert(record, sign: Self.signer)
        var migration = MigrationRecord(id: "m1", requestKey: "k1", explicitKey: true, checkpointID: record.id, sourceNode: nil,
                                        sourceContainer: nil, targetNode: "node-b", options: "{}", deadlineAt: Catalog.timestamp())
        #expect(try catalog.createMigration(migration).created)
        migration.id = "m2"
        #expect(try catalog.createMigration(migration).0.id == "m1", "the same explicit key answers with the first")
        #expect(try catalog.unfinishedMigrations().map(\.id) == ["m1"])
        #expect(throws: CatalogError.self) { try catalog.delete(record.id, cause: DeletionCause(by: "t", reason: "r")) }
        try catalog.updateMigration("m1", event: "restoring") { $0.state = .restoring; $0.bytesDone = 5 << 32; $0.sourceStopped = true }
        try catalog.updateMigration("m1", event: "done") { $0.state = .succeeded }
        try catalog.updateMigration("m1", event: "late") { $0.state = .failed }
        let done = try catalog.migration("m1")
        #expect(done.state == .succeeded && done.finishedAt != nil && done.bytesDone == 5 << 32 && done.sourceStopped)
        #expect(try catalog.migrationEvents("m1").map(\.message) == ["migration requested", "restoring", "done"],
                "a finished migration takes no more events")
        #expect(try catalog.migrations(state: .succeeded).map(\.id) == ["m1"])

        // Pins protect; deletions are recorded.
        try catalog.pin(record.id, reason: "audit", by: "alice")
        try catalog.pin(record.id, reason: "audit 2", by: "bob")
        #expect(try catalog.pin(of: record.id)?.pinnedBy == "bob")
        #expect(try catalog.retentionItems().map(\.pinned) == [true])
        #expect { try catalog.delete(record.id, cause: DeletionCause(by: "t", reason: "r")) } throws: {
            ($0 as? CatalogError)?.code == .checkpointPinned
        }
        #expect(try catalog.unpin(record.id))
        #expect(try !catalog.unpin(record.id))
        _ = try catalog.delete(record.id, cause: DeletionCause(by: "carol", reason: "gone"))
        #expect(try catalog.deletions().map(\.deletedBy) == ["carol"])
        #expect(try catalog.deletions().first?.size == 5 << 32)
        #expect(try catalog.totals().count == 0)

        // Statements: a chain per container, kept after the deletion, one index each.
        _ = try catalog.insert(CatalogTests.record(2, namespace: "shop"), sign: Self.signer)
        let other = CatalogTests.record(3, namespace: "shop")
        _ = try catalog.insert(other, sign: Self.signer)
        // The summary view names the registry host the catalog is given, as it changes (both engines' views).
        #expect(try catalog.summary(of: other.id).contains("127.0.0.1:8080/checkpoints/shop/pod-3/ctr-3:"))
        catalog.registryHost = "registry.example:5000"
        let summary = try JSONSerialization.jsonObject(with: Data(try catalog.summary(of: other.id).utf8)) as? [String: Any]
        #expect(summary?["oci_reference"] as? String == "registry.example:5000/checkpoints/shop/pod-3/ctr-3:" + other.id.prefix(12))
        #expect(try catalog.statement(of: record.id)?.present == false)
        #expect(try catalog.statement(of: other.id)?.present == true)
        #expect(try catalog.unsignedCheckpoints().isEmpty)
        try catalog.markBlobMissing([other.id, other.id])
        #expect(try catalog.rowsMissingBlob() == [other.id])
    }

    @Test("two catalogs on one PostgreSQL database are one catalog: the same bytes at once make one row, chains stay whole, caches see each other's writes")
    func replicasShareOneDatabase() throws {
        let url = try TestPostgres.freshDatabase()
        let a = try Catalog(.postgres(url: url), migrationsDirectory: Self.migrations)
        let b = try Catalog(.postgres(url: url), migrationsDirectory: Self.migrations)
        let generation = b.generation
        // The same archive, offered eight times at once through both replicas: one row, inserted once.
        let record = CatalogTests.record(7, namespace: "shop")
        let inserted = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            let catalog = index % 2 == 0 ? a : b
            if (try? catalog.insert(record, sign: Self.signer))?.inserted == true { inserted.add() }
        }
        #expect(inserted.value == 1)
        #expect(try b.totals().count == 1)
        #expect(b.generation != generation, "a write through one replica moves the other's generation")
        // Different checkpoints of one container at once through both: one chain, indexes 0…n-1, each once.
        DispatchQueue.concurrentPerform(iterations: 12) { index in
            var next = CatalogTests.record(7, namespace: "shop")
            next.id = String(format: "%064x", 1000 + index)
            _ = try? (index % 2 == 0 ? a : b).insert(next, sign: Self.signer)
        }
        let chain = try a.chain("shop/pod-7/ctr-7")
        #expect(chain.map(\.chainIndex) == Array(0..<13))
        for (previous, statement) in zip(chain, chain.dropFirst()) {
            #expect(statement.envelope.contains(previous.statementDigest), "each link names the one before it")
        }
    }

    @Test("a migration's lease is held by one replica until it expires, then taken over; released, it is gone",
          arguments: CatalogBackend.allCases)
    func migrationLeases(backend: CatalogBackend) throws {
        let catalog = try CatalogTests.openCatalog(backend)
        let migration = MigrationRecord(id: "m1", requestKey: "k1", explicitKey: false, checkpointID: nil, sourceNode: nil,
                                        sourceContainer: nil, targetNode: "node-b", options: "{}", deadlineAt: Catalog.timestamp())
        _ = try catalog.createMigration(migration)
        let first = try catalog.takeMigrationLease("m1", holder: "replica-a", duration: 1.5)
        #expect(first.granted && first.previousHolder == nil && first.millisecondsLeft > 1000)
        let refused = try catalog.takeMigrationLease("m1", holder: "replica-b", duration: 1.5)
        #expect(!refused.granted && refused.holder == "replica-a", "an unexpired lease is not taken")
        #expect(refused.millisecondsLeft > 0 && refused.millisecondsLeft <= 1500)
        let renewed = try catalog.takeMigrationLease("m1", holder: "replica-a", duration: 1.5)
        #expect(renewed.granted && renewed.expiresAt >= first.expiresAt && renewed.previousHolder == nil)
        usleep(1_700_000)
        let takenOver = try catalog.takeMigrationLease("m1", holder: "replica-b", duration: 30)
        #expect(takenOver.granted && takenOver.previousHolder == "replica-a", "an expired lease is taken over")
        #expect(try catalog.migrationLease("m1")?.holder == "replica-b")
        #expect(try !catalog.takeMigrationLease("m1", holder: "replica-a", duration: 30).granted, "the old holder has lost it")
        try catalog.releaseMigrationLease("m1")
        #expect(try catalog.migrationLease("m1") == nil)
        #expect(try catalog.takeMigrationLease("m1", holder: "replica-a", duration: 30).granted)
        try catalog.releaseAllMigrationLeases()
        #expect(try catalog.migrationLease("m1") == nil)
        #expect(throws: (any Error).self, "no lease for a migration that does not exist") {
            try catalog.takeMigrationLease("no-such-migration", holder: "replica-a", duration: 30)
        }
    }

    @Test("replicas racing for one migration's lease on PostgreSQL: exactly one wins each round")
    func leaseRace() throws {
        let url = try TestPostgres.freshDatabase()
        let replicas = try (0..<4).map { _ in try Catalog(.postgres(url: url), migrationsDirectory: Self.migrations) }
        for round in 0..<5 {
            let id = "race-\(round)"
            _ = try replicas[0].createMigration(MigrationRecord(
                id: id, requestKey: id, explicitKey: false, checkpointID: nil, sourceNode: nil, sourceContainer: nil,
                targetNode: "node-b", options: "{}", deadlineAt: Catalog.timestamp()))
            let winners = Counter()
            DispatchQueue.concurrentPerform(iterations: 16) { index in
                if (try? replicas[index % 4].takeMigrationLease(id, holder: "replica-\(index)", duration: 30))?.granted == true { winners.add() }
            }
            #expect(winners.value == 1, "round \(round)")
        }
    }

    /// A stand-in signer: the envelope records the chain position, so a test can follow the links.
    static func signer(_ record: CheckpointRecord, _ position: ChainPosition) -> (envelope: String, digest: String) {
        (envelope: "{\"previous\":\"\(position.previousStatement ?? "")\",\"index\":\(position.index)}",
         digest: "sha256:" + String(format: "%064x", abs(record.id.hashValue)) + "-\(position.index)")
    }
}

/// A count shared by concurrent test threads.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
