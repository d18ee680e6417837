import CheckpointArchive
public import FerryCatalog
public import FerryHTTP
import FerryValidation
import Foundation

/// Everything the service needs, opened once at start-up.
public struct FerryServiceContext: Sendable {
    public var catalog: Catalog
    public var blobs: BlobStore
    public var tokens: TokenStore
    public var maximumUploadSize: Int64
    /// Folder of the web page's static files and templates (`web/`).
    public var webRoot: String
    public var metrics: ServiceMetrics
    /// The HTTP layer's counters, once the server runs.
    public var httpStatistics: @Sendable () -> HTTPStatistics?
    public var log: @Sendable (String) -> Void
    /// Node liveness and agent tokens.
    public var nodes: NodeRegistry
    /// The web page's signed-in browsers.
    public let sessions = SessionStore()
    /// Checkpoints taken on nodes without a migration, as their agents report them.
    let nodeCheckpoints = NodeCheckpoints()
    /// Space given up so deletes work on a full disk (nil: none kept).
    public var reserve: SpaceReserve?
    /// Below this many free bytes `/readyz` says the service is not ready.
    public var minimumFreeBytes: Int64 = 256 << 20
    /// Works out image diff_ids after ingest (nil: only on the first pull).
    var layerDigests: LayerDigestWorker?
    /// Recent list answers, valid until the catalog's next checkpoint write.
    let listCache = GenerationCache<[UInt8]>()
    /// Recent renderings of the web page's list, likewise.
    let pageCache = GenerationCache<[UInt8]>(maximumEntries: 64, maximumBytes: 8 << 20)
    /// Uploads that nodes named, readable while they arrive (a migration's cut-through).
    let liveUploads = LiveUploads()
    /// The retention policies and their runs (none configured: runs delete nothing).
    var retention: RetentionService?
    /// Signs every checkpoint catalogued (the data directory's `provenance-key`).
    public var signing: CheckpointSigning?
    /// Where the archives asked for live, by the ID (or prefix, or registry digest) asked with, likewise.
    let archiveLocations = GenerationCache<ArchiveLocation>(maximumEntries: 4096, maximumCost: 4096, maximumEntryCost: 1) { _ in 1 }

    public init(
        catalog: Catalog, blobs: BlobStore, tokens: TokenStore, maximumUploadSize: Int64, webRoot: String,
        metrics: ServiceMetrics = ServiceMetrics(), httpStatistics: @escaping @Sendable () -> HTTPStatistics? = { nil },
        log: @escaping @Sendable (String) -> Void = { _ in }, nodes: NodeRegistry = NodeRegistry(timeout: 15)
    ) {
        self.nodes = nodes
        self.catalog = catalog
        self.blobs = blobs
        self.tokens = tokens
        self.maximumUploadSize = maximumUploadSize
        self.webRoot = webRoot
        self.metrics = metrics
        self.httpStatistics = httpStatistics
        self.log = log
    }
}

