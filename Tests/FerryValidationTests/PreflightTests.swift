import CheckpointArchive
import FerryTestSupport
import FerryValidation
import Foundation
import Testing

/// Target-node compatibility, from the facts of real archives and hand-written target facts.
@Suite("Preflight")
struct PreflightTests {
    static func facts(_ name: String, imageAnnotations: [String: String] = [:]) throws -> CheckpointFacts {
        CheckpointFacts(manifest: try CheckpointReader.read(path: Fixtures.archive(name)), imageAnnotations: imageAnnotations)
    }

    /// Podman's `--create-image` annotations, as `podman image inspect` showed them for the shipped checkpoint image.
    static let podmanImageAnnotations: [String: String] = [
        "io.podman.annotations.checkpoint.cgroups.version": "v1",
        "io.podman.annotations.checkpoint.criu.version": "40300",
        "io.podman.annotations.checkpoint.host.arch": "amd64",
        "io.podman.annotations.checkpoint.host.kernel": "6.18.44-fc-v669",
        "io.podman.annotations.checkpoint.runtime.name": "runc",
    ]

    /// A target where `podman-counter-none.tar` restores cleanly.
    static let friendlyTarget = TargetFacts(
        architecture: "amd64", criuVersion: 40300, runtimes: ["crun", "runc"], kernel: "6.18.2", cgroupVersion: "1",
        images: ["localhost/busybox:test", "7b4c6855a900"], ipsInUse: ["10.88.0.2"], macsInUse: ["42:aa:5b:c0:e4:00"],
        networks: [.init(name: "podman", subnet: "10.88.0.0/16")], containerNames: ["other"], containerIDs: ["0123456789ab"])

    static func findings(
        _ checkpoint: CheckpointFacts, _ edit: (inout TargetFacts) -> Void = { _ in }, options: RestoreOptions = .init()
    ) -> [Finding] {
        var target = friendlyTarget
        edit(&target)
        return Preflight.findings(checkpoint: checkpoint, target: target, options: options)
    }

    let counter: CheckpointFacts
    let tcp: CheckpointFacts
    let crio: CheckpointFacts

    init() throws {
        counter = try Self.facts(HostileArchive.podmanName, imageAnnotations: Self.podmanImageAnnotations)
        tcp = try Self.facts("podman-tcp-established.tar")
        crio = try Self.facts(HostileArchive.crioName)
    }

    @Test("a target that has everything gives no findings")
    func aFriendlyTargetGivesNoFindings() {
        #expect(Self.findings(counter) == [])
    }

    @Test("a target that reports nothing gives no findings, because unknown facts skip their rules")
    func anUnknownTargetGivesNoFindings() {
        #expect(Preflight.findings(checkpoint: counter, target: TargetFacts(), options: .init()) == [])
        #expect(Preflight.findings(checkpoint: tcp, target: TargetFacts(), options: .init(tcpEstablished: true)) == [])
    }

    @Test("another CPU architecture is an error; amd64 and x86_64 are the same")
    func anotherArchitectureIsAnError() {
        let findings = Self.findings(counter) { $0.architecture = "aarch64" }
        #expect(findings.codes == [.architectureMismatch])
        #expect(findings.first?.severity == .error)
        #expect(findings.first?.waiver == nil)
        #expect(Self.findings(counter) { $0.architecture = "arm64" }.codes == [.architectureMismatch])
        #expect(Self.findings(counter) { $0.architecture = "x86_64" } == [])
    }

    @Test("a CRIU older than the engine needs is an error")
    func aTooOldCRIUIsAnError() {
        #expect(Self.findings(counter) { $0.criuVersion = 31000 }.codes == [.criuVersionTooOld])
        #expect(Self.findings(counter) { $0.criuVersion = 31100 }.codes == [.criuVersionOlderThanDump])
        // Podman's --pod restores and Kubernetes restores need CRIU 3.16.
        #expect(Self.findings(counter, { $0.criuVersion = 31500 }, options: .init(pod: "mypod")).codes == [.criuVersionTooOld])
        let crioFindings = Self.findings(crio) { $0.criuVersion = 31500; $0.images = nil }
        #expect(crioFindings.codes == [.criuVersionTooOld])
        #expect(crioFindings.first?.message == "the target's CRIU 3.15 is older than the 3.16 CRI-O needs to restore")
    }

