import Foundation

/// Retention policies with the checkpoint-restore-operator's field names (`CheckpointRestoreOperator.spec`): a
/// global policy, and namespace, pod and container policies of which the most specific that matches a checkpoint
/// governs it. A Podman checkpoint has an empty namespace and pod.
///
/// Unlike the operator, a limit left out is no limit (the operator fills in 10/20/30 checkpoints per
/// container/pod/namespace), and 0 or a negative number is refused rather than turning the level off.
public struct RetentionPolicies: Codable, Sendable, Equatable {
    public struct Global: Codable, Sendable, Equatable {
        public var retainOrphan: Bool?
        public var maxCheckpointsPerNamespace: Int?
        public var maxCheckpointsPerPod: Int?
        public var maxCheckpointsPerContainer: Int?
        public var maxCheckpointSize: ByteQuantity?
        public var maxTotalSizePerNamespace: ByteQuantity?
        public var maxTotalSizePerPod: ByteQuantity?
        public var maxTotalSizePerContainer: ByteQuantity?

        public init(retainOrphan: Bool? = nil, maxCheckpointsPerNamespace: Int? = nil, maxCheckpointsPerPod: Int? = nil,
                    maxCheckpointsPerContainer: Int? = nil, maxCheckpointSize: ByteQuantity? = nil,
                    maxTotalSizePerNamespace: ByteQuantity? = nil, maxTotalSizePerPod: ByteQuantity? = nil,
                    maxTotalSizePerContainer: ByteQuantity? = nil) {
            self.retainOrphan = retainOrphan
            self.maxCheckpointsPerNamespace = maxCheckpointsPerNamespace
            self.maxCheckpointsPerPod = maxCheckpointsPerPod
            self.maxCheckpointsPerContainer = maxCheckpointsPerContainer
            self.maxCheckpointSize = maxCheckpointSize
            self.maxTotalSizePerNamespace = maxTotalSizePerNamespace
            self.maxTotalSizePerPod = maxTotalSizePerPod
            self.maxTotalSizePerContainer = maxTotalSizePerContainer
        }
    }

    /// A namespace policy (`namespace`), pod policy (`namespace`, `pod`) or container policy (all three).
    public struct Scoped: Codable, Sendable, Equatable {
        public var namespace: String
        public var pod: String?
        public var container: String?
        public var retainOrphan: Bool?
        public var maxCheckpoints: Int?
        public var maxCheckpointSize: ByteQuantity?
        public var maxTotalSize: ByteQuantity?

        public init(namespace: String, pod: String? = nil, container: String? = nil, retainOrphan: Bool? = nil,
                    maxCheckpoints: Int? = nil, maxCheckpointSize: ByteQuantity? = nil, maxTotalSize: ByteQuantity? = nil) {
            self.namespace = namespace
            self.pod = pod
            self.container = container
            self.retainOrphan = retainOrphan
            self.maxCheckpoints = maxCheckpoints
            self.maxCheckpointSize = maxCheckpointSize
            self.maxTotalSize = maxTotalSize
        }
    }

    /// Whether the service applies the policies as soon as it starts; otherwise first after the next upload or
    /// timer tick (the operator's field: there, on a policy change rather than the next checkpoint).
    public var applyPoliciesImmediately: Bool?
    public var globalPolicy: Global?
    public var namespacePolicies: [Scoped]?
    public var podPolicies: [Scoped]?
    public var containerPolicies: [Scoped]?

    public init(applyPoliciesImmediately: Bool? = nil, globalPolicy: Global? = nil, namespacePolicies: [Scoped]? = nil,
                podPolicies: [Scoped]? = nil, containerPolicies: [Scoped]? = nil) {
        self.applyPoliciesImmediately = applyPoliciesImmediately
        self.globalPolicy = globalPolicy
        self.namespacePolicies = namespacePolicies
        self.podPolicies = podPolicies
        self.containerPolicies = containerPolicies
    }
}

