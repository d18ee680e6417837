public import Foundation
internal import GRDB
#if canImport(Glibc)
internal import Glibc
#endif

/// The SQLite catalog: one database file in WAL mode, concurrent readers, one writer.
///
/// The schema lives in `migrations/NNNN_name.sql`; each file is applied once, in name order, at start-up, and
/// recorded (GRDB's `grdb_migrations` table), so a newer binary upgrades an older database and an older binary
/// refuses a newer one instead of corrupting it.
public final class Catalog: Sendable {
    private let pool: DatabasePool
    public let path: String
    private let statistics = PlannerStatistics()
    private let generationBox = WriteGeneration()
    /// A filtered list counts its matches up to this many (`CheckpointQuery.countCap`; smaller in tests).
    let countCap: Int
    /// Up to this many matches a filter is read from its own index (`Catalog.sparseMatches`; smaller in tests).
    let sparseMatches: Int
    private let registryHostBox: RegistryHostBox
    /// Seals the values taken from archive contents (the inspection) when the data directory is encrypted.
    let columnCipher: ColumnCipher?

    /// Opens or creates the catalog at `path` and applies the migrations found in `migrationsDirectory`.
    /// `upTo` stops after the named migration (tests use it to build an older schema).
    /// `registryHost` (`HOST:PORT`) starts every `oci_reference` the API gives (SQL `ferry_registry_host()`).
    /// `columnCipher` seals the stored inspections (an encrypted data directory).
    public convenience init(path: String, migrationsDirectory: String, upTo lastMigration: String? = nil,
                            registryHost: String = "127.0.0.1:8080", columnCipher: ColumnCipher? = nil) throws {
        try self.init(path: path, migrationsDirectory: migrationsDirectory, upTo: lastMigration, registryHost: registryHost,
                      countCap: CheckpointQuery.countCap, columnCipher: columnCipher)
    }

    init(path: String, migrationsDirectory: String, upTo lastMigration: String?, registryHost: String, countCap: Int,
         sparseMatches: Int = Catalog.sparseMatches, columnCipher: ColumnCipher? = nil) throws {
        self.path = path
        self.columnCipher = columnCipher
        self.countCap = countCap
        self.sparseMatches = sparseMatches
        let registryHostBox = RegistryHostBox(registryHost)
        self.registryHostBox = registryHostBox
        // Create the file 0600 first: SQLite gives its -wal and -shm files the database file's permissions.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        let migrations = try Self.migrations(in: migrationsDirectory)
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
                db.add(function: DatabaseFunction("ferry_registry_host", argumentCount: 0, pure: false) { _ in registryHostBox.value })
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            var migrator = DatabaseMigrator()
            for (identifier, sql) in migrations {
                migrator.registerMigration(identifier) { db in try db.execute(sql: sql) }
                if identifier == lastMigration { break }
            }
            let superseded = try pool.read { try migrator.hasBeenSuperseded($0) }
            if superseded {
                throw CatalogError(
                    .databaseTooNew, "the catalog at \(path) was written by a newer Ferry; refusing to open it")
            }
            try migrator.migrate(pool)
            try Self.nameRepositories(pool)
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

    /// Gives rows catalogued before the registry view their repository (once; the naming is Swift, not SQL).
    private static func nameRepositories(_ pool: DatabasePool) throws {
        let columns = try pool.read { try $0.columns(in: "checkpoint").map(\.name) }
        guard columns.contains("oci_repository") else { return }
        try pool.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, container_name, pod_name, pod_namespace FROM checkpoint WHERE oci_repository IS NULL")
            for row in rows {
                let name = OCIName.repository(containerName: row["container_name"], podName: row["pod_name"], podNamespace: row["pod_namespace"])
                try db.execute(sql: "UPDATE checkpoint SET oci_repository = ? WHERE id = ?", arguments: [name, row["id"] as String])
            }
        }
    }

    // MARK: Registry view

    /// The `HOST:PORT` every `oci_reference` starts with (set once the service knows its port).
    public var registryHost: String {
        get { registryHostBox.value }
        set {
            registryHostBox.value = newValue
            // Every summary names it: what was read before is stale.
            generationBox.advance()
        }
    }

