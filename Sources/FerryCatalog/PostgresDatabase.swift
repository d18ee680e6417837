internal import Foundation
internal import CPostgres

/// The scale-out engine: a PostgreSQL server (libpq, PostgreSQL's own client, from Debian's libpq-dev) that any
/// number of `ferry serve` replicas share. Blocking calls on pooled connections, like the rest of Ferry's threads.
///
/// Writes are serialised across every replica by one transaction-scoped advisory lock, so the catalog's
/// read-then-write steps (the same bytes uploaded to two replicas, the next link of a chain, a migration's state)
/// behave exactly as on SQLite's one writer. Reads run on a repeatable-read snapshot and are never blocked.
final class PostgresDatabase: SQLDatabase, SharedLocks, @unchecked Sendable {
    // @unchecked Sendable invariant: `idle`, `idleLockConnections` and `openCount` are only touched with `lock` held;
    // a connection is used by one thread at a time (checked out of `idle`, then back).
    let dialect = SQLDialect.postgres
    let url: String
    let location: String
    private let lock = NSCondition()
    private var idle: [PostgresConnection] = []
    private var openCount = 0
    private let maximumConnections: Int
    private let registryHost: RegistryHostBox
    /// Connections that hold named session locks (``withLock(_:_:)``), apart from the pool so that a lock holder
    /// waiting for a pooled connection can never starve the pool. Guarded by `lock`.
    private var idleLockConnections: [PostgresConnection] = []

    /// The advisory lock every write takes, and the one migrations take ("Ferry" and "Ferry" + 1).
    static let writeLock: Int64 = 0x46_65_72_72_79
    static let migrationLock: Int64 = 0x46_65_72_72_7A

    /// `registryHost` is the catalog's: each connection's session follows it (`ferry_registry_host()`).
    init(url: String, migrations: [SQLMigration], registryHost: RegistryHostBox, maximumConnections: Int = 16) throws {
        self.url = url
        self.location = Self.redacted(url)
        self.registryHost = registryHost
        self.maximumConnections = maximumConnections
        try migrate(migrations)
    }