/// The routes of the catalog service: the REST API under `/api/v1`, health and metrics, and the web page.
public enum FerryService {
    public static func router(_ context: FerryServiceContext, orchestrator: MigrationOrchestrator) -> Router {
        var router = Router()
        let api = CheckpointAPI(context: context)
        let nodeAPI = NodeAPI(api: api, registry: context.nodes)
        let migrationAPI = MigrationAPI(api: api, orchestrator: orchestrator)
        router.add("POST", "/api/v1/nodes/{name}/heartbeat") { request, parameters, body in
            try nodeAPI.heartbeat(request, name: parameters["name"] ?? "", body: body)
        }
        router.add("POST", "/api/v1/nodes/{name}/jobs/{id}/report") { request, parameters, body in
            try migrationAPI.report(request, node: parameters["name"] ?? "", jobID: parameters["id"] ?? "", body: body)
        }
        let nodeCheckpointAPI = NodeCheckpointAPI(api: api, registry: context.nodes)
        router.add("POST", "/api/v1/nodes/{name}/checkpoints") { request, parameters, body in
            try nodeCheckpointAPI.create(request, node: parameters["name"] ?? "", body: body)
        }
        router.add("GET", "/api/v1/nodes/{name}/checkpoints/{job}") { request, parameters, _ in
            try nodeCheckpointAPI.detail(request, node: parameters["name"] ?? "", job: parameters["job"] ?? "")
        }
        let liveUploadAPI = LiveUploadAPI(api: api)
        router.add("GET", "/api/v1/nodes/{name}/uploads/{id}") { request, parameters, _ in
            try liveUploadAPI.status(request, node: parameters["name"] ?? "", id: parameters["id"] ?? "")
        }
        router.add("GET", "/api/v1/nodes/{name}/uploads/{id}/archive") { request, parameters, _ in
            try liveUploadAPI.archive(request, node: parameters["name"] ?? "", id: parameters["id"] ?? "")
        }
        router.add("GET", "/api/v1/nodes") { request, _, _ in try nodeAPI.list(request) }
        router.add("GET", "/api/v1/nodes/{name}") { request, parameters, _ in try nodeAPI.detail(request, name: parameters["name"] ?? "") }
        router.add("POST", "/api/v1/migrations") { request, _, body in try migrationAPI.create(request, body: body) }
        router.add("GET", "/api/v1/migrations") { request, _, _ in try migrationAPI.list(request) }
        router.add("GET", "/api/v1/migrations/{id}") { request, parameters, _ in try migrationAPI.detail(request, id: parameters["id"] ?? "") }
        router.add("POST", "/api/v1/migrations/{id}/outcome") { request, parameters, body in
            try migrationAPI.outcome(request, id: parameters["id"] ?? "", body: body)
        }
        router.add("POST", "/api/v1/migrations/{id}/cancel") { request, parameters, _ in
            try migrationAPI.cancel(request, id: parameters["id"] ?? "")
        }
        // Inline: answered from memory on libmicrohttpd's worker thread (see HTTPRoute.inline).
        router.add("GET", "/healthz", inline: true) { _, _, _ in .json(["status": "ok"]) }
        router.add("GET", "/readyz") { _, _, _ in api.ready() }
        router.add("GET", "/metrics") { request, _, _ in try api.metrics(request) }
        router.add("POST", "/api/v1/checkpoints") { request, _, body in try api.ingest(request, body: body) }
        router.add("GET", "/api/v1/checkpoints", fromMemory: { request, _ in try api.cachedList(request) }) { request, _, _ in
            try api.list(request)
        }
        router.add("GET", "/api/v1/checkpoints/{id}") { request, parameters, _ in
            try api.detail(request, id: parameters["id"] ?? "")
        }
        router.add("DELETE", "/api/v1/checkpoints/{id}") { request, parameters, _ in
            try api.delete(request, id: parameters["id"] ?? "")
        }
        router.add("GET", "/api/v1/checkpoints/{id}/archive", fromMemory: { request, parameters in
            try api.cachedArchive(request, id: parameters["id"] ?? "")
        }) { request, parameters, _ in
            try api.archive(request, id: parameters["id"] ?? "")
        }
        router.add("GET", "/api/v1/checkpoints/{id}/findings") { request, parameters, _ in
            try api.findings(request, id: parameters["id"] ?? "")
        }
        router.add("POST", "/api/v1/checkpoints/{id}/preflight") { request, parameters, body in
            try api.preflight(request, id: parameters["id"] ?? "", body: body)
        }
        RetentionAPI(api: api).register(in: &router)
        ProvenanceAPI(api: api).register(in: &router)
        DiffAPI(api: api).register(in: &router)
        RegistryAPI(api: api).register(in: &router)
        WebPages(context: context, api: api).register(in: &router)
        return router
    }
}

/// Where a catalogued archive is stored, and what its response headers need.
struct ArchiveLocation: Sendable {
    var id: String
    /// The blob's local file, or nil when the blobs are in an object store.
    var path: String?
    var compression: String
    var containerName: String

    init(_ record: CheckpointRecord, in blobs: BlobStore) {
        id = record.id
        path = blobs.localPath(for: record.id)
        compression = record.compression
        containerName = record.containerName
    }
}

/// The handlers of `/api/v1/checkpoints`.
struct CheckpointAPI: Sendable {
    let context: FerryServiceContext
    var ingestor: Ingestor {
        var ingestor = Ingestor(catalog: context.catalog, blobs: context.blobs, maximumSize: context.maximumUploadSize)
        ingestor.liveUploads = context.liveUploads
        ingestor.signing = context.signing
        return ingestor
    }

    // MARK: Auth

