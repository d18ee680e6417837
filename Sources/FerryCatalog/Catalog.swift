public import Foundation

/// Where the catalog lives: the embedded SQLite file (the default) or a PostgreSQL server that several replicas
/// share (`--catalog postgres://USER[:PASSWORD]@HOST:PORT/DB`).
public enum CatalogLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)

    /// `--catalog`'s value: `sqlite` (the data directory's `catalog.sqlite`), a file path, or a
    /// `postgres://` / `postgresql://` URL.
    public init(parsing text: String, dataDirectory: String) throws {
        if text == "sqlite" || text.isEmpty {
            self = .sqlite(path: dataDirectory + "/catalog.sqlite")
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            guard let components = URLComponents(string: text), components.host?.isEmpty == false,
                  components.path.count > 1 else {
                throw CatalogError(.invalidCatalog, "--catalog wants postgres://USER[:PASSWORD]@HOST:PORT/DATABASE")
            }
            self = .postgres(url: text)
        } else if text.contains("://") {
            throw CatalogError(.invalidCatalog, "--catalog takes sqlite, a file path or a postgres:// URL, not \(text.prefix(40))")
        } else {
            self = .sqlite(path: text)
        }
    }
}

/// The catalog: checkpoints, their findings and inspections, nodes, migrations, pins, deletions and signed
/// statements, on SQLite (one file in WAL mode, concurrent readers, one writer) or PostgreSQL.
///
/// The schema lives in `migrations/NNNN_name.sql` (with `migrations/postgres/NNNN_name.sql` where PostgreSQL's SQL
/// differs); each is applied once, in name order, at start-up, and recorded, so a newer binary upgrades an older
/// database and an older binary refuses a newer one instead of corrupting it. Every query below is written once.
public final class Catalog: Sendable {
    let database: any SQLDatabase
    /// The SQLite file, or the PostgreSQL server without its password.
    public var location: String { database.location }
    /// Locks every process on this catalog's database takes (PostgreSQL's advisory locks); nil on SQLite, which one
    /// process writes.
    public var sharedLocks: (any SharedLocks)? { database as? PostgresDatabase }
    private let generationBox = WriteGeneration()
    /// A filtered list counts its matches up to this many (`CheckpointQuery.countCap`; smaller in tests).
    let countCap: Int
    /// Up to this many matches a filter is read from its own index (`Catalog.sparseMatches`; smaller in tests).
    let sparseMatches: Int
    private let registryHostBox: RegistryHostBox
    /// Seals the values taken from archive contents (the inspection) when the data directory is encrypted.
    let columnCipher: ColumnCipher?

    /// Opens or creates the SQLite catalog at `path` and applies the migrations found in `migrationsDirectory`.
    /// `upTo` stops after the named migration (tests use it to build an older schema).
    /// `registryHost` (`HOST:PORT`) starts every `oci_reference` the API gives (SQL `ferry_registry_host()`).
    /// `columnCipher` seals the stored inspections (an encrypted data directory).
    public convenience init(path: String, migrationsDirectory: String, upTo lastMigration: String? = nil,
                            registryHost: String = "127.0.0.1:8080", columnCipher: ColumnCipher? = nil) throws {
        try self.init(.sqlite(path: path), migrationsDirectory: migrationsDirectory, upTo: lastMigration,
                      registryHost: registryHost, columnCipher: columnCipher)
    }

    /// Opens the catalog at `location`, SQLite or PostgreSQL, and applies the migrations it lacks.
    public convenience init(_ location: CatalogLocation, migrationsDirectory: String, upTo lastMigration: String? = nil,
                            registryHost: String = "127.0.0.1:8080", columnCipher: ColumnCipher? = nil) throws {
        try self.init(location, migrationsDirectory: migrationsDirectory, upTo: lastMigration, registryHost: registryHost,
                      countCap: CheckpointQuery.countCap, columnCipher: columnCipher)
    }

    convenience init(path: String, migrationsDirectory: String, upTo lastMigration: String?, registryHost: String, countCap: Int,
         sparseMatches: Int = Catalog.sparseMatches, columnCipher: ColumnCipher? = nil) throws {
        try self.init(.sqlite(path: path), migrationsDirectory: migrationsDirectory, upTo: lastMigration,
                      registryHost: registryHost, countCap: countCap, sparseMatches: sparseMatches, columnCipher: columnCipher)
    }