    /// The checkpoints of one registry repository, newest first, after the tag `after` (keyset on the tag order:
    /// newest first), at most `limit`.
    public func imageCheckpoints(repository: String, limit: Int = 1000) throws -> [CheckpointRecord] {
        try wrap {
            try pool.read { db in
                try CheckpointRow.fetchAll(db, sql: """
                    SELECT * FROM checkpoint WHERE oci_repository = ? AND compression IN ('none', 'gzip', 'zstd')
                    ORDER BY uploaded_at DESC, id DESC LIMIT ?
                    """, arguments: [repository, limit]).map(\.record)
            }
        }
    }

    /// Whether any checkpoint lives in this repository (servable or not).
    public func hasRepository(_ repository: String) throws -> Bool {
        try wrap { try pool.read { try Bool.fetchOne($0, sql: "SELECT EXISTS (SELECT 1 FROM checkpoint WHERE oci_repository = ?)", arguments: [repository]) ?? false } }
    }

    /// gzip and zstd checkpoints whose uncompressed digest is not recorded yet (at most `limit`).
    public func checkpointsWithoutUncompressedDigest(limit: Int = 100_000) throws -> [CheckpointRecord] {
        try wrap {
            try pool.read { db in
                try CheckpointRow.fetchAll(db, sql: """
                    SELECT * FROM checkpoint WHERE uncompressed_digest IS NULL AND compression IN ('gzip', 'zstd') LIMIT ?
                    """, arguments: [limit]).map(\.record)
            }
        }
    }

    /// Records the uncompressed tar's digest of a checkpoint.
    public func setUncompressedDigest(_ id: String, _ digest: String) throws {
        try wrap { try changing { try pool.write { try $0.execute(sql: "UPDATE checkpoint SET uncompressed_digest = ? WHERE id = ?", arguments: [digest, id]) } } }
    }