    @Test("a CRIU older than the one that dumped is a warning")
    func aCRIUOlderThanTheDumpIsAWarning() {
        let findings = Self.findings(counter) { $0.criuVersion = 40200 }
        #expect(findings.codes == [.criuVersionOlderThanDump])
        #expect(findings.first?.severity == .warning)
        #expect(Self.findings(counter) { $0.criuVersion = 40301 } == [])
    }

    @Test("a missing OCI runtime is an error; a runtime given as a path matches its name")
    func aMissingRuntimeIsAnError() {
        let findings = Self.findings(counter) { $0.runtimes = ["crun"] }
        #expect(findings.codes == [.runtimeMissing])
        #expect(findings.first?.path == "config.dump:runtime")
        #expect(Self.findings(counter) { $0.runtimes = ["/usr/bin/runc"] } == [])
    }

    @Test("another kernel major.minor or cgroup version is a warning")
    func kernelAndCgroupDifferencesAreWarnings() {
        let kernel = Self.findings(counter) { $0.kernel = "6.1.0-18-amd64" }
        #expect(kernel.codes == [.kernelVersionDiffers])
        #expect(kernel.first?.severity == .warning)
        #expect(kernel.first?.message.hasSuffix("(older)") == true)
        #expect(Self.findings(counter) { $0.kernel = "6.18.44-fc-v669" } == [])
        let cgroup = Self.findings(counter) { $0.cgroupVersion = "cgroup2" }
        #expect(cgroup.codes == [.cgroupVersionDiffers])
        #expect(cgroup.first?.severity == .warning)
        #expect(Self.findings(counter) { $0.cgroupVersion = "v1" } == [])
    }

    @Test("a missing base image is a warning waived by pulling it")
    func aMissingBaseImageIsAWarning() {
        let findings = Self.findings(counter) { $0.images = ["docker.io/library/nginx"] }
        #expect(findings.codes == [.baseImageMissing])
        #expect(findings.first?.severity == .warning)
        #expect(findings.first?.waiver == "pull the image first")
        #expect(Self.findings(counter) { $0.images = ["sha256:7b4c6855a900a7d4666e81a11ae3ef915ce24d3c868dc26ab296d7ca73f52464"] } == [])
    }

    @Test("a base image present by name but not by ID is an error: another build, which Podman refuses")
    func aBaseImageWithAnotherIDIsAnError() {
        let findings = Self.findings(counter) { $0.images = ["localhost/busybox:test", "sha256:ffff"] }
        #expect(findings.codes == [.baseImageIDMismatch])
        #expect(findings.first?.severity == .error)
        #expect(Self.findings(crio) { $0.images = ["registry.example.com/shop/counter:1.4"] }.codes == [.baseImageIDMismatch])
        #expect(Self.findings(crio) { $0.images = ["sha256:7e63f2f9cf3e"] } == [])
    }

    @Test("a taken container name or ID is an error waived by --name")
    func aTakenNameOrIDIsAnError() {
        let findings = Self.findings(counter) {
            $0.containerNames = ["counter"]
            $0.containerIDs = ["6a2b7e9c7c0c"]
        }
        #expect(findings.codes == [.containerNameInUse, .containerIDInUse])
        #expect(findings.map(\.waiver) == ["--name", "--name"])
        let renamed = Self.findings(counter, {
            $0.containerNames = ["counter"]
            $0.containerIDs = ["6a2b7e9c7c0c"]
        }, options: .init(name: "counter-2"))
        #expect(renamed == [])
    }

    @Test("a --name that is itself taken is an error")
    func aTakenNewNameIsAnError() {
        let findings = Self.findings(counter, { $0.containerNames = ["counter-2"] }, options: .init(name: "counter-2"))
        #expect(findings.codes == [.containerNameInUse])
        #expect(findings.first?.waiver == "--name with an unused name")
    }

