import Foundation

/// What the service vouches for when it catalogues a checkpoint: the archive's digest bound to its identity, its
/// findings, and its place in its container's chain. Signed as the payload of a ``StatementEnvelope``; the bytes
/// signed are the bytes verified, so this type is only ever decoded from a verified payload, never re-encoded.
public struct ProvenanceStatement: Codable, Sendable, Equatable {
    public static let type = "https://ferry.dev/checkpoint-statement/v1"

    public struct Subject: Codable, Sendable, Equatable {
        /// `sha256:<hex>` of the archive's bytes as uploaded (the checkpoint ID).
        public var digest: String
        public var size: Int64
        public var compression: String

        public init(digest: String, size: Int64, compression: String) {
            self.digest = digest
            self.size = size
            self.compression = compression
        }
    }

    public struct Identity: Codable, Sendable, Equatable {
        public var engine: String
        public var containerID: String
        public var containerName: String
        public var podName: String?
        public var podNamespace: String?
        public var sourceNode: String?

        enum CodingKeys: String, CodingKey {
            case engine
            case containerID = "container_id"
            case containerName = "container_name"
            case podName = "pod_name"
            case podNamespace = "pod_namespace"
            case sourceNode = "source_node"
        }

        public init(engine: String, containerID: String, containerName: String, podName: String?, podNamespace: String?,
                    sourceNode: String?) {
            self.engine = engine
            self.containerID = containerID
            self.containerName = containerName
            self.podName = podName
            self.podNamespace = podNamespace
            self.sourceNode = sourceNode
        }
    }

    public struct Findings: Codable, Sendable, Equatable {
        /// `clean`, `warnings`, `errors` or `unknown`, as the catalog records it.
        public var state: String
        public var errors: Int
        public var warnings: Int

        public init(state: String, errors: Int, warnings: Int) {
            self.state = state
            self.errors = errors
            self.warnings = warnings
        }
    }

    /// The link to the container's previous statement: the forensic hash chain. The first statement of a chain has
    /// index 0 and no previous.
    public struct Chain: Codable, Sendable, Equatable {
        /// `NAMESPACE/POD/CONTAINER` (a Podman checkpoint has an empty namespace and pod): the retention scope.
        public var key: String
        public var index: Int
        /// `sha256:` of the previous statement's payload bytes.
        public var previousStatement: String?
        /// The previous checkpoint's digest (the operator's `previousSHA256Hash`).
        public var previousCheckpoint: String?

        enum CodingKeys: String, CodingKey {
            case key, index
            case previousStatement = "previous_statement"
            case previousCheckpoint = "previous_checkpoint"
        }

        public init(key: String, index: Int, previousStatement: String?, previousCheckpoint: String?) {
            self.key = key
            self.index = index
            self.previousStatement = previousStatement
            self.previousCheckpoint = previousCheckpoint
        }
    }

    public var type: String
    public var subject: Subject
    public var identity: Identity
    public var uploadedAt: String
    public var signedAt: String
    public var findings: Findings
    public var chain: Chain

    enum CodingKeys: String, CodingKey {
        case type = "_type"
        case subject, identity, findings, chain
        case uploadedAt = "uploaded_at"
        case signedAt = "signed_at"
    }

    public init(subject: Subject, identity: Identity, uploadedAt: String, signedAt: String, findings: Findings, chain: Chain) {
        self.type = Self.type
        self.subject = subject
        self.identity = identity
        self.uploadedAt = uploadedAt
        self.signedAt = signedAt
        self.findings = findings
        self.chain = chain
    }

    /// The chain a checkpoint with these names belongs to.
    public static func chainKey(containerName: String, podName: String?, podNamespace: String?) -> String {
        "\(podNamespace ?? "")/\(podName ?? "")/\(containerName)"
    }

    /// A chain key from what a user types: `CONTAINER` (a Podman container) or `NAMESPACE/POD/CONTAINER`.
    public static func chainKey(parsing text: String) -> String? {
        // By scalars, not Characters: "/" followed by a combining mark is one Character.
        let parts = text.unicodeScalars.split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where !text.isEmpty: return "//\(text)"
        case 3 where !parts[2].isEmpty: return text
        default: return nil
        }
    }
}

/// A DSSE envelope (the in-toto/Sigstore signing format): the statement's exact bytes, base64, and Ed25519
/// signatures over `PAE(payloadType, payload)`.
public struct StatementEnvelope: Codable, Sendable, Equatable {
    public static let payloadType = "application/vnd.ferry.checkpoint-statement.v1+json"

    public struct Signature: Codable, Sendable, Equatable {
        /// The signing key's ID (``ProvenanceKeyInfo/keyID``).
        public var keyid: String
        /// base64 of the 64-byte Ed25519 signature.
        public var sig: String

        public init(keyid: String, sig: String) {
            self.keyid = keyid
            self.sig = sig
        }
    }

    public var payloadType: String
    /// base64 of the statement's JSON bytes.
    public var payload: String
    public var signatures: [Signature]

    public init(payloadType: String = Self.payloadType, payload: String, signatures: [Signature]) {
        self.payloadType = payloadType
        self.payload = payload
        self.signatures = signatures
    }
}

/// `GET /.well-known/ferry/provenance-key`: the public half of the service's signing key.
public struct ProvenanceKeyInfo: Codable, Sendable, Equatable {
    public var algorithm: String
    /// The first 16 bytes of SHA-256 over the raw public key, hex.
    public var keyID: String
    /// base64 of the 32-byte raw Ed25519 public key.
    public var publicKey: String
    /// The same key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for `openssl pkeyutl -verify`.
    public var pem: String

    enum CodingKeys: String, CodingKey {
        case algorithm, pem
        case keyID = "key_id"
        case publicKey = "public_key"
    }

    public init(algorithm: String = "ed25519", keyID: String, publicKey: String, pem: String) {
        self.algorithm = algorithm
        self.keyID = keyID
        self.publicKey = publicKey
        self.pem = pem
    }
}

/// `GET /api/v1/chain?container=…`: every statement of one container's chain, oldest first. Statements outlive
/// their checkpoints: a deleted checkpoint keeps its link (with `present: false`), so deletions do not break the
/// chain, and the deletion record says who deleted it.
public struct ProvenanceChain: Codable, Sendable, Equatable {
    public struct Link: Codable, Sendable, Equatable {
        public var checkpointID: String
        /// Whether the catalog still holds the checkpoint.
        public var present: Bool
        public var envelope: StatementEnvelope

        enum CodingKeys: String, CodingKey {
            case present, envelope
            case checkpointID = "checkpoint_id"
        }

        public init(checkpointID: String, present: Bool, envelope: StatementEnvelope) {
            self.checkpointID = checkpointID
            self.present = present
            self.envelope = envelope
        }
    }

    public var key: String
    public var links: [Link]

    public init(key: String, links: [Link]) {
        self.key = key
        self.links = links
    }
}