    /// The URL without its password, for messages and logs.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "postgres://…" }
        if components.password != nil { components.password = "***" }
        return components.string ?? "postgres://…"
    }

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try transaction(begin: ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"], body)
    }

    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try transaction(begin: ["BEGIN", "SELECT pg_advisory_xact_lock(\(Self.writeLock))"], body)
    }

    func appliedMigrations() throws -> [String] {
        try read { try $0.rows("SELECT identifier FROM ferry_migrations ORDER BY identifier").map { try $0("identifier") } }
    }

    /// PostgreSQL's autovacuum keeps the planner's statistics.
    func catalogGrew(_ connection: any SQLConnection) throws {}

    func sharedGeneration() throws -> UInt64 {
        let value: Int64? = try withConnection { try $0.value("SELECT value FROM ferry_generation") }
        return UInt64(max(value ?? 0, 0))
    }

    func noteCheckpointWrite(_ connection: any SQLConnection) throws {
        try connection.execute("UPDATE ferry_generation SET value = value + 1")
    }

    // MARK: Migrations

    /// Applies the migrations not yet applied, all in one transaction under the migration lock: replicas that
    /// start together migrate once, and a failed migration leaves the schema as it was (PostgreSQL's DDL is
    /// transactional).
    private func migrate(_ migrations: [SQLMigration]) throws {
        try transaction(begin: ["BEGIN", "SELECT pg_advisory_xact_lock(\(Self.migrationLock))"]) { connection in
            let connection = connection as! PostgresConnection
            try connection.script("""
                CREATE TABLE IF NOT EXISTS ferry_migrations (identifier TEXT COLLATE "C" PRIMARY KEY, applied_at TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS ferry_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL);
                INSERT INTO ferry_generation (id, value) VALUES (1, 0) ON CONFLICT DO NOTHING;
                """)
            let applied = Set(try connection.rows("SELECT identifier FROM ferry_migrations").map { try $0("identifier") as String })
            let known = Set(migrations.map(\.identifier))
            if !applied.subtracting(known).isEmpty {
                throw CatalogError(.databaseTooNew, "the catalog at \(location) was written by a newer Ferry; refusing to open it")
            }
            for migration in migrations where !applied.contains(migration.identifier) {
                try connection.script(migration.sql)
                try connection.execute("INSERT INTO ferry_migrations (identifier, applied_at) VALUES (?, ?)",
                                       migration.identifier, Catalog.timestamp())
            }
        }
    }

    // MARK: Connections

    /// Runs `body` in a transaction on a pooled connection. A connection found broken before the commit (the
    /// server restarted, a failover) is dropped and the transaction run once more on a new one; nothing of the
    /// first attempt was committed.
    private func transaction<T>(begin: [String], _ body: (any SQLConnection) throws -> T) throws -> T {
        var attempts = 0
        while true {
            attempts += 1
            let connection = try checkOut()
            var committing = false
            do {
                try applyRegistryHost(connection)
                for statement in begin { try connection.script(statement) }
                let result: T
                do {
                    result = try body(connection)
                } catch {
                    if connection.isHealthy { try? connection.script("ROLLBACK") }
                    throw error
                }
                committing = true
                try connection.script("COMMIT")
                checkIn(connection)
                return result
            } catch {
                let healthy = connection.isHealthy
                if healthy, !connection.isIdle { try? connection.script("ROLLBACK") }
                checkIn(connection, healthy: healthy && connection.isIdle)
                if !healthy, !committing, attempts == 1 { continue }
                throw Self.mapped(error, location: location)
            }
        }
    }

    /// Runs `body` holding the session advisory lock named `name` ("Ferry" and the name's hash), on a
    /// connection of its own: every replica waits for it. The server drops the lock if that connection dies.
    func withLock<T>(_ name: String, _ body: () throws -> T) throws -> T {
        lock.lock()
        let reused = idleLockConnections.popLast()
        lock.unlock()
        let connection: PostgresConnection
        do {
            connection = try reused ?? PostgresConnection(url: url)
            try connection.execute("SELECT pg_advisory_lock(\(Self.namedLockSpace), hashtext(?))", name)
        } catch {
            throw Self.mapped(error, location: location)
        }
        defer {
            let unlocked = (try? connection.execute("SELECT pg_advisory_unlock(\(Self.namedLockSpace), hashtext(?))", name)) != nil
            if unlocked && connection.isHealthy {
                lock.lock()
                if idleLockConnections.count < 4 { idleLockConnections.append(connection) }
                lock.unlock()
            }
        }
        return try body()
    }

    /// The first key of the named locks ("Ferr").
    static let namedLockSpace: Int32 = 0x46_65_72_72

    /// A pooled connection outside any transaction (autocommit).
    private func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try checkOut()
        do {
            let result = try body(connection)
            checkIn(connection)
            return result
        } catch {
            checkIn(connection, healthy: connection.isHealthy)
            throw Self.mapped(error, location: location)
        }
    }

    private func applyRegistryHost(_ connection: PostgresConnection) throws {
        let host = registryHost.value
        guard connection.registryHost != host else { return }
        try connection.execute("SELECT set_config('ferry.registry_host', ?, false)", host)
        connection.registryHost = host
    }

    private func checkOut() throws -> PostgresConnection {
        lock.lock()
        while idle.isEmpty && openCount >= maximumConnections { lock.wait() }
        if let connection = idle.popLast() {
            lock.unlock()
            return connection
        }
        openCount += 1
        lock.unlock()
        do {
            return try PostgresConnection(url: url)
        } catch {
            lock.lock()
            openCount -= 1
            lock.signal()
            lock.unlock()
            throw Self.mapped(error, location: location)
        }
    }

    private func checkIn(_ connection: PostgresConnection, healthy: Bool = true) {
        lock.lock()
        if healthy { idle.append(connection) } else { openCount -= 1 }
        lock.signal()
        lock.unlock()
    }

    /// PostgreSQL's errors as the catalog's codes; the server's text stays in `underlying`.
    static func mapped(_ error: any Error, location: String) -> any Error {
        guard let error = error as? PostgresError else { return error }
        switch error.state {
        case "53100":
            return CatalogError(.storageFull, "the disk holding the catalog is full", underlying: error.message)
        case nil:
            return CatalogError(.databaseFailed, "could not reach the catalog at \(location)", underlying: error.message)
        default:
            return CatalogError(.databaseFailed, "the catalog database failed", underlying: "\(error.state ?? "") \(error.message)")
        }
    }
}

