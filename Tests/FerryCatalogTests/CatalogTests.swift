import FerryCatalog
import FerryTestSupport
import Foundation
import Testing

/// The two engines a catalog runs on: each test that takes one runs on both.
enum CatalogBackend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// The catalog on a real SQLite file and a real PostgreSQL server, and the blob store on real files.
@Suite("catalog")
struct CatalogTests {
    static let migrations = Fixtures.repositoryRoot.appendingPathComponent("migrations").path

    static func record(_ index: Int, namespace: String? = nil, engine: String = "Podman", node: String? = nil,
                       size: Int64 = 1000, labels: [String: String] = [:]) -> CheckpointRecord {
        let id = String(repeating: String(format: "%02x", index % 256), count: 32)
        return CheckpointRecord(
            id: id, size: size, compression: "none", engine: engine, containerID: String(repeating: "a", count: 64),
            containerName: "ctr-\(index)", podName: namespace.map { _ in "pod-\(index)" }, podNamespace: namespace,
            image: "localhost/img:\(index)", ipAddresses: ["10.88.0.\(index)"], checkpointSize: 100,
            memoryPagesSize: 50, processCount: 2, sourceNode: node, labels: labels,
            uploadedAt: Catalog.timestamp(Date(timeIntervalSince1970: 1_700_000_000 + Double(index))))
    }

    func openCatalog(upTo: String? = nil, at directory: URL? = nil) throws -> (Catalog, URL) {
        let directory = try directory ?? Fixtures.temporaryDirectory()
        let catalog = try Catalog(path: directory.appendingPathComponent("catalog.sqlite").path,
                                  migrationsDirectory: Self.migrations, upTo: upTo)
        return (catalog, directory)
    }

    /// A new, empty catalog on `backend` (PostgreSQL: a database of its own on the tests' server).
    static func openCatalog(_ backend: CatalogBackend) throws -> Catalog {
        switch backend {
        case .sqlite:
            return try Catalog(path: Fixtures.temporaryDirectory().appendingPathComponent("catalog.sqlite").path,
                               migrationsDirectory: migrations)
        case .postgres:
            return try Catalog(.postgres(url: TestPostgres.freshDatabase()), migrationsDirectory: migrations)
        }
    }

