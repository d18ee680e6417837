/// `POST /api/v1/nodes/{node}/checkpoints` (client → service): checkpoint a container through its node's agent and
/// catalogue the archive, without moving it (the forensic use of the kubelet's checkpoint API, for every driver).
public struct NodeCheckpointRequest: Codable, Sendable, Equatable {
    /// The container's name or ID on the node (`NAMESPACE/POD/CONTAINER` on a kubelet node).
    public var container: String
    /// Keep the container running (Podman's `--leave-running`; the kubelet always does).
    public var leaveRunning: Bool?
    public var tcpEstablished: Bool?
    /// `zstd` (default), `gzip` or `none`.
    public var compress: String?
    /// Labels the checkpoint is catalogued with.
    public var labels: [String: String]?

    enum CodingKeys: String, CodingKey {
        case container, compress, labels
        case leaveRunning = "leave_running"
        case tcpEstablished = "tcp_established"
    }

    public init(container: String, leaveRunning: Bool? = nil, tcpEstablished: Bool? = nil, compress: String? = nil,
                labels: [String: String]? = nil) {
        self.container = container
        self.leaveRunning = leaveRunning
        self.tcpEstablished = tcpEstablished
        self.compress = compress
        self.labels = labels
    }
}

/// A checkpoint taken on a node, as `POST` (202) and `GET /api/v1/nodes/{node}/checkpoints/{job}` answer it.
public struct NodeCheckpointView: Codable, Sendable, Equatable {
    public var job: String
    public var node: String
    public var container: String?
    /// The agent's job state: `checkpointing`, `uploading`, then `succeeded` or `failed`.
    public var state: AgentJobState
    /// The catalogued checkpoint's ID, once `succeeded`.
    public var checkpoint: String?
    /// Whether the container still runs on the node after the checkpoint (nil: not known yet).
    public var containerRunning: Bool?
    public var error: JobFailure?

    enum CodingKeys: String, CodingKey {
        case job, node, container, state, checkpoint, error
        case containerRunning = "container_running"
    }

    public init(job: String, node: String, container: String?, state: AgentJobState, checkpoint: String?,
                containerRunning: Bool?, error: JobFailure?) {
        self.job = job
        self.node = node
        self.container = container
        self.state = state
        self.checkpoint = checkpoint
        self.containerRunning = containerRunning
        self.error = error
    }

    public init(_ status: AgentJobStatus, node: String) {
        self.init(job: status.id, node: node, container: status.container, state: status.state,
                  checkpoint: status.checkpoint, containerRunning: status.containerRunning, error: status.error)
    }
}

/// How agents and the service name a container on a node.
public enum ContainerReference {
    /// A container name or ID (letters, digits, `_`, `.`, `-`, starting with a letter or digit, at most 253), or a
    /// Kubernetes container as `NAMESPACE/POD/CONTAINER` of three such parts (the kubelet driver's).
    public static func isValid(_ name: String) -> Bool {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 3 else { return false }
        return parts.allSatisfy { part in
            guard let first = part.first, first.isASCII, first.isLetter || first.isNumber, part.utf8.count <= 253 else { return false }
            return part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        }
    }
}
