import CheckpointArchive
import FerryTestSupport
@testable import FerryValidation
import Testing

/// IDs and identity records, broken one at a time in copies of the real CRI-O and Podman archives.
@Suite("Identity rules")
struct IdentityRuleTests {
    let crio = HostileArchive.crio
    let podman = HostileArchive.podman

    @Test("a container ID that is not 64 lowercase hex digits is an error")
    func aMalformedContainerIDIsAnError() throws {
        let config = try HostileArchive.configDump(of: podman) { $0["id"] = "6A2B7E9C" }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: podman, replacing: ["config.dump": config]))
        #expect(findings.codes == [.containerIDInvalid])
        #expect(findings.first?.severity == .error)
        #expect(findings.first?.path == "config.dump:id")
    }

    @Test("a CRI-O ContainerID annotation that differs from config.dump's ID is an error")
    func aDifferentCRIOContainerIDIsAnError() throws {
        let spec = try HostileArchive.specDump(of: crio) {
            $0[AnnotationKey.crioContainerID] = String(repeating: "ab", count: 32)
        }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == [.containerIDMismatch])
        #expect(findings.first?.path == "spec.dump:io.kubernetes.cri-o.ContainerID")
    }

    @Test("a sandbox ID that is not 64 hex digits is an error")
    func aMalformedSandboxIDIsAnError() throws {
        let spec = try HostileArchive.specDump(of: crio) { $0[AnnotationKey.crioSandboxID] = "../../sandbox" }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == [.sandboxIDInvalid])
    }

    @Test("a pod UID that is not a UUID is an error, and conflicts with the other records")
    func aMalformedPodUIDIsAnError() throws {
        let spec = try HostileArchive.specDump(of: crio) { $0[AnnotationKey.podUID] = "not-a-uuid" }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == [.podUIDInvalid, .identityConflict])
        #expect(findings.map(\.path) == ["spec.dump:io.kubernetes.pod.uid", "spec.dump:io.kubernetes.pod.uid"])
        #expect(findings.allSatisfy { $0.severity == .error })
    }

    @Test("a checkpointctl namespace that differs from the CRI-O labels is a conflict")
    func aDifferentCheckpointctlNamespaceIsAConflict() throws {
        let spec = try HostileArchive.specDump(of: crio) {
            $0[AnnotationKey.checkpointPodNamespace] = "kube-system"
            $0[AnnotationKey.checkpointPodName] = "counter-7d9f8b6c5-x2kqz"
            $0[AnnotationKey.checkpointContainerName] = "counter"
        }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == [.identityConflict])
        #expect(findings.first?.path == "spec.dump:org.criu.checkpoint.pod.namespace")
        #expect(findings.first?.message.contains("\"kube-system\" differs from \"shop\"") == true)
    }

    @Test("CRI-O labels that disagree with every other record give one conflict per other record")
    func labelsThatDisagreeGiveOneConflictPerRecord() throws {
        let spec = try HostileArchive.specDump(of: crio) {
            $0[AnnotationKey.crioLabels] = #"{"io.kubernetes.pod.name":"counter-7d9f8b6c5-x2kqz","io.kubernetes.pod.namespace":"other","io.kubernetes.container.name":"counter"}"#
        }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == Array(repeating: .identityConflict, count: 4))
        #expect(findings.map(\.path) == [
            "spec.dump:io.kubernetes.pod.namespace", "config.dump:name", "spec.dump:io.kubernetes.cri-o.Name",
            "spec.dump:io.kubernetes.cri-o.SandboxName",
        ])
    }

    @Test("a container name in Metadata that differs from the labels is a conflict")
    func aDifferentMetadataNameIsAConflict() throws {
        let spec = try HostileArchive.specDump(of: crio) { $0[AnnotationKey.crioMetadata] = #"{"name":"imposter","attempt":0}"# }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == [.identityConflict])
        #expect(findings.first?.path == "spec.dump:io.kubernetes.cri-o.Metadata")
    }

    @Test("a containerd record with a namespace but no pod or container name is a warning")
    func aPartialContainerdRecordIsAWarning() throws {
        let spec = try HostileArchive.specDump(of: crio) { $0[AnnotationKey.containerdSandboxNamespace] = "shop" }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == [.identityIncomplete])
        #expect(findings.first?.severity == .warning)
        #expect(findings.first?.path == "spec.dump:io.kubernetes.cri.*")
        #expect(findings.first?.message.contains("pod namespace but not the pod name and container name") == true)
    }

    @Test("CRI-O labels that are not JSON are an error")
    func labelsThatAreNotJSONAreAnError() throws {
        let spec = try HostileArchive.specDump(of: crio) { $0[AnnotationKey.crioLabels] = "{not json" }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == [.identityAnnotationInvalid])
    }

    @Test("a Podman archive named like a CRI-O container is not read as a Kubernetes record")
    func aPodmanNameIsNotAKubernetesRecord() throws {
        let config = try HostileArchive.configDump(of: podman) { $0["name"] = "k8s_a_b_c_d_0" }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: podman, replacing: ["config.dump": config]))
        #expect(findings == [])
    }

    @Test("UUIDs and container IDs are recognised exactly")
    func uuidsAndContainerIDsAreRecognised() {
        #expect(IdentityRules.isUUID("5f0c7a1e-8b7d-4d0e-9a43-2c1b7e6f9a10"))
        #expect(IdentityRules.isUUID("5F0C7A1E-8B7D-4D0E-9A43-2C1B7E6F9A10"))
        #expect(!IdentityRules.isUUID("5f0c7a1e8b7d4d0e9a432c1b7e6f9a10"))
        #expect(!IdentityRules.isUUID("5f0c7a1e-8b7d-4d0e-9a43-2c1b7e6f9a1g"))
        #expect(IdentityRules.isContainerID(String(repeating: "0f", count: 32)))
        #expect(!IdentityRules.isContainerID(String(repeating: "0F", count: 32)))
        #expect(!IdentityRules.isContainerID(String(repeating: "0f", count: 31)))
    }
}