    @Test("a database made by the first schema version is upgraded and keeps its rows")
    func upgradeFromOlderSchema() throws {
        let directory = try Fixtures.temporaryDirectory()
        let path = directory.appendingPathComponent("catalog.sqlite").path
        // Version 1 of the schema, and a row written the way a Ferry of that version wrote it.
        do {
            let old = try Catalog(path: path, migrationsDirectory: Self.migrations, upTo: "0001_create_checkpoint")
            #expect(try old.appliedMigrations() == ["0001_create_checkpoint"])
        }
        let insert = """
            INSERT INTO checkpoint (id, size, compression, engine, container_id, container_name, pod_name, pod_namespace,
              checkpoint_size, memory_pages_size, process_count, labels, uploaded_at)
            VALUES ('\(String(repeating: "ab", count: 32))', 10, 'none', 'CRI-O', 'c1', 'counter', 'web-1', 'shop',
              5, 4, 2, '{"team":"payments"}', '2026-01-01T00:00:00.000Z')
            """
        let sqlite = try Fixtures.run("/usr/bin/env", ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()", path, insert])
        #expect(sqlite.status == 0, "\(sqlite.stderr)")

        let (catalog, _) = try openCatalog(at: directory)
        #expect(try catalog.appliedMigrations() == ["0001_create_checkpoint", "0002_add_checkpoint_identity", "0003_add_validation", "0004_create_checkpoint_summary", "0005_create_node_and_migration", "0006_add_migration_rollback", "0007_create_checkpoint_problem", "0008_add_checkpoint_image", "0009_add_checkpoint_source_image", "0010_index_checkpoint_search", "0011_create_pin_and_deletion", "0012_create_checkpoint_statement", "0013_create_migration_lease"])
        let row = try catalog.checkpoint(String(repeating: "ab", count: 32))
        #expect(row.containerName == "counter")
        // Rows from before the registry view get their repository at the upgrade.
        #expect(row.ociRepository == "checkpoints/shop/web-1/counter")
        #expect(try catalog.imageCheckpoints(repository: "checkpoints/shop/web-1/counter").map(\.id) == [row.id])
        #expect(row.labels == ["team": "payments"])
        #expect(row.macAddresses == [])
        #expect(row.validationState == "unknown", "rows from before validation say so")
        #expect(try catalog.findings(of: row.id).isEmpty)
        // The new search column was filled from the old row, so free text finds it.
        var query = CheckpointQuery()
        query.text = "PAYMENTS shop"
        #expect(try catalog.list(query).items.map(\.id) == [row.id])
    }

    @Test("a database from a newer Ferry is refused")
    func newerDatabase() throws {
        let (_, directory) = try openCatalog()
        let path = directory.appendingPathComponent("catalog.sqlite").path
        let sqlite = try Fixtures.run("/usr/bin/env", ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO grdb_migrations VALUES ('9999_from_the_future')\"); c.commit()", path])
        #expect(sqlite.status == 0, "\(sqlite.stderr)")
        #expect { try Catalog(path: path, migrationsDirectory: Self.migrations) } throws: { error in
            (error as? CatalogError)?.code == .databaseTooNew
        }
    }

    @Test("the database file is private")
    func permissions() throws {
        let (_, directory) = try openCatalog()
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("catalog.sqlite").path)
        #expect(attributes[.posixPermissions] as? Int == 0o600)
    }

    @Test("findings are stored with their checkpoint and deleted with it", arguments: CatalogBackend.allCases)
    func findings(backend: CatalogBackend) throws {
        let catalog = try Self.openCatalog(backend)
        var record = Self.record(3)
        record.validationState = "errors"
        let findings = [
            FindingRecord(code: "IP_INVALID", severity: "error", path: "network.status", message: "bad", waiver: "--ignore-static-ip"),
            FindingRecord(code: "ARCHIVE_UNKNOWN_ENTRY", severity: "info", path: "extra", message: "unknown", waiver: nil),
        ]
        _ = try catalog.insert(record, findings: findings)
        #expect(try catalog.findings(of: record.id) == findings)
        var query = CheckpointQuery()
        query.validationState = "errors"
        #expect(try catalog.list(query).items.map(\.id) == [record.id])
        _ = try catalog.delete(record.id)
        #expect(try catalog.findings(of: record.id).isEmpty)
    }

    @Test("inserting the same archive twice keeps one row", arguments: CatalogBackend.allCases)
    func dedupe(backend: CatalogBackend) throws {
        let catalog = try Self.openCatalog(backend)
        #expect(try catalog.insert(Self.record(1)).inserted)
        var again = Self.record(1)
        again.sourceNode = "other"
        let second = try catalog.insert(again)
        #expect(!second.inserted)
        #expect(second.record.sourceNode == nil, "the first upload's row is kept")
        #expect(try catalog.totals().count == 1)
    }

    @Test("IDs resolve by unique prefix; short, unknown and ambiguous ones are errors", arguments: CatalogBackend.allCases)
    func lookups(backend: CatalogBackend) throws {
        let catalog = try Self.openCatalog(backend)
        _ = try catalog.insert(Self.record(0x12))
        _ = try catalog.insert(Self.record(0x13))
        let id = String(repeating: "12", count: 32)
        #expect(try catalog.checkpoint(id).id == id)
        #expect(try catalog.checkpoint("sha256:" + id).id == id)
        #expect(try catalog.checkpoint("12121212").id == id)
        #expect { try catalog.checkpoint("1212") } throws: { ($0 as? CatalogError)?.code == .checkpointNotFound }
        #expect { try catalog.checkpoint("ffffffff") } throws: { ($0 as? CatalogError)?.code == .checkpointNotFound }
        #expect { try catalog.checkpoint("'; DROP TABLE checkpoint; --") } throws: { ($0 as? CatalogError)?.code == .checkpointNotFound }
        _ = try catalog.insert({ var r = Self.record(0x14); r.id = "1212121299" + String(repeating: "0", count: 54); return r }())
        #expect { try catalog.checkpoint("12121212") } throws: { ($0 as? CatalogError)?.code == .ambiguousID }
    }

    @Test("filters, sorting and cursor pages cover every row exactly once", arguments: CatalogBackend.allCases)
    func listing(backend: CatalogBackend) throws {
        let catalog = try Self.openCatalog(backend)
        for index in 1...25 {
            _ = try catalog.insert(Self.record(
                index, namespace: index % 2 == 0 ? "shop" : nil, engine: index % 3 == 0 ? "CRI-O" : "Podman",
                node: "node-\(index % 4)", size: Int64(1000 + index % 5), labels: index % 5 == 0 ? ["tier": "gold"] : [:]))
        }
        var query = CheckpointQuery()
        query.namespace = "shop"
        #expect(try catalog.list(query).total == 12)
        query = CheckpointQuery()
        query.engine = "CRI-O"
        query.node = "node-3"
        #expect(try catalog.list(query).items.map(\.containerName).sorted() == ["ctr-15", "ctr-3"])
        query = CheckpointQuery()
        query.labels = ["tier": "gold"]
        #expect(try catalog.list(query).total == 5)
        query = CheckpointQuery()
        query.text = "10.88.0.7"
        #expect(try catalog.list(query).items.map(\.containerName) == ["ctr-7"])

        // Newest first by default.
        query = CheckpointQuery()
        #expect(try catalog.list(query).items.first?.containerName == "ctr-25")

        for sort in CheckpointQuery.SortKey.allCases {
            for descending in [true, false] {
                var page = CheckpointQuery()
                page.sort = sort
                page.descending = descending
                page.limit = 4
                var seen: [String] = []
                var pages = 0
                repeat {
                    let result = try catalog.list(page)
                    #expect(result.total == 25)
                    seen += result.items.map(\.id)
                    page.cursor = result.nextCursor
                    pages += 1
                } while page.cursor != nil && pages < 20
                #expect(seen.count == 25, "sort \(sort) \(descending)")
                #expect(Set(seen).count == 25, "no row twice with sort \(sort)")
                if sort == .size {
                    let sizes = try seen.map { try catalog.checkpoint($0).size }
                    #expect(sizes == (descending ? sizes.sorted(by: >) : sizes.sorted()))
                }
            }
        }
    }

    @Test("bad queries are refused with INVALID_QUERY", arguments: CatalogBackend.allCases)
    func badQueries(backend: CatalogBackend) throws {
        let catalog = try Self.openCatalog(backend)
        var query = CheckpointQuery()
        query.cursor = "not-a-cursor"
        #expect { try catalog.list(query) } throws: { ($0 as? CatalogError)?.code == .invalidQuery }
        query = CheckpointQuery()
        query.limit = 0
        #expect { try catalog.list(query) } throws: { ($0 as? CatalogError)?.code == .invalidQuery }
        query = CheckpointQuery()
        query.uploadedAfter = "yesterday"
        #expect { try catalog.list(query) } throws: { ($0 as? CatalogError)?.code == .invalidQuery }
    }

    @Test("time range filters use upload times", arguments: CatalogBackend.allCases)
    func timeRange(backend: CatalogBackend) throws {
        let catalog = try Self.openCatalog(backend)
        for index in 1...5 { _ = try catalog.insert(Self.record(index)) }
        var query = CheckpointQuery()
        query.uploadedAfter = "2023-11-14T22:13:23Z"   // 1_700_000_003
        query.uploadedBefore = "2023-11-14T22:13:25+00:00"
        #expect(try catalog.list(query).items.map(\.containerName).sorted() == ["ctr-3", "ctr-4"])
    }

    @Test("delete removes the row", arguments: CatalogBackend.allCases)
    func delete(backend: CatalogBackend) throws {
        let catalog = try Self.openCatalog(backend)
        _ = try catalog.insert(Self.record(7))
        let id = String(repeating: "07", count: 32)
        #expect(try catalog.delete(id).id == id)
        #expect(try !catalog.contains(id))
        #expect { try catalog.delete(id) } throws: { ($0 as? CatalogError)?.code == .checkpointNotFound }
    }
}