    /// The `NNNN_name.sql` files of a directory, in order, as (identifier, SQL).
    public static func migrations(in directory: String) throws -> [(String, String)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw CatalogError(.databaseFailed, "no migrations directory at \(directory)")
        }
        let files = names.filter { $0.hasSuffix(".sql") && $0.first?.isNumber == true }.sorted()
        guard !files.isEmpty else { throw CatalogError(.databaseFailed, "no migrations in \(directory)") }
        return try files.map { name in
            let sql = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
            return (String(name.dropLast(4)), sql)
        }
    }

    /// Identifiers of the migrations applied to this database, in order.
    public func appliedMigrations() throws -> [String] {
        try wrap { try pool.read { try DatabaseMigrator().appliedIdentifiers($0) } }.sorted()
    }

    /// Inserts a checkpoint and its findings in one transaction, or returns the existing row if one with the same
    /// ID (the same bytes) exists. With `sign`, the checkpoint's signed statement joins its chain in the same
    /// transaction: no checkpoint is catalogued unsigned, and concurrent uploads of one container form one chain.
    public func insert(
        _ record: CheckpointRecord, inspection: String = "{}", findings: [FindingRecord] = [],
        sign: StatementSigning? = nil
    ) throws -> (record: CheckpointRecord, inserted: Bool) {
        var refreshed = false
        defer { if refreshed { pool.invalidateReadOnlyConnections() } }
        let stored = try columnCipher.map { try $0.seal(inspection, column: "inspection", row: record.id) } ?? inspection
        return try wrap {
            try changing { try pool.write { db in
                if let existing = try CheckpointRow.fetchOne(db, key: record.id) { return (existing.record, false) }
                var row = record
                row.searchText = CheckpointRecord.searchText(for: record)
                try CheckpointRow(row).insert(db)
                try db.execute(
                    sql: "INSERT INTO checkpoint_inspection (checkpoint_id, inspection) VALUES (?, ?)",
                    arguments: [record.id, stored])
                for finding in findings {
                    try FindingRow(
                        checkpointID: record.id, code: finding.code, severity: finding.severity, path: finding.path,
                        message: finding.message, waiver: finding.waiver
                    ).insert(db)
                }
                if let sign { try Self.appendStatement(row, sign: sign, db) }
                refreshed = try statistics.refreshIfGrown(db)
                return (row, true)
            } }
        }
    }

    /// The full inspection of a checkpoint, as JSON text.
    public func inspection(of id: String) throws -> String {
        let text = try wrap {
            try pool.read {
                try String.fetchOne($0, sql: "SELECT inspection FROM checkpoint_inspection WHERE checkpoint_id = ?", arguments: [id])
            }
        }
        guard let text else { throw CatalogError(.checkpointNotFound, "no checkpoint \(id)") }
        guard ColumnCipher.isSealed(text) else { return text }
        guard let columnCipher else {
            throw CatalogError(.encryptionKeyRequired, "the inspection of \(id.prefix(12)) is encrypted and no --encryption-key was given")
        }
        return try columnCipher.open(text, column: "inspection", row: id)
    }

    /// The findings of a checkpoint, in the order validation reported them.
    public func findings(of id: String) throws -> [FindingRecord] {
        try wrap {
            try pool.read { db in
                try FindingRow.filter(sql: "checkpoint_id = ?", arguments: [id]).order(sql: "id").fetchAll(db).map(\.record)
            }
        }
    }

    /// The checkpoint with this ID, or with this unique ID prefix (at least 8 hex digits). A `sha256:` prefix is
    /// accepted.
    public func checkpoint(_ reference: String) throws -> CheckpointRecord {
        let id = reference.hasPrefix("sha256:") ? String(reference.dropFirst(7)) : reference
        guard id.count >= 8, id.count <= 64, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw CatalogError(.checkpointNotFound, "no checkpoint \(reference.prefix(80))")
        }
        let matches = try wrap {
            try pool.read { db in
                try CheckpointRow
                    .filter(sql: "id >= ? AND id < ?", arguments: [id, id + "g"])
                    .limit(2)
                    .fetchAll(db)
                    .map(\.record)
            }
        }
        guard let first = matches.first else { throw CatalogError(.checkpointNotFound, "no checkpoint \(id)") }
        guard matches.count == 1 else {
            throw CatalogError(.ambiguousID, "\(id) is the start of more than one checkpoint ID; give more digits")
        }
        return first
    }

    /// Deletes a checkpoint row. Returns the deleted row.
    public func delete(_ id: String) throws -> CheckpointRecord {
        try wrap {
            try changing { try pool.write { db in
                guard let row = try CheckpointRow.fetchOne(db, key: id) else {
                    throw CatalogError(.checkpointNotFound, "no checkpoint \(id)")
                }
                try row.delete(db)
                return row.record
            } }
        }
    }

    /// Whether any row points at this blob.
    public func contains(_ id: String) throws -> Bool {
        try wrap { try pool.read { try CheckpointRow.exists($0, key: id) } }
    }

    /// Number of checkpoints and the sum of their stored sizes.
    public func totals() throws -> (count: Int, bytes: Int64) {
        try wrap {
            try pool.read { db in
                // Kept by triggers (migration 0010): no row is counted.
                let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT count, bytes FROM checkpoint_total WHERE only = 1"))
                return (row?[0] ?? 0, row?[1] ?? 0)
            }
        }
    }

    /// One page of checkpoints matching a query.
    public func list(_ query: CheckpointQuery) throws -> CheckpointPage {
        let page = try page(query, select: "*", from: "checkpoint") {
            try CheckpointRow(row: $0).record
        }
        return CheckpointPage(items: page.items, nextCursor: page.nextCursor, total: page.total, totalExact: page.totalExact)
    }

    /// One page of checkpoints matching a query, each as the API's JSON description (the `checkpoint_summary` view).
    public func summaries(_ query: CheckpointQuery) throws -> CheckpointSummaryPage {
        let page = try page(query, select: "summary", from: "checkpoint_summary") { row -> String in row["summary"] }
        return CheckpointSummaryPage(items: page.items, nextCursor: page.nextCursor, total: page.total, totalExact: page.totalExact)
    }

    /// The API's JSON description of one checkpoint.
    public func summary(of id: String) throws -> String {
        let text = try wrap {
            try pool.read { try String.fetchOne($0, sql: "SELECT summary FROM checkpoint_summary WHERE id = ?", arguments: [id]) }
        }
        guard let text else { throw CatalogError(.checkpointNotFound, "no checkpoint \(id)") }
        return text
    }

    /// The shared query behind `list` and `summaries`: filters, keyset pagination, and the total.
    private func page<T>(
        _ query: CheckpointQuery, select: String, from table: String, decode: @escaping (Row) throws -> T
    ) throws -> (items: [T], nextCursor: String?, total: Int, totalExact: Bool) {
        let prepared = try PreparedList(query, countCap: countCap, sparseMatches: sparseMatches)
        return try wrap {
            try pool.read { db in
                let statements = try prepared.statements(select: select, from: table, db)
                let rows = try Row.fetchAll(db.cachedStatement(sql: statements.page.sql),
                                            arguments: StatementArguments(statements.page.arguments))
                let counted = try Int.fetchOne(db.cachedStatement(sql: statements.count.sql),
                                               arguments: StatementArguments(statements.count.arguments)) ?? 0
                let exact = statements.countIsExact || counted <= countCap
                let total = statements.countIsExact ? counted : min(counted, countCap)
                let items = try rows.prefix(query.limit).map(decode)
                var next: String?
                if rows.count > query.limit, let last = rows.prefix(query.limit).last {
                    next = PageCursor(
                        sort: query.sort.rawValue, descending: query.descending,
                        text: prepared.numeric ? nil : last["sort_value"], number: prepared.numeric ? last["sort_value"] : nil,
                        id: last["page_id"]
                    ).encoded()
                }
                return (items, next, total, exact)
            }
        }
    }

    /// The query plans (EXPLAIN QUERY PLAN details) of a list's page and count statements, for tests that keep
    /// every filter and sort on an index.
    func plans(_ query: CheckpointQuery) throws -> (page: [String], count: [String]) {
        let prepared = try PreparedList(query, countCap: countCap, sparseMatches: sparseMatches)
        return try wrap {
            try pool.read { db in
                let statements = try prepared.statements(select: "summary", from: "checkpoint_summary", db)
                func plan(_ statement: (sql: String, arguments: [any DatabaseValueConvertible])) throws -> [String] {
                    try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + statement.sql,
                                     arguments: StatementArguments(statement.arguments)).map { $0["detail"] }
                }
                return (try plan(statements.page), try plan(statements.count))
            }
        }
    }

    /// The words of `q` as conditions. A word of three characters or more that few checkpoints contain is looked up
    /// in the trigram index (and the rows it names fetched by rowid); one that many contain (more than
    /// `sparseMatches`) is checked on each row as the sort's index is walked instead, since a page of it is
    /// found within the first rows; shorter words are always checked on the row.
    static func addText(_ words: [String], to filter: inout SQLFilter, sparseMatches: Int, _ db: Database) throws {
        for word in words {
            if word.unicodeScalars.count >= 3 {
                let phrase = phrases([word])
                let found = try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT count(*) FROM (SELECT 1 FROM checkpoint_search WHERE checkpoint_search MATCH ? LIMIT \(sparseMatches + 1))"),
                    arguments: [phrase]) ?? 0
                if found <= sparseMatches {
                    filter.add("rowid IN (SELECT rowid FROM checkpoint_search WHERE checkpoint_search MATCH ?)", phrase)
                    continue
                }
            }
            filter.add("instr(search_text, ?) > 0", word)
        }
    }

    /// Words as an FTS5 query: each a quoted phrase (a substring, for the trigram tokenizer), all required.
    static func phrases(_ words: [String]) -> String {
        words.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: " ")
    }

    /// Up to this many matches a word is looked up in the trigram index (beyond, it is checked row by row), and an
    /// equality filter is read from its own index (beyond, the planner may walk the sort's index instead).
    static let sparseMatches = 2000

    /// Checks that a filter time is RFC 3339 and turns it into the form `uploaded_at` is stored in.
    static func normalisedTime(_ text: String) throws -> String {
        guard let date = date(fromTimestamp: text) ?? ISO8601DateFormatter().date(from: text) else {
            throw CatalogError(.invalidQuery, "\(text.prefix(64)) is not an RFC 3339 time")
        }
        return timestamp(date)
    }

    /// The stored form of a time: RFC 3339 UTC with milliseconds, which sorts as text.
    public static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// The time a stored timestamp (`timestamp(_:)`'s form) stands for.
    public static func date(fromTimestamp text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try wrap { try pool.read(body) }
    }

    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try wrap { try changing { try pool.write(body) } }
    }

    /// A write to the node and migration tables only: it leaves `generation` alone (heartbeats arrive every second
    /// and change no checkpoint).
    func writeNodesAndMigrations<T>(_ body: (Database) throws -> T) throws -> T {
        try wrap { try pool.write(body) }
    }

    /// Counts writes: a number that changes after every write to the checkpoint tables (successful or not), so a
    /// cache of anything read from them knows when to read again.
    public var generation: UInt64 { generationBox.value }

    /// Runs a write and moves the generation on after it, whatever its outcome.
    private func changing<T>(_ body: () throws -> T) rethrows -> T {
        defer { generationBox.advance() }
        return try body()
    }

    /// Turns GRDB's errors into `DATABASE_FAILED`, keeping SQLite's text as `underlying`.
    private func wrap<T>(_ body: () throws -> T) throws -> T {
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

extension Catalog {
    /// The migrations shipped with this binary (`migrations/` copied into the bundle at build time).
    public static var bundledMigrationsDirectory: String? {
        Bundle.module.resourceURL.map { $0.appendingPathComponent("migrations").path }
    }
}

/// The registry host, read by SQLite's `ferry_registry_host()` on any connection. Guarded by `lock`.
private final class RegistryHostBox: @unchecked Sendable {
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

/// The WHERE clause of a catalog query, built condition by condition with its arguments.
struct SQLFilter {
    var conditions: [String] = []
    var arguments: [any DatabaseValueConvertible] = []

    mutating func equal(_ column: String, _ value: String?) {
        guard let value else { return }
        add("\(column) = ?", value)
    }

    mutating func add(_ condition: String, _ values: any DatabaseValueConvertible...) {
        add(condition, values)
    }

    mutating func add(_ condition: String, _ values: [any DatabaseValueConvertible]) {
        conditions.append(condition)
        arguments.append(contentsOf: values)
    }

    var whereClause: String { conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ") }
}

/// A list query checked and turned into SQL: the filter's conditions (what can be decided without the database),
/// then, inside a read, the words of `q` and the page and count statements.
struct PreparedList {
    let query: CheckpointQuery
    let countCap: Int
    let sparseMatches: Int
    var filter = SQLFilter()
    let words: [String]
    let numeric: Bool
    /// The equality filters that have an index of their own: (index, column, value).
    var indexedEqualities: [(index: String, column: String, value: String)] = []
    var cursorCondition: (sql: String, arguments: [any DatabaseValueConvertible])?

    struct Statements {
        var page: (sql: String, arguments: [any DatabaseValueConvertible])
        var count: (sql: String, arguments: [any DatabaseValueConvertible])
        /// The count is the exact total (the trigger-kept one), not a capped count.
        var countIsExact: Bool
    }

    init(_ query: CheckpointQuery, countCap: Int, sparseMatches: Int) throws {
        guard (1...CheckpointQuery.maximumLimit).contains(query.limit) else {
            throw CatalogError(.invalidQuery, "limit must be between 1 and \(CheckpointQuery.maximumLimit)")
        }
        self.query = query
        self.countCap = countCap
        self.sparseMatches = sparseMatches
        for (index, column, value) in [
            ("checkpoint_on_namespace_uploaded", "pod_namespace", query.namespace),
            ("checkpoint_on_pod_uploaded", "pod_name", query.pod),
            ("checkpoint_on_container_uploaded", "container_name", query.container),
            ("checkpoint_on_engine_uploaded", "engine", query.engine),
            ("checkpoint_on_node_uploaded", "source_node", query.node),
            ("checkpoint_on_image_uploaded", "image", query.image),
            ("checkpoint_on_validation_uploaded", "validation_state", query.validationState),
        ] {
            guard let value else { continue }
            filter.equal(column, value)
            indexedEqualities.append((index, column, value))
        }
        if let after = query.uploadedAfter {
            filter.add("uploaded_at >= ?", try Catalog.normalisedTime(after))
        }
        if let before = query.uploadedBefore {
            filter.add("uploaded_at < ?", try Catalog.normalisedTime(before))
        }
        for (key, value) in query.labels.sorted(by: { $0.key < $1.key }) {
            filter.add("id IN (SELECT checkpoint_id FROM checkpoint_label WHERE key = ? AND value = ?)", key, value)
        }
        words = (query.text ?? "").lowercased().split(separator: " ").map(String.init).filter { !$0.isEmpty }
        numeric = query.sort == .size
        if let cursorText = query.cursor {
            let cursor = try PageCursor(decoding: cursorText)
            guard cursor.sort == query.sort.rawValue, cursor.descending == query.descending else {
                throw CatalogError(.invalidQuery, "the cursor belongs to another sort order")
            }
            let value: any DatabaseValueConvertible = numeric ? (cursor.number ?? 0) : (cursor.text ?? "")
            cursorCondition = ("(\(query.sort.column), id) \(query.descending ? "<" : ">") (?, ?)", [value, cursor.id])
        }
    }

    func statements(select: String, from table: String, _ db: Database) throws -> Statements {
        let otherConditions = filter.conditions.count
        var filter = filter
        try Catalog.addText(words, to: &filter, sparseMatches: sparseMatches, db)
        var pageFilter = filter
        if let cursorCondition { pageFilter.add(cursorCondition.sql, cursorCondition.arguments) }
        let column = query.sort.column
        let direction = query.descending ? "DESC" : "ASC"
        let source = try Self.drivingIndex(indexedEqualities, sparseMatches: sparseMatches, db).map { "checkpoint INDEXED BY \($0)" } ?? "checkpoint"
        // The page's IDs first (an index walk), then the selection for those rows only: SQLite would otherwise
        // build the selected columns of every row it sorts.
        let pageSQL = """
            SELECT \(table).\(select == "*" ? "*" : select), page.id AS page_id, page.sort_value
            FROM (SELECT id, \(column) AS sort_value FROM \(source) \(pageFilter.whereClause)
                  ORDER BY \(column) \(direction), id \(direction) LIMIT \(query.limit + 1)) AS page
            JOIN \(table) ON \(table).id = page.id
            ORDER BY page.sort_value \(direction), page.id \(direction)
            """
        // The unfiltered total is kept by triggers; a filtered one is counted up to a cap, so a filter that
        // matches most of a large catalog costs a bounded count, not a pass over every match.
        let count: (sql: String, arguments: [any DatabaseValueConvertible])
        var exact = false
        let textOnly = otherConditions == 0 && !words.isEmpty && words.allSatisfy { $0.unicodeScalars.count >= 3 }
        if filter.conditions.isEmpty {
            count = ("SELECT count FROM checkpoint_total WHERE only = 1", [])
            exact = true
        } else if textOnly {
            // Only q, every word indexed: the trigram index counts (all words in one MATCH).
            count = ("SELECT count(*) FROM (SELECT 1 FROM checkpoint_search WHERE checkpoint_search MATCH ? LIMIT \(countCap + 1))",
                     [Catalog.phrases(words)])
        } else {
            count = ("SELECT count(*) FROM (SELECT 1 FROM checkpoint \(filter.whereClause) LIMIT \(countCap + 1))", filter.arguments)
        }
        return Statements(page: (pageSQL, pageFilter.arguments), count: count, countIsExact: exact)
    }

    /// The index of the equality filter that matches the fewest rows, when that is at most `sparseMatches`:
    /// the page then reads those rows from it and sorts them, whatever the sort. sqlite_stat1 only knows the average
    /// rows per value, so without this a value that few or no rows have (a pod name in a catalog of Podman
    /// checkpoints, where the column is empty) would be planned as common, and the sort's index walked to the end
    /// looking for it. Each probe reads at most `sparseMatches + 1` entries of one index.
    static func drivingIndex(_ equalities: [(index: String, column: String, value: String)], sparseMatches: Int,
                             _ db: Database) throws -> String? {
        var best: (index: String, count: Int)?
        for equality in equalities {
            let count = try Int.fetchOne(
                db.cachedStatement(sql: """
                    SELECT count(*) FROM (SELECT 1 FROM checkpoint INDEXED BY \(equality.index)
                    WHERE \(equality.column) = ? LIMIT \(sparseMatches + 1))
                    """),
                arguments: [equality.value]) ?? 0
            if count <= sparseMatches, count < best?.count ?? Int.max { best = (equality.index, count) }
        }
        return best?.index
    }
}

/// A counter moved on after every write (`Catalog.generation`).
final class WriteGeneration: @unchecked Sendable {
    // @unchecked Sendable invariant: `count` is only touched with `lock` held.
    private let lock = NSLock()
    private var count: UInt64 = 0

    var value: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func advance() {
        lock.lock()
        count &+= 1
        lock.unlock()
    }
}