/// The CRIU rules, on real manifests with one fact changed.
@Suite("CRIU rules")
struct CRIURuleTests {
    @Test("an archive without inventory.img is an error")
    func anArchiveWithoutInventoryIsAnError() throws {
        let bytes = HostileArchive.bytes(from: HostileArchive.podman, removing: ["checkpoint/inventory.img"])
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == [.criuInventoryMissing])
        #expect(findings.first?.path == "checkpoint/inventory.img")
    }

    @Test("an inventory image version other than 1 or 2 is an error")
    func anUnknownImageVersionIsAnError() throws {
        var manifest = try HostileArchive.manifest(HostileArchive.podman)
        manifest.criu?.inventory?.imageVersion = 3
        #expect(ArchiveValidator.findings(for: manifest).codes == [.criuImageVersionUnsupported])
        manifest.criu?.inventory?.imageVersion = 1
        #expect(ArchiveValidator.findings(for: manifest) == [])
    }

    @Test("a second root process is an error")
    func aSecondRootProcessIsAnError() throws {
        var manifest = try HostileArchive.manifest(HostileArchive.podman)
        manifest.criu?.processes.append(ProcessNode(pid: 99, ppid: 0, command: "intruder"))
        let findings = ArchiveValidator.findings(for: manifest)
        #expect(findings.codes == [.processTreeRootInvalid])
        #expect(findings.first?.message.contains("2 root processes (PIDs 1, 99)") == true)
    }

    @Test("a process whose parent is not in the tree counts as a second root")
    func anOrphanIsASecondRoot() throws {
        var manifest = try HostileArchive.manifest(HostileArchive.podman)
        manifest.criu?.processes.append(ProcessNode(pid: 99, ppid: 4242, command: "orphan"))
        #expect(ArchiveValidator.findings(for: manifest).codes == [.processTreeRootInvalid])
    }

    @Test("parent links that loop leave processes outside the tree, which is an error")
    func parentLinksThatLoopAreAnError() throws {
        var manifest = try HostileArchive.manifest(HostileArchive.podman)
        manifest.criu?.processes += [ProcessNode(pid: 97, ppid: 98, command: "a"), ProcessNode(pid: 98, ppid: 97, command: "b")]
        let findings = ArchiveValidator.findings(for: manifest)
        #expect(findings.codes == [.processTreeRootInvalid])
        #expect(findings.first?.message.contains("97, 98 are not descendants") == true)
    }

    @Test("a tree with no processes is an error")
    func aTreeWithNoProcessesIsAnError() throws {
        var manifest = try HostileArchive.manifest(HostileArchive.podman)
        manifest.criu?.processes = []
        #expect(ArchiveValidator.findings(for: manifest).codes == [.processTreeRootInvalid])
    }
}
