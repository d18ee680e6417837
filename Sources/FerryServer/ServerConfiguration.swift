import FerryCatalog
import Foundation
import FerryHTTP

/// How `ferry serve` runs: flags first, then `FERRY_*` environment variables, then the embedded defaults
/// (127.0.0.1:8080, `./ferry-data`, no tokens).
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    public var dataDirectory = "./ferry-data"
    /// `--catalog`: `sqlite` (the data directory's `catalog.sqlite`), a SQLite file, or a `postgres://` URL that
    /// several replicas share.
    public var catalog = "sqlite"
    /// `--blobs`: `local` (the data directory's `blobs/`) or `s3://bucket/prefix` that several replicas share.
    public var blobs = "local"
    /// `--s3-endpoint`: the object store's `http(s)://HOST[:PORT]` (else `AWS_ENDPOINT_URL`, else AWS).
    public var s3Endpoint: String?
    /// Where region and credentials are read (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// Seconds after which a replica sharing the object store takes an upload nobody committed for a dead
    /// replica's and removes it (a store that one process writes removes them all at start).
    public var uploadLeftoverAge: Double = 24 * 3600
    public var tokensFile: String?
    public var maximumUploadSize: Int64 = 64 << 30
    public var migrationsDirectory: String?
    public var webRoot: String?
    /// Seconds without a heartbeat after which a node is down and migrations to it fail.
    public var nodeTimeout: Double = 15
    /// Seconds a replica's lease on a migration lasts unless renewed (at half-life): how soon another replica goes on
    /// driving the migrations of one that died.
    public var migrationLease: Double = 10
    /// Below this many free bytes in the data directory `/readyz` answers 503 `LOW_DISK_SPACE`.
    public var minimumFreeBytes: Int64 = 256 << 20
    /// `HOST:PORT` that `oci_reference`s start with: how nodes reach the registry view. Nil: the listen address
    /// (the host name when listening on every address).
    public var registryHost: String?

    /// Connections open at once, and from one client address (0: no separate limit). Behind a proxy or NAT every
    /// client shares one address: raise the second or set it to 0 there.
    /// Retention policies (YAML or JSON, the checkpoint-restore-operator's fields); nil: nothing is deleted by policy.
    public var retentionFile: String?
    /// Seconds between retention runs besides the one after every ingest.
    public var retentionInterval: Double = 60

    /// The key file (`ferry keygen`) whose key wraps every blob's data key; nil: blobs are stored as uploaded.
    public var encryptionKeyFile: String?
    /// Plaintext bytes per sealed chunk of new blobs (benchmarks compare sizes).
    public var encryptionChunkSize = BlobEncryption.defaultChunkSize

    public var maximumConnections = 4096
    public var maximumConnectionsPerAddress = 128

    public init() {}

    /// The registry host the API names in `oci_reference`.
    public var effectiveRegistryHost: String {
        if let registryHost { return registryHost }
        let wildcard = host == "0.0.0.0" || host == "::" || host.isEmpty
        let name = wildcard ? (ProcessInfo.processInfo.hostName.isEmpty ? "localhost" : ProcessInfo.processInfo.hostName) : host
        return (name.contains(":") ? "[\(name)]" : name) + ":\(port)"
    }

    /// Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT`.
    public mutating func setListen(_ text: String) throws {
        switch ListenAddress.parse(text, defaultHost: host) {
        case .success(let address):
            host = address.host
            port = address.port
        case .failure(let error):
            throw ServerConfigurationError(error.description)
        }
    }

    /// Parses sizes like `1048576`, `512M`, `64G`, `2T`.
    public static func parseSize(_ text: String) throws -> Int64 {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text.uppercased())
        var multiplier: Int64 = 1
        if digits.hasSuffix("IB") { digits = digits.dropLast(2) } else if digits.hasSuffix("B") { digits = digits.dropLast() }
        if let last = digits.last, let unit = units[last] {
            multiplier = unit
            digits = digits.dropLast()
        }
        guard let value = Int64(digits), value > 0, value <= Int64.max / multiplier else {
            throw ServerConfigurationError("\(text) is not a size (e.g. 1073741824, 512M, 64G)")
        }
        return value * multiplier
    }

    /// Whether `host` is a loopback address, the only kind Ferry listens on without tokens.
    public var isLoopback: Bool { ListenAddress(host: host, port: port).isLoopback }
}

/// A configuration `ferry serve` cannot run with.
public struct ServerConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
