internal import Foundation
internal import GRDB
#if canImport(Glibc)
internal import Glibc
#endif

/// The embedded engine: one SQLite file in WAL mode (GRDB's pool over the system libsqlite3), concurrent readers,
/// one writer. Migrations are recorded in GRDB's `grdb_migrations` table.
final class SQLiteDatabase: SQLDatabase {
    let dialect = SQLDialect.sqlite
    let path: String
    private let pool: DatabasePool
    private let statistics = PlannerStatistics()

    /// `registryHost` is the catalog's: `ferry_registry_host()` reads it on every connection.
    init(path: String, migrations: [SQLMigration], registryHost: RegistryHostBox) throws {
        self.path = path
        // Create the file 0600 first: SQLite gives its -wal and -shm files the database file's permissions.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            // Readers sized to the cores: more only contend (repeated reads come from the service's caches).
            configuration.maximumReaderCount = max(2, min(ProcessInfo.processInfo.activeProcessorCount, 8))
            configuration.prepareDatabase { db in
                // No memory-mapped I/O: each connection's map of the file counts again in the process's resident
                // size (five readers of a 150 MB catalog looked like 650 MB to monitoring); reads go through
                // SQLite's page cache and the kernel's instead.
                try db.execute(sql: "PRAGMA mmap_size = 0")
                db.add(function: DatabaseFunction("ferry_registry_host", argumentCount: 0, pure: false) { _ in registryHost.value })
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            var migrator = DatabaseMigrator()
            for migration in migrations {
                migrator.registerMigration(migration.identifier) { db in try db.execute(sql: migration.sql) }
            }
            if try pool.read({ try migrator.hasBeenSuperseded($0) }) {
                throw CatalogError(.databaseTooNew, "the catalog at \(path) was written by a newer Ferry; refusing to open it")
            }
            try migrator.migrate(pool)
            if try pool.write({ try statistics.refreshAtOpen($0) }) {
                // Connections read sqlite_stat1 when they open: readers opened before the ANALYZE plan without it.
                pool.invalidateReadOnlyConnections()
            }
        } catch let error as CatalogError {
            throw error
        } catch {
            throw CatalogError(.databaseFailed, "could not open the catalog at \(path)", underlying: "\(error)")
        }
    }

    var location: String { path }

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try mapped { try pool.read { try body(SQLiteConnection(db: $0)) } }
    }

    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        var analysed = false
        defer { if analysed { pool.invalidateReadOnlyConnections() } }
        return try mapped {
            try pool.write { db in
                let connection = SQLiteConnection(db: db)
                let result = try body(connection)
                analysed = connection.analysed.value
                return result
            }
        }
    }

    func appliedMigrations() throws -> [String] {
        try mapped { try pool.read { try DatabaseMigrator().appliedIdentifiers($0) } }.sorted()
    }

    func catalogGrew(_ connection: any SQLConnection) throws {
        guard let connection = connection as? SQLiteConnection else { return }
        if try statistics.refreshIfGrown(connection.db) { connection.analysed.value = true }
    }

    /// One process owns the file: the catalog's own write counter is the whole story.
    func sharedGeneration() throws -> UInt64 { 0 }

    func noteCheckpointWrite(_ connection: any SQLConnection) throws {}

    /// The query plan of a statement (EXPLAIN QUERY PLAN details), for the tests that keep lists on their indexes.
    func plan(_ sql: String, _ arguments: [any SQLArgument]) throws -> [String] {
        try read { try $0.rows("EXPLAIN QUERY PLAN " + sql, arguments).map { try $0("detail") } }
    }

    /// GRDB's errors as `DATABASE_FAILED` (or `STORAGE_FULL`), keeping SQLite's text as `underlying`.
    private func mapped<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as CatalogError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            throw CatalogError(.storageFull, "the disk holding the catalog is full", underlying: "\(error)")
        } catch {
            throw CatalogError(.databaseFailed, "the catalog database failed", underlying: "\(error)")
        }
    }
}