    /// Checks the bearer token (or the web page's cookie) against the role a route needs. With no tokens
    /// configured every request passes: `ferry serve` only allows that on loopback.
    @discardableResult
    func authorize(_ request: HTTPRequest, _ needed: TokenRole) throws -> TokenIdentity? {
        guard !context.tokens.isEmpty else { return nil }
        let identity: TokenIdentity
        if let header = request.header("authorization") {
            guard let known = context.tokens.identity(forAuthorization: header) else {
                throw HTTPError(.unauthorized, "the bearer token is not valid")
            }
            identity = known
        } else if let session = WebPages.sessionCookie(request) {
            guard let known = context.sessions.identity(session) else {
                throw HTTPError(.unauthorized, "the sign-in has expired; sign in again")
            }
            identity = known
        } else {
            throw HTTPError(.unauthorized, "this endpoint needs a bearer token")
        }
        guard identity.role.allows(needed) else {
            throw HTTPError(.forbidden,
                "a \(identity.role.rawValue) token may not do this; it needs \(needed.rawValue)")
        }
        return identity
    }

    // MARK: Ingest

    func ingest(_ request: HTTPRequest, body: HTTPRequestBody?) throws -> HTTPResponse {
        // Node agents upload the checkpoints they take, so a node token may ingest too (as its own node only).
        let identity = try authorize(request, .read)
        if let identity, !identity.role.allows(.write) && identity.role != .node {
            throw HTTPError(.forbidden, "a \(identity.role.rawValue) token may not upload; it needs write")
        }
        if let type = request.header("content-type")?.lowercased(), !Self.acceptedContentTypes.contains(where: type.hasPrefix) {
            throw HTTPError(.unsupportedMediaType,
                "send the archive itself as the body, as application/x-tar, application/gzip, application/zstd or application/octet-stream (curl: -X POST -T FILE)")
        }
        guard let body else {
            throw HTTPError(.bodyRequired, "the request body must be the checkpoint archive")
        }
        if let length = body.declaredLength, length > context.maximumUploadSize {
            context.metrics.recordIngest(outcome: "rejected", seconds: 0, bytes: 0)
            throw HTTPError(.payloadTooLarge,
                "the archive is \(length) bytes; this server takes at most \(context.maximumUploadSize)")
        }
        var metadata = try Self.metadata(from: request)
        if let identity, identity.role == .node {
            if let node = metadata.sourceNode, node != identity.name {
                throw HTTPError(.forbidden, "a node token uploads for its own node (\(identity.name)) only")
            }
            metadata.sourceNode = identity.name
        }
        let result: IngestResult
        do {
            result = try ingestor.ingest(from: RequestBodySource(body: body), metadata: metadata)
        } catch let error as CheckpointError {
            context.metrics.recordIngest(outcome: "rejected", seconds: 0, bytes: 0)
            context.log("ingest rejected: \(error.code) after \(body.bytesReceived) bytes")
            throw HTTPError.archiveRejected(error)
        } catch is IngestLimitExceeded {
            context.metrics.recordIngest(outcome: "rejected", seconds: 0, bytes: 0)
            throw HTTPError(.payloadTooLarge,
                "the archive is larger than this server's limit of \(context.maximumUploadSize) bytes")
        } catch let error as CatalogError {
            context.metrics.recordIngest(outcome: "failed", seconds: 0, bytes: 0)
            context.log("ingest failed: \(error.code) \(error.underlying ?? "")")
            throw Self.httpError(error)
        } catch let error as HTTPError {
            context.metrics.recordIngest(outcome: "failed", seconds: 0, bytes: 0)
            context.log("ingest aborted: \(error.code) after \(body.bytesReceived) bytes")
            throw error
        }
        context.metrics.recordIngest(
            outcome: result.created ? "created" : "duplicate", seconds: result.seconds, bytes: result.record.size)
        context.layerDigests?.enqueue(result.record)
        context.retention?.trigger()
        context.log(
            "ingest \(result.created ? "created" : "duplicate") \(result.record.id.prefix(12)) \(result.record.size) bytes in \(String(format: "%.3f", result.seconds)) s by \(identity?.name ?? "anonymous")")
        let summary = try catalog { try context.catalog.summary(of: result.record.id) }
        var response = Self.jsonText(
            "{\"checkpoint\":\(summary),\"created\":\(result.created)}", status: result.created ? 201 : 200)
        response.headers.append(("Location", "/api/v1/checkpoints/\(result.record.id)"))
        response.headers.append(("Docker-Content-Digest", "sha256:\(result.record.id)"))
        return response
    }