    @Test("a static IP in use on the target is an error waived by --ignore-static-ip or --name")
    func aStaticIPInUseIsAnError() {
        let findings = Self.findings(counter) { $0.ipsInUse = ["10.88.0.6"] }
        #expect(findings.codes == [.staticIPInUse])
        #expect(findings.first?.path == "network.status:podman/eth0")
        #expect(findings.first?.waiver == "--ignore-static-ip")
        #expect(Self.findings(counter, { $0.ipsInUse = ["10.88.0.6"] }, options: .init(ignoreStaticIP: true)) == [])
        #expect(Self.findings(counter, { $0.ipsInUse = ["10.88.0.6"] }, options: .init(name: "fresh")) == [])
    }

    @Test("a static IP outside the target network's subnets is an error waived by --ignore-static-ip")
    func aStaticIPOutsideTheNetworkIsAnError() {
        let edit: (inout TargetFacts) -> Void = { $0.networks = [.init(name: "podman", subnet: "10.89.0.0/16")] }
        let findings = Self.findings(counter, edit)
        #expect(findings.codes == [.staticIPOutsideNetworks])
        #expect(findings.first?.waiver == "--ignore-static-ip")
        #expect(Self.findings(counter, edit, options: .init(ignoreStaticIP: true)) == [])
    }

    @Test("a network the target lacks is an error that no restore option waives")
    func aMissingNetworkIsAnError() {
        let edit: (inout TargetFacts) -> Void = { $0.networks = [.init(name: "ferrynet", subnet: "10.88.0.0/16")] }
        let findings = Self.findings(counter, edit, options: .init(name: "fresh", ignoreStaticIP: true))
        #expect(findings.codes == [.networkMissing])
        #expect(findings.first?.waiver == nil)
    }

    @Test("a static MAC in use on the target is an error waived by --ignore-static-mac or --name")
    func aStaticMACInUseIsAnError() {
        let edit: (inout TargetFacts) -> Void = { $0.macsInUse = ["42-AA-5B-C0-E4-DC"] }
        let findings = Self.findings(counter, edit)
        #expect(findings.codes == [.staticMACInUse])
        #expect(findings.first?.waiver == "--ignore-static-mac")
        #expect(Self.findings(counter, edit, options: .init(ignoreStaticMAC: true)) == [])
        #expect(Self.findings(counter, edit, options: .init(name: "fresh")) == [])
        // Waiving the IP leaves the MAC to be requested.
        #expect(Self.findings(counter, edit, options: .init(ignoreStaticIP: true)).codes == [.staticMACInUse])
    }

    @Test("a Kubernetes restore gets a new container and pod IP, so names, IDs, IPs and MACs are not checked")
    func aKubernetesRestoreSkipsIdentityChecks() {
        let findings = Self.findings(crio) {
            $0.images = ["sha256:7e63f2f9cf3ead6123ba467d90d5cbd0221e9838e3482e80ff42b0771e25994c"]
            $0.containerNames = ["counter"]
            $0.containerIDs = ["6a2b7e9c7c0c"]
            $0.ipsInUse = ["10.244.1.17"]
            $0.networks = []
        }
        #expect(findings == [])
    }

    @Test("established TCP connections need --tcp-established or --tcp-close")
    func establishedConnectionsNeedAFlag() {
        let findings = Self.findings(tcp) { $0.images = nil }
        #expect(findings.codes == [.tcpEstablishedFlagMissing])
        #expect(findings.first?.waiver == "--tcp-established or --tcp-close")
        #expect(Self.findings(tcp, { $0.images = nil }, options: .init(tcpEstablished: true)) == [])
        #expect(Self.findings(tcp, { $0.images = nil }, options: .init(tcpClose: true)) == [])
    }

    @Test("established loopback connections survive a new IP")
    func loopbackConnectionsSurviveANewIP() {
        #expect(Self.findings(tcp, { $0.images = nil }, options: .init(ignoreStaticIP: true, tcpEstablished: true)) == [])
    }

    @Test("--name with --tcp-established is refused, as Podman refuses it")
    func nameWithTCPEstablishedIsRefused() {
        let findings = Self.findings(counter, { $0.images = nil }, options: .init(name: "copy", tcpEstablished: true))
        #expect(findings.codes == [.nameWithTCPEstablished])
        #expect(findings.first?.severity == .error)
        #expect(Self.findings(counter, { $0.images = nil }, options: .init(name: "copy", tcpClose: true)) == [])
        #expect(Self.findings(counter, { $0.images = nil }, options: .init(tcpEstablished: true)) == [])
    }

