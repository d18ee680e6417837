internal import Foundation

/// The two SQL engines the catalog runs on. The catalog's queries are written once, in the SQL both accept;
/// `dialect` picks the few fragments that differ (free text, planner hints).
enum SQLDialect: String, Sendable {
    case sqlite, postgres
}

/// A value bound to a statement or read from a row, the same on both engines.
enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}

/// What can be bound to a `?` of a statement.
protocol SQLArgument {
    var sqlValue: SQLValue { get }
}

extension String: SQLArgument { var sqlValue: SQLValue { .text(self) } }
extension Int: SQLArgument { var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLArgument { var sqlValue: SQLValue { .integer(self) } }
extension Double: SQLArgument { var sqlValue: SQLValue { .real(self) } }
/// Booleans are stored as 0 and 1 on both engines (the columns are INTEGER).
extension Bool: SQLArgument { var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension Optional: SQLArgument where Wrapped: SQLArgument {
    var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// What a column of a row can be read as.
protocol SQLColumnValue {
    /// nil when the stored value is not of this type.
    init?(sqlValue: SQLValue)
}

extension String: SQLColumnValue {
    init?(sqlValue: SQLValue) {
        guard case .text(let text) = sqlValue else { return nil }
        self = text
    }
}
extension Int64: SQLColumnValue {
    init?(sqlValue: SQLValue) {
        guard case .integer(let value) = sqlValue else { return nil }
        self = value
    }
}
extension Int: SQLColumnValue {
    init?(sqlValue: SQLValue) {
        guard case .integer(let value) = sqlValue else { return nil }
        self = Int(value)
    }
}
extension Double: SQLColumnValue {
    init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .real(let value): self = value
        case .integer(let value): self = Double(value)
        default: return nil
        }
    }
}
/// 0 and 1 on SQLite; PostgreSQL's booleans (EXISTS) arrive as 0 and 1 too.
extension Bool: SQLColumnValue {
    init?(sqlValue: SQLValue) {
        guard case .integer(let value) = sqlValue else { return nil }
        self = value != 0
    }
}
extension Optional: SQLColumnValue where Wrapped: SQLColumnValue {
    init?(sqlValue: SQLValue) {
        if sqlValue == .null {
            self = .none
        } else if let value = Wrapped(sqlValue: sqlValue) {
            self = .some(value)
        } else {
            return nil
        }
    }
}

/// The column names of a result, shared by its rows.
final class SQLColumns: Sendable {
    let names: [String]
    private let positions: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        // The first of two same-named columns wins (`SELECT s.*, … AS x`), as SQLite's own lookup does.
        for (index, name) in names.enumerated() where positions[name] == nil { positions[name] = index }
        self.positions = positions
    }

    func position(of name: String) -> Int? { positions[name] }
}

/// One row of a result.
struct SQLRow: Sendable {
    let columns: SQLColumns
    let values: [SQLValue]

    /// The value of a column, as `T`: `let id: String = try row("id")`. A missing column or another type is a
    /// `DATABASE_FAILED` error, not a trap: the database is outside the process.
    func callAsFunction<T: SQLColumnValue>(_ name: String) throws -> T {
        guard let position = columns.position(of: name) else {
            throw CatalogError(.databaseFailed, "the catalog returned no column \(name)")
        }
        return try value(at: position, name)
    }

    /// The value of the column at `position`.
    func callAsFunction<T: SQLColumnValue>(_ position: Int) throws -> T {
        try value(at: position, "#\(position)")
    }

    private func value<T: SQLColumnValue>(at position: Int, _ name: String) throws -> T {
        guard position < values.count else { throw CatalogError(.databaseFailed, "the catalog returned no column \(name)") }
        guard let value = T(sqlValue: values[position]) else {
            throw CatalogError(.databaseFailed, "the catalog's column \(name) holds \(values[position]), not \(T.self)")
        }
        return value
    }

    /// A column holding JSON text, decoded.
    func json<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        let text: String = try self(name)
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw CatalogError(.databaseFailed, "the catalog's column \(name) is not the JSON it should be", underlying: "\(error)")
        }
    }
}

/// One open connection inside a transaction (`SQLDatabase.read` or `write`). Statements use `?` placeholders on
/// both engines.
protocol SQLConnection {
    var dialect: SQLDialect { get }
    /// Runs a statement; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int
    /// Runs a query and returns all its rows.
    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow]
}

extension SQLConnection {
    @discardableResult
    func execute(_ sql: String, _ arguments: any SQLArgument...) throws -> Int { try execute(sql, arguments) }

    func rows(_ sql: String, _ arguments: any SQLArgument...) throws -> [SQLRow] { try rows(sql, arguments) }

    /// Inserts one row: `values` in the order of `columns`.
    func insert(into table: String, columns: [String], values: [any SQLArgument]) throws {
        let placeholders = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        try execute("INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(placeholders))", values)
    }

    /// The first row of a query, if any.
    func row(_ sql: String, _ arguments: any SQLArgument...) throws -> SQLRow? { try rows(sql, arguments).first }

    /// The first column of the first row, if any (nil also when it is NULL and `T` is optional's wrapped type).
    func value<T: SQLColumnValue>(_ sql: String, _ arguments: [any SQLArgument]) throws -> T? {
        guard let row = try rows(sql, arguments).first, !row.values.isEmpty else { return nil }
        if row.values[0] == .null { return nil }
        return try row(0) as T
    }

    func value<T: SQLColumnValue>(_ sql: String, _ arguments: any SQLArgument...) throws -> T? { try value(sql, arguments) }
}

/// An engine under the catalog: transactions on pooled connections, the schema's migrations, and what the engine
/// needs told (when the catalog grew). Both read the registry host their views name (SQL `ferry_registry_host()`)
/// from the catalog's one `RegistryHostBox`.
protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// A read-only transaction on one consistent snapshot.
    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// A write transaction. Writes are serialised: on SQLite by its one writer, on PostgreSQL by a transaction
    /// lock every replica takes, so a read-then-write inside one is never raced by another writer.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// Identifiers of the migrations applied, in order.
    func appliedMigrations() throws -> [String]
    /// Called inside the write that inserted a checkpoint: keeps the planner's statistics in step with the size.
    func catalogGrew(_ connection: any SQLConnection) throws
    /// A number that moves on after every checkpoint write of any process on this database (0 when only this
    /// process writes it: the catalog's own counter covers that).
    func sharedGeneration() throws -> UInt64
    /// Records a checkpoint write for `sharedGeneration`, inside its transaction.
    func noteCheckpointWrite(_ connection: any SQLConnection) throws
    /// A description for messages: the file path, or the server without the password.
    var location: String { get }
}

/// A `NNNN_name.sql` migration: its identifier and SQL for one engine.
struct SQLMigration {
    var identifier: String
    var sql: String

    /// The migrations in `directory` for `dialect`, in order, up to and including `lastMigration`. PostgreSQL takes
    /// `postgres/NNNN_name.sql` where its SQL differs from the shared file, and the shared file otherwise.
    static func load(from directory: String, dialect: SQLDialect, upTo lastMigration: String?) throws -> [SQLMigration] {
        var migrations: [SQLMigration] = []
        for (identifier, sql) in try Catalog.migrations(in: directory) {
            var text = sql
            if dialect == .postgres {
                let variant = directory + "/postgres/" + identifier + ".sql"
                if FileManager.default.fileExists(atPath: variant) {
                    text = try String(contentsOfFile: variant, encoding: .utf8)
                }
            }
            migrations.append(SQLMigration(identifier: identifier, sql: text))
            if identifier == lastMigration { break }
        }
        return migrations
    }
}