    static let acceptedContentTypes = [
        "application/x-tar", "application/tar", "application/gzip", "application/x-gzip", "application/zstd",
        "application/x-zstd", "application/x-xz", "application/x-bzip2", "application/octet-stream",
    ]

    /// `?node=NAME&labels=k=v,k2=v2` (also `X-Ferry-Node` / `X-Ferry-Labels` headers).
    static func metadata(from request: HTTPRequest) throws -> IngestMetadata {
        var metadata = IngestMetadata()
        if let node = request.query["node"] ?? request.header("x-ferry-node"), !node.isEmpty {
            guard node.count <= 253, node.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }) else {
                throw HTTPError(.invalidNode, "a node name is letters, digits, '-', '.' and '_'")
            }
            metadata.sourceNode = node
        }
        if let text = request.query["labels"] ?? request.header("x-ferry-labels"), !text.isEmpty {
            metadata.labels = try parseLabels(text)
        }
        if let id = request.header("ferry-upload-id") {
            guard LiveUploads.isValidID(id) else {
                throw HTTPError(.invalidUploadID, "Ferry-Upload-ID is 1 to 128 letters, digits, '-', '.' and '_'")
            }
            metadata.uploadID = id
        }
        return metadata
    }

    static func parseLabels(_ text: String) throws -> [String: String] {
        var labels: [String: String] = [:]
        // Split on the scalars ',' and '=', not on Characters: a combining mark after '=' would fuse with it into one
        // grapheme and hide the separator.
        for pairScalars in text.unicodeScalars.split(separator: ",") {
            let parts = pairScalars.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                .map { String(String.UnicodeScalarView($0)) }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            guard parts.count == 2, !key.isEmpty, key.count <= 63, labels.count < 64,
                  key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._/".contains($0)) }), parts[1].unicodeScalars.count <= 256
            else {
                throw HTTPError(.invalidLabels,
                    "labels are key=value pairs separated by commas; keys are letters, digits, '-', '.', '_', '/'")
            }
            labels[key] = String(parts[1])
        }
        return labels
    }

    // MARK: Read

    /// The list from the cache, on the worker thread; nil when it must be read from the catalog (`list`).
    func cachedList(_ request: HTTPRequest) throws -> HTTPResponse? {
        try authorize(request, .read)
        let key = GenerationCache<[UInt8]>.key(request.query)
        return context.listCache.value(for: key, generation: context.catalog.generation).map(Self.listResponse)
    }

    /// The list read from the catalog (the route tried `cachedList` first), and cached.
    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        try authorize(request, .read)
        // Read before the query: a write that lands meanwhile makes this entry stale, never a stale one current.
        let generation = context.catalog.generation
        let query = try Self.query(from: request)
        let page = try catalog { try context.catalog.summaries(query) }
        // The summaries come out of SQLite as JSON text (the checkpoint_summary view); they are joined, not re-encoded.
        let next = page.nextCursor.map { "\"\($0)\"" } ?? "null"  // base64url: nothing to escape
        let body = Array("{\"items\":[\(page.items.joined(separator: ","))],\"next_cursor\":\(next),\"total\":\(page.total),\"total_exact\":\(page.totalExact)}".utf8)
        context.listCache.store(body, for: GenerationCache<[UInt8]>.key(request.query), generation: generation)
        return Self.listResponse(body)
    }

    static func listResponse(_ body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: .bytes(body))
    }

    static func query(from request: HTTPRequest) throws -> CheckpointQuery {
        var query = CheckpointQuery()
        let parameters = request.query
        query.namespace = parameters["namespace"]
        query.pod = parameters["pod"]
        query.container = parameters["container"]
        query.engine = parameters["engine"]
        query.node = parameters["node"]
        query.image = parameters["image"]
        if let state = parameters["validation"] {
            guard ["clean", "warnings", "errors", "unknown"].contains(state) else {
                throw HTTPError(.invalidQuery, "validation is clean, warnings, errors or unknown")
            }
            query.validationState = state
        }
        query.uploadedAfter = parameters["uploaded_after"]
        query.uploadedBefore = parameters["uploaded_before"]
        query.text = parameters["q"]
        query.cursor = parameters["cursor"].flatMap { $0.isEmpty ? nil : $0 }
        if let labels = parameters["label"] ?? parameters["labels"] { query.labels = try parseLabels(labels) }
        if let sort = parameters["sort"] {
            guard let key = CheckpointQuery.SortKey(rawValue: sort) else {
                throw HTTPError(.invalidQuery,
                    "sort is one of \(CheckpointQuery.SortKey.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            query.sort = key
        }
        if let order = parameters["order"] {
            guard order == "asc" || order == "desc" else {
                throw HTTPError(.invalidQuery, "order is asc or desc")
            }
            query.descending = order == "desc"
        }
        if let limit = parameters["limit"] {
            guard let value = Int(limit), (1...CheckpointQuery.maximumLimit).contains(value) else {
                throw HTTPError(.invalidQuery, "limit is a number from 1 to \(CheckpointQuery.maximumLimit)")
            }
            query.limit = value
        }
        return query
    }

    func detail(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        let identity = try authorize(request, .read)
        let record = try catalog { try context.catalog.checkpoint(id) }
        // The inspection is stored as JSON text; splice it in rather than decode and re-encode it.
        let summary = try catalog { try context.catalog.summary(of: record.id) }
        let findings = try JSONEncoder.api.encode(try catalog { try context.catalog.findings(of: record.id) })
        var body = Array("{\"checkpoint\":".utf8) + Array(summary.utf8)
        body += Array(",\"findings\":".utf8) + Array(findings)
        // What preflight judges a target by (CheckpointFacts; no secret values in it), null for old rows.
        body += Array(",\"facts\":".utf8) + Array((record.facts ?? "null").utf8)
        let pin = try catalog { try context.catalog.pin(of: record.id) }
        body += Array(",\"pin\":".utf8) + Array(try JSONEncoder.api.encode(pin))
        var inspection = try catalog { try context.catalog.inspection(of: record.id) }
        if !SecretRedaction.allowsSecrets(identity, tokensConfigured: !context.tokens.isEmpty) {
            inspection = SecretRedaction.redactedInspection(inspection)
        }
        body += Array(",\"inspection\":".utf8) + Array(inspection.utf8) + Array("}".utf8)
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: .bytes(body))
    }

    /// The archive from a known location, on the worker thread; nil when the catalog must be asked (not cached,
    /// or the file is gone, which the catalog path reports as BLOB_MISSING).
    func cachedArchive(_ request: HTTPRequest, id: String) throws -> HTTPResponse? {
        try authorize(request, .read)
        guard let location = context.archiveLocations.value(for: id, generation: context.catalog.generation),
              let path = location.path, access(path, F_OK) == 0 else { return nil }
        return archive(request, at: location)
    }

    func archive(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        try authorize(request, .read)
        let generation = context.catalog.generation
        let record = try catalog { try context.catalog.checkpoint(id) }
        guard context.blobs.contains(record.id) else {
            throw HTTPError(.blobMissing,
                            "the catalog has checkpoint \(record.id.prefix(12)) but its archive is gone from the store; upload the same archive again to restore it")
        }
        let location = ArchiveLocation(record, in: context.blobs)
        context.archiveLocations.store(location, for: id, generation: generation)
        return archive(request, at: location)
    }

    private func archive(_ request: HTTPRequest, at location: ArchiveLocation) -> HTTPResponse {
        let filename = "\(location.containerName)-\(location.id.prefix(12)).\(Self.extensionFor(location.compression))"
        return BlobResponse.make(
            context.blobs, digest: location.id, path: location.path, request: request, etag: "\"sha256:\(location.id)\"",
            contentType: Self.contentType(location.compression),
            extraHeaders: [
                ("Docker-Content-Digest", "sha256:\(location.id)"),
                ("Digest", "sha-256=\(Self.base64(hex: location.id))"),
                ("Content-Disposition", "attachment; filename=\"\(filename)\""),
            ])
    }

    func findings(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        try authorize(request, .read)
        let record = try catalog { try context.catalog.checkpoint(id) }
        let findings = try catalog { try context.catalog.findings(of: record.id) }
        return .json(["checkpoint": AnyEncodable(record.id), "validation_state": AnyEncodable(record.validationState),
                      "findings": AnyEncodable(findings)])
    }

    /// Checks a catalogued checkpoint against a target node's facts, given inline.
    func preflight(_ request: HTTPRequest, id: String, body: HTTPRequestBody?) throws -> HTTPResponse {
        try authorize(request, .read)
        let record = try catalog { try context.catalog.checkpoint(id) }
        guard let body else {
            throw HTTPError(.bodyRequired, "send {\"target\": {…facts…}, \"options\": {…}}")
        }
        let bytes = try body.readAll(maximumBytes: 1 << 20)
        let input: PreflightRequest
        do {
            input = try JSONDecoder().decode(PreflightRequest.self, from: Data(bytes))
        } catch {
            throw HTTPError(.invalidPreflight, "the body must be {\"target\": TargetFacts | \"node\": NAME, \"options\": RestoreOptions}: \(error)")
        }
        guard let factsText = record.facts,
              let facts = try? JSONDecoder().decode(CheckpointFacts.self, from: Data(factsText.utf8))
        else {
            throw HTTPError(.factsMissing, "this checkpoint was catalogued before validation existed; upload it again")
        }
        let target: TargetFacts
        switch (input.target, input.node) {
        case (let inline?, nil):
            target = inline
        case (nil, let name?):
            guard let node = try catalog({ try context.catalog.node(name) }) else {
                throw HTTPError(.nodeNotFound, "no node \(name.prefix(80)) has registered")
            }
            target = (try? JSONDecoder().decode(TargetFacts.self, from: Data(node.facts.utf8))) ?? TargetFacts()
        default:
            throw HTTPError(.invalidPreflight, "give the target's facts (target) or a registered node (node), not both")
        }
        var findings = Preflight.findings(checkpoint: facts, target: target, options: input.options ?? RestoreOptions())
        // The archive's own error findings block a restore anywhere.
        let archiveErrors = try catalog { try context.catalog.findings(of: record.id) }.filter { $0.severity == "error" }
        findings += archiveErrors.map {
            Finding(code: $0.code, severity: .error, path: $0.path, message: $0.message, waiver: $0.waiver)
        }
        return .json(PreflightResponse(
            checkpoint: record.id, restorable: !findings.contains { $0.severity == .error }, findings: findings))
    }

    func delete(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        let identity = try authorize(request, .write)
        let record = try catalog { try context.catalog.checkpoint(id) }
        // The row and the blob go together: an upload of the same bytes waits, or comes wholly after.
        let reason = request.query["reason"].flatMap { $0.isEmpty ? nil : String($0.prefix(500)) } ?? "deleted through the API"
        let cause = DeletionCause(by: identity?.name ?? "anonymous", reason: reason)
        try catalog {
            try CheckpointDeletion.delete(record.id, cause: cause, catalog: context.catalog, blobs: context.blobs, reserve: context.reserve)
        }
        context.log("deleted \(record.id.prefix(12)) by \(identity?.name ?? "anonymous")")
        return HTTPResponse(status: 204, headers: [], body: .empty)
    }

    // MARK: Health and metrics

    func ready() -> HTTPResponse {
        do {
            _ = try context.catalog.totals()
            guard access(context.blobs.root, W_OK) == 0 else {
                throw HTTPError(.notReady, "the data directory is not writable")
            }
            if let free = context.blobs.freeBytes(), free < context.minimumFreeBytes {
                throw HTTPError(.lowDiskSpace,
                                "\(free) bytes free in the data directory, below the \(context.minimumFreeBytes) the service needs (--min-free-space)")
            }
            return .json(["status": "ready"])
        } catch let error as HTTPError {
            return .error(error)
        } catch {
            return .error(HTTPError(.notReady, "the catalog cannot be read"))
        }
    }

    func metrics(_ request: HTTPRequest) throws -> HTTPResponse {
        try authorize(request, .read)
        var text = ""
        if let http = context.httpStatistics() { text += Self.prometheusText(http) }
        text += context.metrics.prometheusText()
        text += context.retention?.prometheusText() ?? ""
        let totals = try catalog { try context.catalog.totals() }
        text += "# HELP ferry_catalog_checkpoints Checkpoints in the catalog.\n# TYPE ferry_catalog_checkpoints gauge\n"
        text += "ferry_catalog_checkpoints \(totals.count)\n"
        text += "# HELP ferry_catalog_bytes Stored bytes of the catalogued archives.\n# TYPE ferry_catalog_bytes gauge\n"
        text += "ferry_catalog_bytes \(totals.bytes)\n"
        // Read from the marks, so the gauge falls as soon as an upload makes a row whole again.
        let missing = try catalog { try context.catalog.rowsMissingBlob().count }
        text += "# HELP ferry_store_rows_without_blob Catalog rows whose blob the start-up check found missing (until uploaded again).\n"
        text += "# TYPE ferry_store_rows_without_blob gauge\nferry_store_rows_without_blob \(missing)\n"
        if let free = context.blobs.freeBytes() {
            text += "# HELP ferry_storage_free_bytes Free bytes on the data directory's file system.\n# TYPE ferry_storage_free_bytes gauge\n"
            text += "ferry_storage_free_bytes \(free)\n"
        }
        return HTTPResponse(
            status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: .bytes(Array(text.utf8)))
    }

    // MARK: Helpers

    /// A response whose body is JSON text already.
    static func jsonText(_ text: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: .bytes(Array(text.utf8)))
    }

    /// The HTTP layer's counters in Prometheus text format.
    static func prometheusText(_ http: HTTPStatistics) -> String {
        var out = "# HELP ferry_http_requests_total Requests answered, by status class.\n# TYPE ferry_http_requests_total counter\n"
        for (label, value) in [("1xx", http.informational), ("2xx", http.successful), ("3xx", http.redirection),
                               ("4xx", http.clientErrors), ("5xx", http.serverErrors)] {
            out += "ferry_http_requests_total{code=\"\(label)\"} \(value)\n"
        }
        out += "# HELP ferry_http_requests_aborted_total Requests whose client went away.\n# TYPE ferry_http_requests_aborted_total counter\n"
        out += "ferry_http_requests_aborted_total \(http.aborted)\n"
        out += "# HELP ferry_http_received_bytes_total Request body bytes received.\n# TYPE ferry_http_received_bytes_total counter\n"
        out += "ferry_http_received_bytes_total \(http.bytesIn)\n"
        out += "# HELP ferry_http_sent_bytes_total Response body bytes sent.\n# TYPE ferry_http_sent_bytes_total counter\n"
        out += "ferry_http_sent_bytes_total \(http.bytesOut)\n"
        out += "# HELP ferry_http_requests_in_flight Requests being handled.\n# TYPE ferry_http_requests_in_flight gauge\n"
        out += "ferry_http_requests_in_flight \(http.inFlight)\n"
        out += "# HELP ferry_http_handler_threads_total Requests answered on a thread of their own rather than from memory on a worker thread.\n# TYPE ferry_http_handler_threads_total counter\n"
        out += "ferry_http_handler_threads_total \(http.handlerThreads)\n"
        return out
    }

    /// Runs a catalog call, turning its errors into HTTP errors.
    func catalog<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as CatalogError {
            if error.code == .databaseFailed || error.code == .storageFailed {
                context.log("catalog error: \(error.code) \(error.underlying ?? "")")
            }
            throw Self.httpError(error)
        }
    }

    static func httpError(_ error: CatalogError) -> HTTPError {
        HTTPError(ServiceErrorCode.of(error.code), error.message)
    }

    static func contentType(_ compression: String) -> String {
        switch compression {
        case "gzip": "application/gzip"
        case "zstd": "application/zstd"
        case "xz": "application/x-xz"
        case "bzip2": "application/x-bzip2"
        default: "application/x-tar"
        }
    }

    static func extensionFor(_ compression: String) -> String {
        switch compression {
        case "gzip": "tar.gz"
        case "zstd": "tar.zst"
        case "xz": "tar.xz"
        case "bzip2": "tar.bz2"
        default: "tar"
        }
    }

    /// RFC 3230 `Digest` wants base64 of the raw digest bytes.
    static func base64(hex: String) -> String {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return Data(bytes).base64EncodedString()
    }
}

/// The request body as a ``ByteSource`` for the archive reader.
final class RequestBodySource: ByteSource {
    private let body: HTTPRequestBody
    init(body: HTTPRequestBody) { self.body = body }
    func nextChunk() throws -> UnsafeRawBufferPointer { try body.nextChunk() }
}

extension JSONEncoder {
    /// Deterministic key order for API responses.
    static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// Type erasure for small mixed JSON objects.
struct AnyEncodable: Encodable {
    private let encodeValue: (any Encoder) throws -> Void
    init(_ value: some Encodable) { encodeValue = value.encode }
    func encode(to encoder: any Encoder) throws { try encodeValue(encoder) }
}
