import FerryCatalog

/// A catalogued checkpoint as the API lists it (the catalog row without the inspection).
struct CheckpointSummary: Encodable, Sendable {
    struct Container: Encodable, Sendable {
        var id: String
        var name: String
    }

    struct Pod: Encodable, Sendable {
        var name: String?
        var namespace: String?
        var uid: String?
        var sandboxID: String?
        enum CodingKeys: String, CodingKey {
            case name, namespace, uid
            case sandboxID = "sandbox_id"
        }
    }

    struct Links: Encodable, Sendable {
        var selfLink: String
        var archive: String
        var page: String
        enum CodingKeys: String, CodingKey {
            case archive, page
            case selfLink = "self"
        }
    }

    var id: String
    var digest: String
    var size: Int64
    var compression: String
    var engine: String
    var container: Container
    var pod: Pod
    var image: String?
    var imageID: String?
    var runtime: String?
    var created: String?
    var checkpointed: String?
    var architecture: String?
    var ipAddresses: [String]
    var macAddresses: [String]
    var checkpointSize: Int64
    var memoryPagesSize: Int64
    var rootfsDiffSize: Int64?
    var processCount: Int
    var sourceNode: String?
    var labels: [String: String]
    var uploadedAt: String
    var links: Links

    enum CodingKeys: String, CodingKey {
        case id, digest, size, compression, engine, container, pod, image, runtime, created, checkpointed
        case architecture, labels, links
        case imageID = "image_id"
        case ipAddresses = "ip_addresses"
        case macAddresses = "mac_addresses"
        case checkpointSize = "checkpoint_size"
        case memoryPagesSize = "memory_pages_size"
        case rootfsDiffSize = "rootfs_diff_size"
        case processCount = "process_count"
        case sourceNode = "source_node"
        case uploadedAt = "uploaded_at"
    }

    init(_ record: CheckpointRecord) {
        id = record.id
        digest = "sha256:" + record.id
        size = record.size
        compression = record.compression
        engine = record.engine
        container = Container(id: record.containerID, name: record.containerName)
        pod = Pod(name: record.podName, namespace: record.podNamespace, uid: record.podUID, sandboxID: record.sandboxID)
        image = record.image
        imageID = record.imageID
        runtime = record.runtime
        created = record.created
        checkpointed = record.checkpointed
        architecture = record.architecture
        ipAddresses = record.ipAddresses
        macAddresses = record.macAddresses
        checkpointSize = record.checkpointSize
        memoryPagesSize = record.memoryPagesSize
        rootfsDiffSize = record.rootfsDiffSize
        processCount = record.processCount
        sourceNode = record.sourceNode
        labels = record.labels
        uploadedAt = record.uploadedAt
        links = Links(
            selfLink: "/api/v1/checkpoints/\(record.id)",
            archive: "/api/v1/checkpoints/\(record.id)/archive",
            page: "/checkpoints/\(record.id)")
    }
}

/// `GET /api/v1/checkpoints`.
struct CheckpointList: Encodable, Sendable {
    var items: [CheckpointSummary]
    var nextCursor: String?
    var total: Int
    enum CodingKeys: String, CodingKey {
        case items, total
        case nextCursor = "next_cursor"
    }
}

/// `POST /api/v1/checkpoints`.
struct IngestResponse: Encodable, Sendable {
    var checkpoint: CheckpointSummary
    var created: Bool
}
