internal import Foundation

/// One catalogued checkpoint archive: a row of the `checkpoint` table. The `id` is the SHA-256 of the archive's
/// bytes, so the same archive uploaded twice is one row.
public struct CheckpointRecord: Codable, Sendable, Equatable {

    public var id: String
    public var size: Int64
    public var compression: String
    public var engine: String
    public var containerID: String
    public var containerName: String
    public var podName: String?
    public var podNamespace: String?
    public var podUID: String?
    public var sandboxID: String?
    public var image: String?
    public var imageID: String?
    public var runtime: String?
    public var created: String?
    public var checkpointed: String?
    public var architecture: String?
    public var ipAddresses: [String]
    public var macAddresses: [String]
    public var checkpointSize: Int64
    public var memoryPagesSize: Int64
    public var rootfsDiffSize: Int64?
    public var processCount: Int
    public var sourceNode: String?
    public var labels: [String: String]
    public var uploadedAt: String
    /// Lowercased text the free-text filter searches.
    public var searchText: String
    /// `clean`, `warnings`, `errors`, or `unknown` for rows catalogued before validation existed.
    public var validationState: String = "unknown"
    /// What target preflight needs from the archive, as JSON (FerryValidation's `CheckpointFacts`).
    public var facts: String?
    /// The registry repository the checkpoint is pulled from as an image (``OCIName/repository(for:)``).
    public var ociRepository: String?
    /// `sha256:…` of the archive's uncompressed tar (the image config's diff_id), once the registry needed it.
    public var uncompressedDigest: String?
    /// For a checkpoint ingested as a saved checkpoint image: `{"format", "reference", "annotations"}` as JSON.
    public var sourceImage: String?

    enum CodingKeys: String, CodingKey {
        case id, size, compression, engine, image, runtime, created, checkpointed, architecture, labels
        case containerID = "container_id"
        case containerName = "container_name"
        case podName = "pod_name"
        case podNamespace = "pod_namespace"
        case podUID = "pod_uid"
        case sandboxID = "sandbox_id"
        case imageID = "image_id"
        case ipAddresses = "ip_addresses"
        case macAddresses = "mac_addresses"
        case checkpointSize = "checkpoint_size"
        case memoryPagesSize = "memory_pages_size"
        case rootfsDiffSize = "rootfs_diff_size"
        case processCount = "process_count"
        case sourceNode = "source_node"
        case uploadedAt = "uploaded_at"
        case searchText = "search_text"
        case validationState = "validation_state"
        case facts
        case ociRepository = "oci_repository"
        case uncompressedDigest = "uncompressed_digest"
        case sourceImage = "source_image"
    }

    public init(
        id: String, size: Int64, compression: String, engine: String, containerID: String, containerName: String,
        podName: String? = nil, podNamespace: String? = nil, podUID: String? = nil, sandboxID: String? = nil,
        image: String? = nil, imageID: String? = nil, runtime: String? = nil, created: String? = nil,
        checkpointed: String? = nil, architecture: String? = nil, ipAddresses: [String] = [],
        macAddresses: [String] = [], checkpointSize: Int64, memoryPagesSize: Int64, rootfsDiffSize: Int64? = nil,
        processCount: Int, sourceNode: String? = nil, labels: [String: String] = [:], uploadedAt: String
    ) {
        self.id = id
        self.size = size
        self.compression = compression
        self.engine = engine
        self.containerID = containerID
        self.containerName = containerName
        self.podName = podName
        self.podNamespace = podNamespace
        self.podUID = podUID
        self.sandboxID = sandboxID
        self.image = image
        self.imageID = imageID
        self.runtime = runtime
        self.created = created
        self.checkpointed = checkpointed
        self.architecture = architecture
        self.ipAddresses = ipAddresses
        self.macAddresses = macAddresses
        self.checkpointSize = checkpointSize
        self.memoryPagesSize = memoryPagesSize
        self.rootfsDiffSize = rootfsDiffSize
        self.processCount = processCount
        self.sourceNode = sourceNode
        self.labels = labels
        self.uploadedAt = uploadedAt
        self.searchText = ""
        self.searchText = Self.searchText(for: self)
        self.ociRepository = OCIName.repository(containerName: containerName, podName: podName, podNamespace: podNamespace)
    }