/// A GRDB connection inside one of the pool's transactions. Statements are cached per connection.
final class SQLiteConnection: SQLConnection {
    let db: Database
    let dialect = SQLDialect.sqlite
    /// Set when this write ran ANALYZE (the pool's readers must then reopen to see the statistics).
    let analysed = Flag()

    init(db: Database) { self.db = db }

    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        return db.changesCount
    }

    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow] {
        let statement = try db.cachedStatement(sql: sql)
        let columns = SQLColumns(statement.columnNames)
        return try Row.fetchAll(statement, arguments: Self.arguments(arguments)).map { row in
            SQLRow(columns: columns, values: row.databaseValues.map(Self.value))
        }
    }

    static func arguments(_ arguments: [any SQLArgument]) -> StatementArguments {
        StatementArguments(arguments.map { argument -> DatabaseValue in
            switch argument.sqlValue {
            case .null: .null
            case .integer(let value): value.databaseValue
            case .real(let value): value.databaseValue
            case .text(let value): value.databaseValue
            }
        })
    }

    static func value(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: .null
        case .int64(let value): .integer(value)
        case .double(let value): .real(value)
        case .string(let value): .text(value)
        // The catalog stores no blobs; a BLOB read back is its bytes as text.
        case .blob(let data): .text(String(decoding: data, as: UTF8.self))
        }
    }

    final class Flag { var value = false }
}

/// The registry host the catalog's views name: read by SQLite's `ferry_registry_host()` on any connection, and set
/// on each PostgreSQL session before its transaction. Guarded by `lock`.
final class RegistryHostBox: @unchecked Sendable {
    private let lock = NSLock()
    private var host: String
    init(_ host: String) { self.host = host }
    var value: String {
        get { lock.lock(); defer { lock.unlock() }; return host }
        set { lock.lock(); host = newValue; lock.unlock() }
    }
}

/// Keeps sqlite_stat1 (ANALYZE) in step with the catalog's size, so the planner knows how selective each filter
/// is: whenever the catalog has doubled since the last ANALYZE (whose row count sqlite_stat1 keeps, so a restart
/// does not analyse again). ANALYZE reads every index once (about 0.1 s per 100,000 checkpoints), so doubling keeps
/// its total cost proportional to the inserts.
final class PlannerStatistics: @unchecked Sendable {
    // @unchecked Sendable invariant: `analyzedCount` is only touched inside `pool.write`, i.e. on SQLite's one writer.
    private var analyzedCount = -1

    func refresh(_ db: Database) throws {
        try db.execute(sql: "ANALYZE")
        // An older schema (tests open one with `upTo`) has no kept total.
        guard try db.tableExists("checkpoint_total") else { return }
        analyzedCount = try Int.fetchOne(db, sql: "SELECT count FROM checkpoint_total WHERE only = 1") ?? 0
    }

    /// At open: takes the row count of the last ANALYZE from sqlite_stat1, and analyses only when there is none or
    /// the catalog has doubled since. True when it ran ANALYZE.
    func refreshAtOpen(_ db: Database) throws -> Bool {
        guard try db.tableExists("checkpoint_total") else {
            try refresh(db)
            return true
        }
        if try db.tableExists("sqlite_stat1"),
           let stat = try String.fetchOne(db, sql: "SELECT stat FROM sqlite_stat1 WHERE tbl = 'checkpoint' LIMIT 1"),
           let rows = stat.split(separator: " ").first.flatMap({ Int($0) }) {
            analyzedCount = rows
            return try refreshIfGrown(db)
        }
        try refresh(db)
        return true
    }

    /// True when it ran ANALYZE (the pool's readers must then be reopened to see the new statistics).
    func refreshIfGrown(_ db: Database) throws -> Bool {
        let count = try Int.fetchOne(db.cachedStatement(sql: "SELECT count FROM checkpoint_total WHERE only = 1")) ?? 0
        guard count >= 2 * max(analyzedCount, 0) + 64 else { return false }
        try refresh(db)
        return true
    }
}