/// A size in bytes, written as a number of bytes or a Kubernetes quantity (`10Gi`, `500Mi`, `2G`, `1.5Ki`),
/// as the operator's `resource.Quantity` fields are. Encoded as a number of bytes.
public struct ByteQuantity: Codable, Sendable, Equatable, Comparable, CustomStringConvertible {
    public var bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }

    public init?(parsing text: String) {
        let units: [(String, Double)] = [
            ("Ki", 0x1p10), ("Mi", 0x1p20), ("Gi", 0x1p30), ("Ti", 0x1p40), ("Pi", 0x1p50), ("Ei", 0x1p60),
            ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18),
        ]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var number = trimmed
        var factor = 1.0
        for (suffix, value) in units where trimmed.hasSuffix(suffix) {
            number = String(trimmed.dropLast(suffix.count))
            factor = value
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number), value.isFinite else { return nil }
        let total = value * factor
        guard total < 9.2e18 else { return nil }
        bytes = Int64(total.rounded(.up))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            bytes = number
        } else if let text = try? container.decode(String.self), let parsed = ByteQuantity(parsing: text) {
            bytes = parsed.bytes
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "a size is a number of bytes or a quantity such as 10Gi or 500M")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(bytes)
    }

    public static func < (lhs: ByteQuantity, rhs: ByteQuantity) -> Bool { lhs.bytes < rhs.bytes }
    public var description: String { "\(bytes) bytes" }
}

/// One checkpoint a retention run deletes (or, dry, would delete), and why.
public struct RetentionDeletion: Codable, Sendable, Equatable {
    public var checkpoint: String
    public var container: String
    public var pod: String
    public var namespace: String
    public var size: Int64
    public var uploadedAt: String
    /// The policy that decided: `globalPolicy`, `namespacePolicies[0]`, `podPolicies[1]`, `containerPolicies[2]`.
    public var policy: String
    /// `maxCheckpoints`, `maxCheckpointSize`, `maxTotalSize` or `retainOrphan`, and the numbers.
    public var reason: String

    public init(checkpoint: String, container: String, pod: String, namespace: String, size: Int64, uploadedAt: String,
                policy: String, reason: String) {
        self.checkpoint = checkpoint
        self.container = container
        self.pod = pod
        self.namespace = namespace
        self.size = size
        self.uploadedAt = uploadedAt
        self.policy = policy
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case checkpoint, container, pod, namespace, size, policy, reason
        case uploadedAt = "uploaded_at"
    }
}

/// A limit that deleting every deletable checkpoint could not meet: the pinned or in-use checkpoints that block it.
public struct RetentionBlock: Codable, Sendable, Equatable {
    /// `container NS/POD/CONTAINER`, `pod NS/POD` or `namespace NS`, under `policy`.
    public var scope: String
    public var policy: String
    /// `maxCheckpoints` or `maxTotalSize`.
    public var limit: String
    public var limitValue: Int64
    /// What remains: checkpoints or bytes.
    public var remaining: Int64
    public var blocking: [String]

    public init(scope: String, policy: String, limit: String, limitValue: Int64, remaining: Int64, blocking: [String]) {
        self.scope = scope
        self.policy = policy
        self.limit = limit
        self.limitValue = limitValue
        self.remaining = remaining
        self.blocking = blocking
    }

    enum CodingKeys: String, CodingKey {
        case scope, policy, limit, remaining, blocking
        case limitValue = "limit_value"
    }
}

/// `POST /api/v1/gc[?dry_run=true]`'s answer.
public struct RetentionResult: Codable, Sendable, Equatable {
    public var dryRun: Bool
    public var deleted: [RetentionDeletion]
    public var blocked: [RetentionBlock]

    public init(dryRun: Bool, deleted: [RetentionDeletion], blocked: [RetentionBlock]) {
        self.dryRun = dryRun
        self.deleted = deleted
        self.blocked = blocked
    }

    enum CodingKeys: String, CodingKey {
        case deleted, blocked
        case dryRun = "dry_run"
    }
}

/// `PUT /api/v1/checkpoints/{id}/pin`'s body.
public struct PinRequest: Codable, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}