    @Test("established connections on the container's IP cannot move to a new IP; --tcp-close waives it")
    func connectionsOnTheContainerIPCannotMove() {
        var exposed = tcp
        exposed.establishedTCPAddresses = ["10.88.0.81", "127.0.0.1"]
        let noImages: (inout TargetFacts) -> Void = { $0.images = nil }
        for options in [RestoreOptions(ignoreStaticIP: true, tcpEstablished: true)] {
            let findings = Self.findings(exposed, noImages, options: options)
            #expect(findings.codes == [.tcpEstablishedIPChanges])
            #expect(findings.first?.waiver == "--tcp-close")
            #expect(findings.first?.message.contains("10.88.0.81") == true)
            #expect(findings.first?.message.contains("127.0.0.1") == false)
        }
        #expect(Self.findings(exposed, noImages, options: .init(tcpEstablished: true)) == [])
        #expect(Self.findings(exposed, noImages, options: .init(ignoreStaticIP: true, tcpEstablished: true, tcpClose: true)) == [])
        #expect(Self.findings(exposed, noImages, options: .init(name: "copy", tcpEstablished: true)).codes == [.nameWithTCPEstablished])
        var kubernetes = exposed
        kubernetes.engine = .crio
        #expect(Self.findings(kubernetes, noImages, options: .init(tcpEstablished: true)).codes == [.tcpEstablishedIPChanges])
    }

    @Test("a checkpoint dumped with --tcp-close needs no TCP flag")
    func aTCPCloseDumpNeedsNoFlag() {
        var closed = tcp
        closed.tcpClose = true
        #expect(Self.findings(closed) { $0.images = nil } == [])
    }

    @Test("every preflight finding that can be waived names its waiver")
    func everyWaivableFindingNamesItsWaiver() {
        let findings = Self.findings(counter) {
            $0.images = []
            $0.ipsInUse = ["10.88.0.6"]
            $0.macsInUse = ["42:aa:5b:c0:e4:dc"]
            $0.containerNames = ["counter"]
            $0.containerIDs = ["6a2b7e9c7c0c6a0e2da0c82638b0528591e4810e00dc38506c2527633f86fb5c"]
        }
        #expect(findings.codes == [.baseImageMissing, .containerNameInUse, .containerIDInUse, .staticIPInUse, .staticMACInUse])
        #expect(findings.allSatisfy { $0.waiver != nil })
    }

    @Test("target facts decode from snake_case JSON, with absent facts unknown")
    func targetFactsDecodeFromJSON() throws {
        let json = #"{"architecture":"amd64","criu_version":40200,"ips_in_use":["10.88.0.6"],"networks":[{"name":"podman","subnet":"10.88.0.0/16"}],"container_ids":[]}"#
        let target = try JSONDecoder().decode(TargetFacts.self, from: Data(json.utf8))
        #expect(target.architecture == "amd64")
        #expect(target.criuVersion == 40200)
        #expect(target.ipsInUse == ["10.88.0.6"])
        #expect(target.networks == [.init(name: "podman", subnet: "10.88.0.0/16")])
        #expect(target.containerIDs == [])
        #expect(target.runtimes == nil)
    }

    @Test("checkpoint facts survive a JSON round trip with snake_case keys")
    func checkpointFactsRoundTrip() throws {
        let data = try JSONEncoder().encode(counter)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"container_id\""))
        #expect(text.contains("\"has_established_tcp\""))
        #expect(try JSONDecoder().decode(CheckpointFacts.self, from: data) == counter)
        #expect(counter.criuVersion == 40300)
        #expect(counter.hostKernel == "6.18.44-fc-v669")
        #expect(counter.cgroupVersion == "v1")
    }

    @Test("restore options decode with every key optional")
    func restoreOptionsDecodeWithKeysOptional() throws {
        let options = try JSONDecoder().decode(RestoreOptions.self, from: Data(#"{"name":"x","tcp_close":true}"#.utf8))
        #expect(options == RestoreOptions(name: "x", tcpClose: true))
    }
}
