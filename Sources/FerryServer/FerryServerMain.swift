import FerryAPI
import FerryCatalog
public import FerryHTTP
import FerryProvenance
import Foundation

/// Opens the data directory, catalog and tokens, and runs the HTTP service until SIGTERM or SIGINT, then stops
/// accepting, lets in-flight requests finish (up to 30 s) and exits.
public enum FerryServerMain {
    /// Everything a running service holds; `stop()` shuts it down.
    public final class Running: Sendable {
        public let server: HTTPServer
        public let context: FerryServiceContext
        let orchestrator: MigrationOrchestrator
        let lock: DataDirectoryLock
        init(server: HTTPServer, context: FerryServiceContext, orchestrator: MigrationOrchestrator, lock: DataDirectoryLock) {
            self.server = server
            self.context = context
            self.orchestrator = orchestrator
            self.lock = lock
        }
        public var port: UInt16 { server.port }
        public func stop(timeout: Double = 30) {
            context.retention?.stop()
            orchestrator.stop()
            context.layerDigests?.stop()
            server.shutdown(timeout: timeout)
            lock.release()
        }
    }

    /// Starts the service and returns once it listens.
    public static func start(_ configuration: ServerConfiguration, log: @escaping @Sendable (String) -> Void) throws -> Running {
        let tokens: TokenStore
        if let file = configuration.tokensFile {
            tokens = try TokenStore(contentsOfFile: file)
        } else {
            tokens = .open
        }
        guard !tokens.isEmpty || configuration.isLoopback else {
            throw ServerConfigurationError(
                "refusing to listen on \(configuration.host) without tokens: give --tokens FILE, or listen on 127.0.0.1")
        }
        umask(0o077)  // every file and directory Ferry creates is private to its user
        // One service per data directory, taken before anything in it is touched (the blob store removes what it
        // thinks are a crash's leftovers).
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // A directory made before (by hand, or by an older Ferry) is tightened: it holds every archive's memory pages.
        var info = stat()
        if stat(configuration.dataDirectory, &info) == 0, info.st_mode & 0o077 != 0 {
            guard chmod(configuration.dataDirectory, 0o700) == 0 else {
                throw ServerConfigurationError("the data directory \(configuration.dataDirectory) is open to group or others and cannot be made 0700")
            }
            log("tightened the data directory \(configuration.dataDirectory) from mode \(String(info.st_mode & 0o777, radix: 8)) to 700")
        }
        let lock = try DataDirectoryLock(configuration.dataDirectory)
        // The key is checked against the whole store before anything is served: a wrong or missing key is refused
        // now, with its code, rather than as unreadable blobs later.
        let key = try configuration.encryptionKeyFile.map { try EncryptionKey.load(path: $0) }
        let census = try StoreKeys.verify(dataDirectory: configuration.dataDirectory, key: key, removingLeftovers: true)
        let columnCipher = try key.map { try ColumnCipher.open(dataDirectory: configuration.dataDirectory, key: $0) }
        if let key {
            log("encryption at rest: key \(key.id), \(census.sealedBlobs) sealed blob(s); new blobs sealed in \(configuration.encryptionChunkSize)-byte chunks")
        }
        guard let migrations = configuration.migrationsDirectory ?? Catalog.bundledMigrationsDirectory else {
            throw ServerConfigurationError("no migrations directory: give --migrations-dir")
        }
        let location: CatalogLocation
        do {
            location = try CatalogLocation(parsing: configuration.catalog, dataDirectory: configuration.dataDirectory)
        } catch let error as CatalogError {
            throw ServerConfigurationError("--catalog: \(error.message) [\(error.code)]")
        }
        let catalog = try Catalog(location, migrationsDirectory: migrations, registryHost: configuration.effectiveRegistryHost,
                                  columnCipher: columnCipher)
        let encryption = key.map { BlobEncryption(key: $0, chunkSize: configuration.encryptionChunkSize) }
        let blobs: BlobStore
        if configuration.blobs == "local" || configuration.blobs.isEmpty {
            blobs = try BlobStore(dataDirectory: configuration.dataDirectory, encryption: encryption)
        } else {
            do {
                // Replicas share the catalog's locks: one's ingest and another's delete of a digest never interleave.
                blobs = try BlobStore(dataDirectory: configuration.dataDirectory, objectStore: configuration.blobs,
                                      endpoint: configuration.s3Endpoint, environment: configuration.environment,
                                      encryption: encryption, sharedLocks: catalog.sharedLocks)
                // One process on a SQLite catalog is the store's only writer: every unfinished upload is its own.
                let removed = try blobs.removeUploadLeftovers(olderThan: catalog.sharedLocks == nil ? 0 : configuration.uploadLeftoverAge)
                if removed > 0 { log("object store: removed \(removed) upload(s) a stopped process never finished") }
            } catch let error as CatalogError {
                throw ServerConfigurationError("--blobs: \(error.message) [\(error.code)]")
            }
            log("blobs in \(blobs.location)")
        }
        guard let webRoot = configuration.webRoot ?? bundledWebRoot else {
            throw ServerConfigurationError("no web directory: give --web-root")
        }
        var policies: RetentionPolicies?
        if let file = configuration.retentionFile {
            do {
                policies = try RetentionConfiguration.load(path: file)
            } catch {
                throw ServerConfigurationError("--retention: \(error.message)")
            }
        }
        let box = StatisticsBox()
        var context = FerryServiceContext(
            catalog: catalog, blobs: blobs, tokens: tokens, maximumUploadSize: configuration.maximumUploadSize,
            webRoot: webRoot, httpStatistics: { box.server?.statistics }, log: log,
            nodes: NodeRegistry(timeout: configuration.nodeTimeout, tokens: tokens))
        context.reserve = SpaceReserve(dataDirectory: configuration.dataDirectory)
        let signing: CheckpointSigning
        do {
            signing = CheckpointSigning(signer: try ProvenanceSigner.loadOrCreate(
                at: CheckpointSigning.keyPath(dataDirectory: configuration.dataDirectory)))
        } catch {
            throw ServerConfigurationError("provenance: \(error.message)")
        }
        context.signing = signing
        let signed = try signing.signUnsigned(in: catalog)
        if signed > 0 { log("provenance: signed \(signed) checkpoint(s) catalogued before they could be") }
        context.minimumFreeBytes = configuration.minimumFreeBytes
        let layerDigests = LayerDigestWorker(catalog: catalog, blobs: blobs, log: log)
        context.layerDigests = layerDigests
        // The blob store against the catalog: a crash between a blob's rename and its row's insert leaves an orphan.
        let check = try StoreConsistency.check(catalog: catalog, blobs: blobs, repair: true)
        context.metrics.recordStoreCheck(orphansRemoved: check.orphanBlobs.count)
        if !check.isClean {
            log("store check: removed \(check.orphanBlobs.count) blob(s) no row named (\(check.orphanBlobs.map { String($0.prefix(12)) }.joined(separator: ", "))); "
                + "\(check.rowsWithoutBlob.count) row(s) have no blob and are marked (\(check.rowsWithoutBlob.map { String($0.prefix(12)) }.joined(separator: ", ")))")
        }
        let retention = RetentionService(catalog: catalog, blobs: blobs, reserve: context.reserve, liveUploads: context.liveUploads,
                                         policies: policies, interval: configuration.retentionInterval, log: log)
        context.retention = retention
        let orchestrator = MigrationOrchestrator(context: context, registry: context.nodes, leaseDuration: configuration.migrationLease)
        let server = HTTPServer(
            host: configuration.host, port: configuration.port,
            configuration: HTTPServerConfiguration(maximumConnections: configuration.maximumConnections,
                                                   maximumConnectionsPerIP: configuration.maximumConnectionsPerAddress),
            handler: FerryService.router(context, orchestrator: orchestrator), log: log)
        box.server = server
        try server.start()
        // With port 0 the port is known only now.
        var bound = configuration
        bound.port = server.port
        catalog.registryHost = bound.effectiveRegistryHost
        // Unfinished migrations of an earlier run are picked up here.
        orchestrator.start()
        layerDigests.enqueueMissing()
        retention.start()
        log("ferry serving on \(configuration.host):\(server.port), data in \(configuration.dataDirectory), catalog \(catalog.location), \(tokens.isEmpty ? "no tokens (loopback only)" : "tokens required"), replica \(orchestrator.replicaID)")
        return Running(server: server, context: context, orchestrator: orchestrator, lock: lock)
    }

    /// Runs until SIGTERM or SIGINT.
    public static func run(_ configuration: ServerConfiguration, log: @escaping @Sendable (String) -> Void) throws {
        let signals = TerminationSignals()
        let running = try start(configuration, log: log)
        signals.wait()
        log("ferry shutting down: finishing in-flight requests")
        running.stop(timeout: 30)
        log("ferry stopped")
    }

    static var bundledWebRoot: String? {
        Bundle.module.resourceURL.map { $0.appendingPathComponent("web").path }
    }
}

/// Lets the metrics closure reach the server created after the context. Set once before the server starts.
private final class StatisticsBox: @unchecked Sendable {
    var server: HTTPServer?
}