    /// The text the free-text filter matches: names, IDs, pod, image, node, engine and labels, lowercased.
    static func searchText(for record: CheckpointRecord) -> String {
        var parts = [record.containerName, record.containerID, record.engine]
        parts += [record.podName, record.podNamespace, record.image, record.sourceNode].compactMap { $0 }
        parts += record.ipAddresses
        parts += record.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return parts.joined(separator: " ").lowercased()
    }
}

extension CheckpointRecord {
    /// The columns of a `checkpoint` row, as `insert` writes them.
    static let columns = [
        "id", "size", "compression", "engine", "container_id", "container_name", "pod_name", "pod_namespace", "pod_uid",
        "sandbox_id", "image", "image_id", "runtime", "created", "checkpointed", "architecture", "ip_addresses",
        "mac_addresses", "checkpoint_size", "memory_pages_size", "rootfs_diff_size", "process_count", "source_node",
        "labels", "uploaded_at", "search_text", "validation_state", "facts", "oci_repository", "uncompressed_digest",
        "source_image",
    ]

    /// A `checkpoint` row read back (arrays and labels are stored as JSON text).
    init(row: SQLRow) throws {
        self.init(
            id: try row("id"), size: try row("size"), compression: try row("compression"), engine: try row("engine"),
            containerID: try row("container_id"), containerName: try row("container_name"), podName: try row("pod_name"),
            podNamespace: try row("pod_namespace"), podUID: try row("pod_uid"), sandboxID: try row("sandbox_id"),
            image: try row("image"), imageID: try row("image_id"), runtime: try row("runtime"), created: try row("created"),
            checkpointed: try row("checkpointed"), architecture: try row("architecture"),
            ipAddresses: try row.json("ip_addresses"), macAddresses: try row.json("mac_addresses"),
            checkpointSize: try row("checkpoint_size"), memoryPagesSize: try row("memory_pages_size"),
            rootfsDiffSize: try row("rootfs_diff_size"), processCount: try row("process_count"),
            sourceNode: try row("source_node"), labels: try row.json("labels"), uploadedAt: try row("uploaded_at"))
        searchText = try row("search_text")
        validationState = try row("validation_state")
        facts = try row("facts")
        ociRepository = try row("oci_repository")
        uncompressedDigest = try row("uncompressed_digest")
        sourceImage = try row("source_image")
    }

    /// Inserts this record as a `checkpoint` row.
    func insert(_ db: any SQLConnection) throws {
        try db.insert(into: "checkpoint", columns: Self.columns, values: [
            id, size, compression, engine, containerID, containerName, podName, podNamespace, podUID, sandboxID, image,
            imageID, runtime, created, checkpointed, architecture, try Self.json(ipAddresses), try Self.json(macAddresses),
            checkpointSize, memoryPagesSize, rootfsDiffSize, processCount, sourceNode, try Self.json(labels), uploadedAt,
            searchText, validationState, facts, ociRepository, uncompressedDigest, sourceImage,
        ])
    }

    /// The stored JSON text of an array or the labels (keys sorted, so equal values are equal text).
    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// One finding of a checkpoint, as stored (FerryValidation's `Finding` without the type dependency).
public struct FindingRecord: Codable, Sendable, Equatable {
    public var code: String
    public var severity: String
    public var path: String?
    public var message: String
    public var waiver: String?

    public init(code: String, severity: String, path: String?, message: String, waiver: String?) {
        self.code = code
        self.severity = severity
        self.path = path
        self.message = message
        self.waiver = waiver
    }
}