    init(_ location: CatalogLocation, migrationsDirectory: String, upTo lastMigration: String?, registryHost: String,
         countCap: Int, sparseMatches: Int = Catalog.sparseMatches, columnCipher: ColumnCipher? = nil) throws {
        self.columnCipher = columnCipher
        self.countCap = countCap
        self.sparseMatches = sparseMatches
        let registryHostBox = RegistryHostBox(registryHost)
        self.registryHostBox = registryHostBox
        switch location {
        case .sqlite(let path):
            let migrations = try SQLMigration.load(from: migrationsDirectory, dialect: .sqlite, upTo: lastMigration)
            database = try SQLiteDatabase(path: path, migrations: migrations, registryHost: registryHostBox)
        case .postgres(let url):
            let migrations = try SQLMigration.load(from: migrationsDirectory, dialect: .postgres, upTo: lastMigration)
            database = try PostgresDatabase(url: url, migrations: migrations, registryHost: registryHostBox)
        }
        try nameRepositories()
    }

    /// Gives rows catalogued before the registry view their repository (once; the naming is Swift, not SQL).
    private func nameRepositories() throws {
        guard try appliedMigrations().contains("0008_add_checkpoint_image") else { return }
        try write { db in
            for row in try db.rows("SELECT id, container_name, pod_name, pod_namespace FROM checkpoint WHERE oci_repository IS NULL") {
                let name = OCIName.repository(containerName: try row("container_name"), podName: try row("pod_name"),
                                              podNamespace: try row("pod_namespace"))
                try db.execute("UPDATE checkpoint SET oci_repository = ? WHERE id = ?", name, try row("id") as String)
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

    /// The checkpoints of one registry repository, newest first, at most `limit`.
    public func imageCheckpoints(repository: String, limit: Int = 1000) throws -> [CheckpointRecord] {
        try read { db in
            try db.rows("""
                SELECT * FROM checkpoint WHERE oci_repository = ? AND compression IN ('none', 'gzip', 'zstd')
                ORDER BY uploaded_at DESC, id DESC LIMIT ?
                """, repository, limit).map(CheckpointRecord.init(row:))
        }
    }

    /// Whether any checkpoint lives in this repository (servable or not).
    public func hasRepository(_ repository: String) throws -> Bool {
        try read { try $0.value("SELECT EXISTS (SELECT 1 FROM checkpoint WHERE oci_repository = ?)", repository) ?? false }
    }

    /// gzip and zstd checkpoints whose uncompressed digest is not recorded yet (at most `limit`).
    public func checkpointsWithoutUncompressedDigest(limit: Int = 100_000) throws -> [CheckpointRecord] {
        try read { db in
            try db.rows("""
                SELECT * FROM checkpoint WHERE uncompressed_digest IS NULL AND compression IN ('gzip', 'zstd') LIMIT ?
                """, limit).map(CheckpointRecord.init(row:))
        }
    }

    /// Records the uncompressed tar's digest of a checkpoint.
    public func setUncompressedDigest(_ id: String, _ digest: String) throws {
        try write { try $0.execute("UPDATE checkpoint SET uncompressed_digest = ? WHERE id = ?", digest, id) }
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
        try database.appliedMigrations()
    }

    /// Inserts a checkpoint and its findings in one transaction, or returns the existing row if one with the same
    /// ID (the same bytes) exists. With `sign`, the checkpoint's signed statement joins its chain in the same
    /// transaction: no checkpoint is catalogued unsigned, and concurrent uploads of one container form one chain.
    /// Writes are serialised (on PostgreSQL across replicas), so the same bytes uploaded twice at once are one row.
    public func insert(
        _ record: CheckpointRecord, inspection: String = "{}", findings: [FindingRecord] = [],
        sign: StatementSigning? = nil
    ) throws -> (record: CheckpointRecord, inserted: Bool) {
        let stored = try columnCipher.map { try $0.seal(inspection, column: "inspection", row: record.id) } ?? inspection
        return try write { db in
            if let existing = try db.row("SELECT * FROM checkpoint WHERE id = ?", record.id) {
                return (try CheckpointRecord(row: existing), false)
            }
            var row = record
            row.searchText = CheckpointRecord.searchText(for: record)
            try row.insert(db)
            try db.execute("INSERT INTO checkpoint_inspection (checkpoint_id, inspection) VALUES (?, ?)", record.id, stored)
            for finding in findings {
                try db.execute("""
                    INSERT INTO finding (checkpoint_id, code, severity, path, message, waiver) VALUES (?, ?, ?, ?, ?, ?)
                    """, record.id, finding.code, finding.severity, finding.path, finding.message, finding.waiver)
            }
            if let sign { try Self.appendStatement(row, sign: sign, db) }
            try database.catalogGrew(db)
            return (row, true)
        }
    }

    /// The full inspection of a checkpoint, as JSON text.
    public func inspection(of id: String) throws -> String {
        let text: String? = try read { try $0.value("SELECT inspection FROM checkpoint_inspection WHERE checkpoint_id = ?", id) }
        guard let text else { throw CatalogError(.checkpointNotFound, "no checkpoint \(id)") }
        guard ColumnCipher.isSealed(text) else { return text }
        guard let columnCipher else {
            throw CatalogError(.encryptionKeyRequired, "the inspection of \(id.prefix(12)) is encrypted and no --encryption-key was given")
        }
        return try columnCipher.open(text, column: "inspection", row: id)
    }

    /// The findings of a checkpoint, in the order validation reported them.
    public func findings(of id: String) throws -> [FindingRecord] {
        try read { db in
            try db.rows("SELECT code, severity, path, message, waiver FROM finding WHERE checkpoint_id = ? ORDER BY id", id).map { row in
                FindingRecord(code: try row("code"), severity: try row("severity"), path: try row("path"),
                              message: try row("message"), waiver: try row("waiver"))
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
        // IDs compare bytewise on both engines (PostgreSQL's columns are COLLATE "C"): a prefix is a range.
        let matches = try read { db in
            try db.rows("SELECT * FROM checkpoint WHERE id >= ? AND id < ? LIMIT 2", id, id + "g").map(CheckpointRecord.init(row:))
        }
        guard let first = matches.first else { throw CatalogError(.checkpointNotFound, "no checkpoint \(id)") }
        guard matches.count == 1 else {
            throw CatalogError(.ambiguousID, "\(id) is the start of more than one checkpoint ID; give more digits")
        }
        return first
    }

    /// Deletes a checkpoint row. Returns the deleted row.
    public func delete(_ id: String) throws -> CheckpointRecord {
        try write { db in
            guard let row = try db.row("SELECT * FROM checkpoint WHERE id = ?", id) else {
                throw CatalogError(.checkpointNotFound, "no checkpoint \(id)")
            }
            try db.execute("DELETE FROM checkpoint WHERE id = ?", id)
            return try CheckpointRecord(row: row)
        }
    }

    /// Whether any row points at this blob.
    public func contains(_ id: String) throws -> Bool {
        try read { try $0.value("SELECT EXISTS (SELECT 1 FROM checkpoint WHERE id = ?)", id) ?? false }
    }

    /// Number of checkpoints and the sum of their stored sizes.
    public func totals() throws -> (count: Int, bytes: Int64) {
        try read { db in
            // Kept by triggers (migration 0010): no row is counted.
            guard let row = try db.row("SELECT count, bytes FROM checkpoint_total WHERE \"only\" = 1") else { return (0, 0) }
            return (try row("count"), try row("bytes"))
        }
    }

    /// One page of checkpoints matching a query.
    public func list(_ query: CheckpointQuery) throws -> CheckpointPage {
        let page = try page(query, select: "*", from: "checkpoint", decode: CheckpointRecord.init(row:))
        return CheckpointPage(items: page.items, nextCursor: page.nextCursor, total: page.total, totalExact: page.totalExact)
    }

    /// One page of checkpoints matching a query, each as the API's JSON description (the `checkpoint_summary` view).
    public func summaries(_ query: CheckpointQuery) throws -> CheckpointSummaryPage {
        let page = try page(query, select: "summary", from: "checkpoint_summary") { row -> String in try row("summary") }
        return CheckpointSummaryPage(items: page.items, nextCursor: page.nextCursor, total: page.total, totalExact: page.totalExact)
    }

    /// The API's JSON description of one checkpoint.
    public func summary(of id: String) throws -> String {
        let text: String? = try read { try $0.value("SELECT summary FROM checkpoint_summary WHERE id = ?", id) }
        guard let text else { throw CatalogError(.checkpointNotFound, "no checkpoint \(id)") }
        return text
    }

    /// The shared query behind `list` and `summaries`: filters, keyset pagination, and the total.
    private func page<T>(
        _ query: CheckpointQuery, select: String, from table: String, decode: @escaping (SQLRow) throws -> T
    ) throws -> (items: [T], nextCursor: String?, total: Int, totalExact: Bool) {
        let prepared = try PreparedList(query, countCap: countCap, sparseMatches: sparseMatches)
        return try read { db in
            let statements = try prepared.statements(select: select, from: table, db)
            let rows = try db.rows(statements.page.sql, statements.page.arguments)
            let counted: Int = try db.value(statements.count.sql, statements.count.arguments) ?? 0
            let exact = statements.countIsExact || counted <= countCap
            let total = statements.countIsExact ? counted : min(counted, countCap)
            let items = try rows.prefix(query.limit).map(decode)
            var next: String?
            if rows.count > query.limit, let last = rows.prefix(query.limit).last {
                next = PageCursor(
                    sort: query.sort.rawValue, descending: query.descending,
                    text: prepared.numeric ? nil : try last("sort_value"), number: prepared.numeric ? try last("sort_value") : nil,
                    id: try last("page_id")
                ).encoded()
            }
            return (items, next, total, exact)
        }
    }

    /// The query plans (EXPLAIN QUERY PLAN details) of a list's page and count statements on SQLite, for tests that
    /// keep every filter and sort on an index.
    func plans(_ query: CheckpointQuery) throws -> (page: [String], count: [String]) {
        guard let sqlite = database as? SQLiteDatabase else { return ([], []) }
        let prepared = try PreparedList(query, countCap: countCap, sparseMatches: sparseMatches)
        let statements = try read { try prepared.statements(select: "summary", from: "checkpoint_summary", $0) }
        return (try sqlite.plan(statements.page.sql, statements.page.arguments),
                try sqlite.plan(statements.count.sql, statements.count.arguments))
    }

    /// The words of `q` as conditions.
    ///
    /// On SQLite, a word of three characters or more that few checkpoints contain is looked up in the trigram index
    /// (and the rows it names fetched by rowid); one that many contain (more than `sparseMatches`) is checked on
    /// each row as the sort's index is walked instead, since a page of it is found within the first rows; shorter
    /// words are always checked on the row. On PostgreSQL each word is a `LIKE '%word%'`, which the trigram GIN
    /// index (pg_trgm) answers, and the planner's own statistics choose between it and the sort's index.
    static func addText(_ words: [String], to filter: inout SQLFilter, sparseMatches: Int, _ db: any SQLConnection) throws {
        for word in words {
            if db.dialect == .postgres {
                filter.add("search_text LIKE ?", "%" + likeEscaped(word) + "%")
                continue
            }
            if word.unicodeScalars.count >= 3 {
                let phrase = phrases([word])
                let found: Int = try db.value(
                    "SELECT count(*) FROM (SELECT 1 FROM checkpoint_search WHERE checkpoint_search MATCH ? LIMIT \(sparseMatches + 1))",
                    phrase) ?? 0
                if found <= sparseMatches {
                    filter.add("rowid IN (SELECT rowid FROM checkpoint_search WHERE checkpoint_search MATCH ?)", phrase)
                    continue
                }
            }
            filter.add("instr(search_text, ?) > 0", word)
        }
    }

    /// A word as a LIKE pattern's literal text (PostgreSQL's escape character is the backslash).
    static func likeEscaped(_ word: String) -> String {
        word.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
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

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try database.read(body)
    }

    /// A write to the checkpoint tables: moves `generation` on, here and (on PostgreSQL) for every replica.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try changing {
            try database.write { db in
                let result = try body(db)
                try database.noteCheckpointWrite(db)
                return result
            }
        }
    }

    /// A write to the node and migration tables only: it leaves `generation` alone (heartbeats arrive every second
    /// and change no checkpoint).
    func writeNodesAndMigrations<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try database.write(body)
    }

    /// Counts writes: a number that changes after every write to the checkpoint tables (successful or not, by this
    /// process or, on PostgreSQL, by any replica), so a cache of anything read from them knows when to read again.
    public var generation: UInt64 {
        // When the shared counter cannot be read, a value never handed out before: caches read again.
        let shared = (try? database.sharedGeneration()) ?? generationBox.unique()
        return generationBox.value &+ shared
    }

    /// Runs a write and moves the generation on after it, whatever its outcome.
    private func changing<T>(_ body: () throws -> T) rethrows -> T {
        defer { generationBox.advance() }
        return try body()
    }
}

extension Catalog {
    /// The migrations shipped with this binary (`migrations/` copied into the bundle at build time).
    public static var bundledMigrationsDirectory: String? {
        Bundle.module.resourceURL.map { $0.appendingPathComponent("migrations").path }
    }
}

/// The WHERE clause of a catalog query, built condition by condition with its arguments.
struct SQLFilter {
    var conditions: [String] = []
    var arguments: [any SQLArgument] = []

    mutating func equal(_ column: String, _ value: String?) {
        guard let value else { return }
        add("\(column) = ?", value)
    }

    mutating func add(_ condition: String, _ values: any SQLArgument...) {
        add(condition, values)
    }

    mutating func add(_ condition: String, _ values: [any SQLArgument]) {
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
    var cursorCondition: (sql: String, arguments: [any SQLArgument])?

    struct Statements {
        var page: (sql: String, arguments: [any SQLArgument])
        var count: (sql: String, arguments: [any SQLArgument])
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
            let value: any SQLArgument = numeric ? (cursor.number ?? 0) : (cursor.text ?? "")
            cursorCondition = ("(\(query.sort.column), id) \(query.descending ? "<" : ">") (?, ?)", [value, cursor.id])
        }
    }

    func statements(select: String, from table: String, _ db: any SQLConnection) throws -> Statements {
        let otherConditions = filter.conditions.count
        var filter = filter
        try Catalog.addText(words, to: &filter, sparseMatches: sparseMatches, db)
        var pageFilter = filter
        if let cursorCondition { pageFilter.add(cursorCondition.sql, cursorCondition.arguments) }
        let column = query.sort.column
        let direction = query.descending ? "DESC" : "ASC"
        // PostgreSQL plans from its own per-value statistics; SQLite is told which index to drive from.
        let source = db.dialect == .sqlite
            ? try Self.drivingIndex(indexedEqualities, sparseMatches: sparseMatches, db).map { "checkpoint INDEXED BY \($0)" } ?? "checkpoint"
            : "checkpoint"
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
        let count: (sql: String, arguments: [any SQLArgument])
        var exact = false
        let textOnly = db.dialect == .sqlite && otherConditions == 0 && !words.isEmpty && words.allSatisfy { $0.unicodeScalars.count >= 3 }
        if filter.conditions.isEmpty {
            count = ("SELECT count FROM checkpoint_total WHERE \"only\" = 1", [])
            exact = true
        } else if textOnly {
            // Only q, every word indexed: the trigram index counts (all words in one MATCH).
            count = ("SELECT count(*) FROM (SELECT 1 FROM checkpoint_search WHERE checkpoint_search MATCH ? LIMIT \(countCap + 1)) AS capped",
                     [Catalog.phrases(words)])
        } else {
            count = ("SELECT count(*) FROM (SELECT 1 FROM checkpoint \(filter.whereClause) LIMIT \(countCap + 1)) AS capped", filter.arguments)
        }
        return Statements(page: (pageSQL, pageFilter.arguments), count: count, countIsExact: exact)
    }

    /// The index of the equality filter that matches the fewest rows, when that is at most `sparseMatches`:
    /// the page then reads those rows from it and sorts them, whatever the sort. sqlite_stat1 only knows the average
    /// rows per value, so without this a value that few or no rows have (a pod name in a catalog of Podman
    /// checkpoints, where the column is empty) would be planned as common, and the sort's index walked to the end
    /// looking for it. Each probe reads at most `sparseMatches + 1` entries of one index.
    static func drivingIndex(_ equalities: [(index: String, column: String, value: String)], sparseMatches: Int,
                             _ db: any SQLConnection) throws -> String? {
        var best: (index: String, count: Int)?
        for equality in equalities {
            let count: Int = try db.value("""
                SELECT count(*) FROM (SELECT 1 FROM checkpoint INDEXED BY \(equality.index)
                WHERE \(equality.column) = ? LIMIT \(sparseMatches + 1))
                """, equality.value) ?? 0
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
    private var uniqueCount: UInt64 = 0

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

    /// A value no earlier call returned, from the top of the range (the shared counter counts from the bottom).
    func unique() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        uniqueCount &+= 1
        return UInt64.max / 2 &+ uniqueCount
    }
}