/// An error libpq or the server reported: the SQLSTATE (nil when the connection itself failed) and the text.
struct PostgresError: Error, CustomStringConvertible {
    var state: String?
    var message: String
    var description: String { "\(state ?? "connection") \(message)" }
}

/// One libpq connection, owned and closed by this object. Used by one thread at a time (its pool's check-out).
final class PostgresConnection: SQLConnection {
    let dialect = SQLDialect.postgres
    private let handle: OpaquePointer
    /// The registry host last set on this connection's session.
    var registryHost: String?

    init(url: String) throws {
        guard let handle = PQconnectdb(url) else { throw PostgresError(state: nil, message: "out of memory") }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(handle)
            throw PostgresError(state: nil, message: message)
        }
        self.handle = handle
        try script("SET client_encoding = 'UTF8'")
    }

    deinit { PQfinish(handle) }

    var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }
    /// Outside any transaction (after COMMIT or ROLLBACK).
    var isIdle: Bool { PQtransactionStatus(handle) == PQTRANS_IDLE }

    /// Runs SQL without arguments; it may hold several statements (a migration).
    func script(_ sql: String) throws {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result)
    }

    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        let result = try run(sql, arguments)
        defer { PQclear(result) }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow] {
        let result = try run(sql, arguments)
        defer { PQclear(result) }
        let fieldCount = PQnfields(result)
        let columns = SQLColumns((0..<fieldCount).map { String(cString: PQfname(result, $0)) })
        let types = (0..<fieldCount).map { PQftype(result, $0) }
        return (0..<PQntuples(result)).map { row in
            SQLRow(columns: columns, values: (0..<fieldCount).map { field in
                guard PQgetisnull(result, row, field) == 0 else { return .null }
                return Self.value(String(cString: PQgetvalue(result, row, field)), type: types[Int(field)])
            })
        }
    }

    /// Sends a statement with its arguments as text (the server infers their types from the statement).
    private func run(_ sql: String, _ arguments: [any SQLArgument]) throws -> OpaquePointer? {
        let texts: [String?] = arguments.map {
            switch $0.sqlValue {
            case .null: nil
            case .integer(let value): String(value)
            case .real(let value): String(value)
            case .text(let value): value
            }
        }
        let statement = Self.numberedPlaceholders(sql)
        let result = withStrings(texts) { values in
            PQexecParams(handle, statement, Int32(texts.count), nil, values, nil, nil, 0)
        }
        do {
            try check(result)
        } catch {
            PQclear(result)
            throw error
        }
        return result
    }

    private func check(_ result: OpaquePointer?) throws {
        let status = result.map(PQresultStatus) ?? PGRES_FATAL_ERROR
        guard status != PGRES_COMMAND_OK, status != PGRES_TUPLES_OK else { return }
        let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        let message = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
        throw PostgresError(state: isHealthy ? (state ?? "XX000") : nil, message: message)
    }

    /// A text result as the value of its type: booleans as 0 and 1, integers and floats as numbers.
    static func value(_ text: String, type: Oid) -> SQLValue {
        switch type {
        case 16: return .integer(text == "t" ? 1 : 0)                      // bool
        case 20, 21, 23, 26: return Int64(text).map(SQLValue.integer) ?? .text(text)  // int8, int2, int4, oid
        case 700, 701: return Double(text).map(SQLValue.real) ?? .text(text)        // float4, float8
        case 1700:                                                             // numeric: sums
            if let integer = Int64(text) { return .integer(integer) }
            return Double(text).map(SQLValue.real) ?? .text(text)
        default: return .text(text)
        }
    }

    /// `?` placeholders as PostgreSQL's `$1, $2, …`, outside quoted strings, identifiers and comments.
    static func numberedPlaceholders(_ sql: String) -> String {
        var output = ""
        output.reserveCapacity(sql.utf8.count + 16)
        var number = 0
        var quote: Character?
        var inComment = false
        var previous: Character?
        for character in sql {
            if inComment {
                if character == "\n" { inComment = false }
            } else if let open = quote {
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
            } else if character == "-" && previous == "-" {
                inComment = true
            } else if character == "?" {
                number += 1
                output += "$\(number)"
                previous = character
                continue
            }
            output.append(character)
            previous = character
        }
        return output
    }
}

/// Calls `body` with C strings for `strings` (NULL for nil), valid for the call only.
private func withStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeMutableBufferPointer { buffer in
        body(buffer.map { UnsafePointer($0) })
    }
}
