import ArgumentParser
import FerryServer
import Foundation

/// `ferry serve`: the catalog service.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Ferry service: ingest, catalog, download and the web page.",
        discussion: """
            Defaults: 127.0.0.1:8080, data in ./ferry-data, no tokens (then only loopback is allowed). \
            Environment: FERRY_LISTEN, FERRY_DATA_DIR, FERRY_CATALOG, FERRY_BLOBS, FERRY_TOKENS, FERRY_MAX_UPLOAD_SIZE, FERRY_ENCRYPTION_KEY. \
            SIGTERM or SIGINT stops accepting, finishes in-flight requests and exits.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT or [IPV6]:PORT (default 127.0.0.1:8080).") var listen: String?
    @Option(help: "Data directory: catalog.sqlite and the blob store (default ./ferry-data).") var dataDir: String?
    @Option(help: "Catalog: sqlite (DATA/catalog.sqlite, the default), a SQLite file, or postgres://USER[:PASSWORD]@HOST:PORT/DB shared by replicas.") var catalog: String?
    @Option(help: "Blobs: local (DATA/blobs, the default) or s3://BUCKET[/PREFIX] shared by replicas; region and credentials from AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.") var blobs: String?
    @Option(help: "The object store's http(s)://HOST[:PORT] for --blobs s3://… (default: AWS_ENDPOINT_URL, else AWS; path-style addressing when given).") var s3Endpoint: String?
    @Option(help: "Tokens file: one `ROLE TOKEN [NAME]` per line; ROLE is read, node, write or admin.") var tokens: String?
    @Option(help: "Largest archive accepted, e.g. 64G (default 64G).") var maxUploadSize: String?
    @Option(help: "Folder of the NNNN_name.sql migrations (default: the ones built in).") var migrationsDir: String?
    @Option(help: "Folder of the web page's files (default: the ones built in).") var webRoot: String?
    @Option(help: "Seconds without a heartbeat after which a node is down (default 15).") var nodeTimeout: Double?
    @Option(help: "Seconds a replica's lease on a migration lasts unless renewed: how soon another replica takes over the migrations of one that died (default 10).")
    var migrationLease: Double?
    @Option(help: "Free space below which /readyz reports LOW_DISK_SPACE, e.g. 1G (default 256M).") var minFreeSpace: String?
    @Option(help: "Connections open at once (default 4096).") var maxConnections: Int?
    @Option(help: "Connections open at once from one client address; 0: no separate limit, e.g. behind a proxy (default 128).") var maxConnectionsPerAddress: Int?
    @Option(help: "HOST:PORT nodes pull checkpoint images from, as oci_reference gives it (default: the listen address).") var registryHost: String?
    @Option(help: "Retention policies, YAML or JSON with the checkpoint-restore-operator's fields (default: none, nothing deleted by policy).") var retention: String?
    @Option(help: "Seconds between retention runs, besides the one after every upload (default 60).") var retentionInterval: Double?
    @Option(help: "Encrypt blobs at rest with this key file (ferry keygen -o FILE; mode 0600). Default: none, blobs stored as uploaded.") var encryptionKey: String?
    @Option(help: .hidden) var encryptionChunkSize: Int?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration = ServerConfiguration()
        do {
            if let listen = listen ?? environment["FERRY_LISTEN"] { try configuration.setListen(listen) }
            configuration.dataDirectory = dataDir ?? environment["FERRY_DATA_DIR"] ?? configuration.dataDirectory
            configuration.catalog = catalog ?? environment["FERRY_CATALOG"] ?? configuration.catalog
            configuration.blobs = blobs ?? environment["FERRY_BLOBS"] ?? configuration.blobs
            configuration.s3Endpoint = s3Endpoint
            configuration.tokensFile = tokens ?? environment["FERRY_TOKENS"]
            if let size = maxUploadSize ?? environment["FERRY_MAX_UPLOAD_SIZE"] {
                configuration.maximumUploadSize = try ServerConfiguration.parseSize(size)
            }
            configuration.migrationsDirectory = migrationsDir ?? environment["FERRY_MIGRATIONS_DIR"]
            configuration.webRoot = webRoot ?? environment["FERRY_WEB_ROOT"]
            if let space = minFreeSpace ?? environment["FERRY_MIN_FREE_SPACE"] {
                configuration.minimumFreeBytes = try ServerConfiguration.parseSize(space)
            }
            configuration.registryHost = registryHost ?? environment["FERRY_REGISTRY_HOST"]
            if let limit = maxConnections ?? environment["FERRY_MAX_CONNECTIONS"].flatMap(Int.init) {
                guard limit > 0 else { throw ServerConfigurationError("--max-connections must be positive") }
                configuration.maximumConnections = limit
            }
            if let limit = maxConnectionsPerAddress ?? environment["FERRY_MAX_CONNECTIONS_PER_ADDRESS"].flatMap(Int.init) {
                guard limit >= 0 else { throw ServerConfigurationError("--max-connections-per-address is 0 (no limit) or more") }
                configuration.maximumConnectionsPerAddress = limit
            }
            configuration.retentionFile = retention ?? environment["FERRY_RETENTION"]
            if let interval = retentionInterval ?? environment["FERRY_RETENTION_INTERVAL"].flatMap(Double.init) {
                guard interval > 0 else { throw ServerConfigurationError("--retention-interval must be positive") }
                configuration.retentionInterval = interval
            }
            configuration.encryptionKeyFile = encryptionKey ?? environment["FERRY_ENCRYPTION_KEY"]
            if let size = encryptionChunkSize {
                guard (4096...(16 << 20)).contains(size) else { throw ServerConfigurationError("--encryption-chunk-size is 4096 to 16777216 bytes") }
                configuration.encryptionChunkSize = size
            }
            if let timeout = nodeTimeout ?? environment["FERRY_NODE_TIMEOUT"].flatMap(Double.init) {
                guard timeout > 0 else { throw ServerConfigurationError("--node-timeout must be positive") }
                configuration.nodeTimeout = timeout
            }
            if let lease = migrationLease ?? environment["FERRY_MIGRATION_LEASE"].flatMap(Double.init) {
                guard lease >= 1 else { throw ServerConfigurationError("--migration-lease is 1 second or more") }
                configuration.migrationLease = lease
            }
            try FerryServerMain.run(configuration, log: Self.log)
        } catch {
            FileHandle.standardError.write(Data("ferry: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// One line on stderr, with a UTC timestamp. Called for every request: gmtime_r and one write(2), no
    /// formatter objects, no printf-style formatting and no locks (a single write of a short line is atomic).
    @Sendable static func log(_ line: String) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        // 2026-12-02T10:00:00.123Z, digit by digit.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(25 + line.utf8.count + 1)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(48 + (rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); bytes.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); bytes.append(UInt8(ascii: "."))
        digits(Int(now.tv_nsec / 1_000_000), 3)
        bytes.append(contentsOf: "Z ".utf8)
        bytes.append(contentsOf: line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
