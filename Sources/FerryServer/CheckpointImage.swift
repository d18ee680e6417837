import FerryAPI
import Crypto
import FerryCatalog
import Foundation

/// A catalogued checkpoint as an OCI checkpoint image: one layer, the stored archive byte for byte (its media type
/// from its compression), a config whose diff_id is the uncompressed tar's digest, and the annotations each engine
/// looks for (checkpoint-ecosystem §3.2): Podman `io.podman.annotations.checkpoint.*` (it restores only when
/// `runtime.name` matches its runtime), CRI-O `io.kubernetes.cri-o.annotations.checkpoint.*`, and containerd
/// `org.criu.checkpoint.*`, which containerd reads from the index, so the tag names an index with the same
/// annotations around the one manifest.
///
/// Built only from the row, with sorted keys: the same bytes, so the same digests, on every pull.
struct CheckpointImage {
    static let indexMediaType = "application/vnd.oci.image.index.v1+json"
    static let manifestMediaType = "application/vnd.oci.image.manifest.v1+json"
    static let configMediaType = "application/vnd.oci.image.config.v1+json"

    let config: [UInt8]
    let configDigest: String
    let manifest: [UInt8]
    let manifestDigest: String
    let index: [UInt8]
    let indexDigest: String

    init(_ record: CheckpointRecord) throws {
        guard let layerType = Self.layerMediaType(record.compression), let diffID = record.uncompressedDigest else {
            throw RegistryError(.manifestUnknown, "a \(record.compression) archive cannot be served as an image layer")
        }
        let architecture = Self.goArchitecture(record.architecture)
        let created = record.checkpointed ?? record.uploadedAt
        let config = ImageConfig(
            architecture: architecture, os: "linux", created: created, config: [:],
            rootfs: .init(type: "layers", diffIDs: [diffID]),
            history: [.init(created: created, createdBy: "ferry: checkpoint \(record.id.prefix(12)) of \(record.containerName)")])
        self.config = try Self.encode(config)
        configDigest = Self.digest(self.config)

        let annotations = Self.annotations(record, created: created)
        let manifest = ImageManifest(
            schemaVersion: 2, mediaType: Self.manifestMediaType,
            config: .init(mediaType: Self.configMediaType, digest: configDigest, size: Int64(self.config.count)),
            layers: [.init(mediaType: layerType, digest: "sha256:" + record.id, size: record.size)],
            annotations: annotations)
        self.manifest = try Self.encode(manifest)
        manifestDigest = Self.digest(self.manifest)

        let index = ImageIndex(
            schemaVersion: 2, mediaType: Self.indexMediaType,
            manifests: [.init(mediaType: Self.manifestMediaType, digest: manifestDigest, size: Int64(self.manifest.count),
                              platform: .init(architecture: architecture, os: "linux"))],
            annotations: annotations)
        self.index = try Self.encode(index)
        indexDigest = Self.digest(self.index)
    }

    static func layerMediaType(_ compression: String) -> String? {
        switch compression {
        case "none": "application/vnd.oci.image.layer.v1.tar"
        case "gzip": "application/vnd.oci.image.layer.v1.tar+gzip"
        case "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"
        default: nil
        }
    }

    /// uname's machine names as Go's GOARCH, which image platforms use.
    static func goArchitecture(_ machine: String?) -> String {
        switch machine {
        case "x86_64", "amd64", nil: "amd64"
        case "aarch64", "arm64": "arm64"
        case "ppc64le": "ppc64le"
        case "s390x": "s390x"
        case "riscv64": "riscv64"
        case let other?: other
        }
    }

    /// What the three conventions say about the checkpoint, from the row; unknown values are left out.
    static func annotations(_ record: CheckpointRecord, created: String) -> [String: String] {
        var values: [String: String] = [
            "org.opencontainers.image.created": created,
            "io.ferry.checkpoint.id": "sha256:" + record.id,
        ]
        func set(_ keys: [String], _ value: String?) {
            guard let value, !value.isEmpty else { return }
            for key in keys { values[key] = value }
        }
        let podman = "io.podman.annotations.checkpoint."
        let crio = "io.kubernetes.cri-o.annotations.checkpoint."
        let criu = "org.criu.checkpoint."
        set([podman + "name", crio + "name", criu + "container.name"], record.containerName)
        set([podman + "rawImageName", crio + "rawImageName", criu + "rawImageName", criu + "rootfsImageUserRequested"], record.image)
        set([podman + "rootfsImageName", crio + "rootfsImageName", criu + "rootfsImageName"], record.image)
        set([podman + "rootfsImageID", crio + "rootfsImageID", criu + "rootfsImageID"], record.imageID)
        set([podman + "runtime.name", criu + "runtime.name"], record.runtime)
        set([podman + "host.arch", criu + "host.arch"], goArchitecture(record.architecture))
        set([criu + "engine.name"], record.engine)
        set([criu + "pod.name"], record.podName)
        set([criu + "pod.namespace"], record.podNamespace)
        set([criu + "pod.uid"], record.podUID)
        set([criu + "pod.id"], record.sandboxID)
        return values
    }

    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func digest(_ bytes: [UInt8]) -> String {
        "sha256:" + Hex.string(SHA256.hash(data: bytes))
    }
}

// The OCI image-spec documents, as much of them as a checkpoint image uses.

struct Descriptor: Codable {
    var mediaType: String
    var digest: String
    var size: Int64
    var platform: Platform?
}

struct Platform: Codable {
    var architecture: String
    var os: String
}

struct ImageConfig: Codable {
    struct RootFS: Codable {
        var type: String
        var diffIDs: [String]
        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }

    struct History: Codable {
        var created: String
        var createdBy: String
        enum CodingKeys: String, CodingKey {
            case created
            case createdBy = "created_by"
        }
    }

    var architecture: String
    var os: String
    var created: String
    var config: [String: String]
    var rootfs: RootFS
    var history: [History]
}

struct ImageManifest: Codable {
    var schemaVersion: Int
    var mediaType: String
    var config: Descriptor
    var layers: [Descriptor]
    var annotations: [String: String]
}

struct ImageIndex: Codable {
    var schemaVersion: Int
    var mediaType: String
    var manifests: [Descriptor]
    var annotations: [String: String]
}
