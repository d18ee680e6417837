import CheckpointArchive
import FerryTestSupport
import FerryValidation
import Foundation
import Testing

/// Archives as containerd's CRI `CheckpointContainer` writes them: the reduced `config.dump`, containerd's
/// annotations in `spec.dump`, `status.dump` as Go's `encoding/json` of the CRI `ContainerStatus` (proto field
/// names, times as numbers of nanoseconds, `state` as a number, zero values left out), and containerd's own
/// `status` file. Built from the shipped CRI-O archive's CRIU images with these files replaced.
@Suite("containerd archives")
struct ContainerdArchiveTests {
    static let containerID = ContainerdFixture.containerID

    static func archive(config: String? = nil, status: String? = nil, internalStatus: String? = nil) throws -> String {
        try ContainerdFixture.archive(config: config, status: status, internalStatus: internalStatus)
    }

    @Test("what containerd writes is read: identity from annotations, the state and times from status.dump, no warnings")
    func asContainerdWrites() throws {
        let manifest = try CheckpointReader.read(path: try Self.archive())
        #expect(manifest.engine == .containerd)
        #expect(manifest.container.id == Self.containerID)
        #expect(manifest.container.statusID == Self.containerID)
        #expect(manifest.container.name == "counter")
        #expect(manifest.container.runtime == "io.containerd.runc.v2")
        #expect(manifest.container.created == "2025-11-25T05:00:00Z")
        #expect(manifest.pod.name == "counter-7d9f8b6c5-x2kqz" && manifest.pod.namespace == "shop")
        #expect(manifest.containerdState == CheckpointManifest.ContainerdState(
            state: "running", attempt: 1, startedAt: "2025-11-25T05:00:01Z", finishedAt: nil))
        #expect(manifest.metadataIssues.isEmpty, "\(manifest.metadataIssues)")
        let findings = ArchiveValidator.findings(for: manifest)
        #expect(!findings.contains { $0.code.hasPrefix("METADATA") || $0.code == "CONTAINER_ID_MISMATCH" }, "\(findings.map(\.code))")
    }

    @Test("without a creation time in config.dump, status.dump's nanoseconds give it, and then the status file's")
    func timesFromNanoseconds() throws {
        let bare = """
            {"id": "\(Self.containerID)", "name": "counter", "runtime": "io.containerd.runc.v2"}
            """
        #expect(try CheckpointReader.read(path: try Self.archive(config: bare)).container.created == "2025-11-25T05:00:00Z")
        let noStatusTime = #"{"id":"\#(Self.containerID)","metadata":{"name":"counter"},"state":2}"#
        let manifest = try CheckpointReader.read(path: try Self.archive(config: bare, status: noStatusTime))
        #expect(manifest.container.created == "2025-11-25T05:00:00Z", "from the status file's CreatedAt")
        // attempt 0 and finished_at 0 are left out by Go's encoding: absent, not errors.
        #expect(manifest.containerdState?.state == "exited" && manifest.containerdState?.attempt == nil)
        #expect(manifest.metadataIssues.isEmpty)
    }

    @Test("a field of the wrong type that Ferry only shows is a warning naming it, and the archive is read")
    func tolerantFields() throws {
        let odd = """
            {"id":"\(Self.containerID)","metadata":{"name":7,"attempt":"x"},"state":"CONTAINER_RUNNING",\
            "created_at":[1],"image":"busybox","image_ref":5}
            """
        let config = """
            {"id": "\(Self.containerID)", "name": "counter", "rootfsImageName": 42, "createdTime": true}
            """
        let manifest = try CheckpointReader.read(path: try Self.archive(config: config, status: odd, internalStatus: "[1,2]"))
        #expect(manifest.container.name == "counter", "from the container-name annotation")
        #expect(manifest.containerdState?.state == "running", "protobuf's JSON enum name, folded")
        let fields = Set(manifest.metadataIssues.map { "\($0.file):\($0.field)" })
        #expect(fields == ["status.dump:metadata.name", "status.dump:metadata.attempt", "status.dump:created_at",
                           "status.dump:image", "status.dump:image_ref", "config.dump:rootfsImageName",
                           "config.dump:createdTime", "status:"], "\(fields)")
        let warnings = ArchiveValidator.findings(for: manifest).filter { $0.code == FindingCode.metadataFieldInvalid.rawValue }
        #expect(warnings.count == 8 && warnings.allSatisfy { $0.severity == .warning })
        #expect(warnings.contains { $0.path == "status.dump:created_at" && $0.message.hasPrefix("is an array, not a time") }, "\(warnings.map(\.message))")
    }

    @Test("config.dump that is not an object, or not JSON, still refuses the archive with METADATA_INVALID")
    func essentialsStillRefuse() throws {
        for config in ["[1, 2]", "{not json"] {
            #expect {
                try CheckpointReader.read(path: try Self.archive(config: config))
            } throws: { ($0 as? CheckpointError)?.code == .metadataInvalid }
        }
    }
}
