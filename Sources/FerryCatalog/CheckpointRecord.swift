internal import GRDB

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

/// A `checkpoint` row for GRDB. The wrapper keeps GRDB an implementation detail: the public record type has no
/// database conformances, so users of the catalog need not import GRDB.
struct CheckpointRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "checkpoint"
    var record: CheckpointRecord

    init(_ record: CheckpointRecord) { self.record = record }
    init(from decoder: any Decoder) throws { record = try CheckpointRecord(from: decoder) }
    func encode(to encoder: any Encoder) throws { try record.encode(to: encoder) }
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

/// A `finding` row.
struct FindingRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "finding"
    var checkpointID: String
    var code: String
    var severity: String
    var path: String?
    var message: String
    var waiver: String?

    enum CodingKeys: String, CodingKey {
        case code, severity, path, message, waiver
        case checkpointID = "checkpoint_id"
    }

    var record: FindingRecord { FindingRecord(code: code, severity: severity, path: path, message: message, waiver: waiver) }
}