/// The content-addressed blob store.
@Suite("blob store")
struct BlobStoreTests {
    @Test("a committed blob is stored under its SHA-256, private, and a duplicate is discarded")
    func commit() throws {
        let directory = try Fixtures.temporaryDirectory()
        let store = try BlobStore(dataDirectory: directory.path)
        let upload = try store.beginUpload()
        Array("hello".utf8).withUnsafeBytes { try? upload.write($0) }
        #expect(try store.commit(upload))
        let digest = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        #expect(store.contains(digest))
        let attributes = try FileManager.default.attributesOfItem(atPath: store.path(for: digest))
        #expect(attributes[.posixPermissions] as? Int == 0o600)
        let blobsDirectory = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("blobs").path)
        #expect(blobsDirectory[.posixPermissions] as? Int == 0o700)

        let again = try store.beginUpload()
        Array("hello".utf8).withUnsafeBytes { try? again.write($0) }
        #expect(try !store.commit(again))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("tmp").path).isEmpty)
    }

    @Test("an upload that is dropped leaves no file")
    func abandoned() throws {
        let directory = try Fixtures.temporaryDirectory()
        let store = try BlobStore(dataDirectory: directory.path)
        do {
            let upload = try store.beginUpload()
            Array("partial".utf8).withUnsafeBytes { try? upload.write($0) }
            #expect(FileManager.default.fileExists(atPath: upload.path))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("tmp").path).isEmpty)
    }

    @Test("leftovers of a crash are cleared at start-up")
    func crashLeftovers() throws {
        let directory = try Fixtures.temporaryDirectory()
        _ = try BlobStore(dataDirectory: directory.path)
        let leftover = directory.appendingPathComponent("tmp/upload-crashed")
        _ = FileManager.default.createFile(atPath: leftover.path, contents: Data("x".utf8))
        _ = try BlobStore(dataDirectory: directory.path)
        #expect(!FileManager.default.fileExists(atPath: leftover.path))
    }
}
