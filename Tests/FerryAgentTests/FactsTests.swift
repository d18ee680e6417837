@testable import FerryAgent
import FerryTestSupport
import FerryValidation
import Foundation
import Testing

/// The node's facts: detection from the machine, Podman's JSON, CRIU's version line, and the facts file merge.
@Suite("node facts")
struct FactsTests {
    @Test("CRIU's version line becomes Podman's integer")
    func criuVersion() {
        #expect(CRIUVersion.parse("Version: 4.2\n")?.number == 40200)
        #expect(CRIUVersion.parse("Version: 3.17.1\nGitID: v3.17.1\n")?.number == 31701)
        #expect(CRIUVersion.parse("Version: 3.17.1\n")?.text == "3.17.1")
        #expect(CRIUVersion.parse("criu: command not found") == nil)
        #expect(CRIUDriver().version(fromOutput: "Version: 4.2\n") == "4.2")
    }

    @Test("Podman's JSON gives images, containers, addresses, networks and its version")
    func podmanJSON() throws {
        let images = #"[{"Id": "a1b2c3", "Names": ["localhost/counter:latest", "docker.io/library/busybox:1.36"]}, {"Id": "d4e5f6", "Names": null}]"#
        #expect(PodmanInventory.images(from: images) == ["localhost/counter:latest", "docker.io/library/busybox:1.36", "a1b2c3", "d4e5f6"])
        let containers = #"[{"Id": "1111", "Names": ["web"]}, {"Id": "2222", "Names": ["db"]}]"#
        let parsed = try #require(PodmanInventory.containers(from: containers))
        #expect(parsed.names == ["web", "db"] && parsed.ids == ["1111", "2222"])
        #expect(PodmanInventory.containers(from: "null")?.ids == [])
        let inspect = #"[{"NetworkSettings": {"IPAddress": "", "Networks": {"podman": {"IPAddress": "10.88.0.5", "MacAddress": "AA:BB:CC:00:11:22"}}}}]"#
        let addresses = try #require(PodmanInventory.addresses(from: inspect))
        #expect(addresses.ips == ["10.88.0.5"] && addresses.macs == ["aa:bb:cc:00:11:22"])
        let networks = #"[{"name": "podman", "subnets": [{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]}]"#
        #expect(PodmanInventory.networks(from: networks) == [TargetFacts.Network(name: "podman", subnet: "10.88.0.0/16")])
        #expect(PodmanInventory.images(from: "garbage") == nil)
        #expect(PodmanDriver().version(fromOutput: #"{"Client": {"APIVersion": "5.4.2", "Version": "5.4.2"}}"#) == "5.4.2")
    }

    @Test("declared facts replace single values and add to lists")
    func merge() {
        let detected = TargetFacts(architecture: "x86_64", runtimes: ["crun"], kernel: "6.1.0", cgroupVersion: "v2",
                                   ipsInUse: ["192.168.1.5"])
        let declared = TargetFacts(architecture: "aarch64", criuVersion: 40200, runtimes: ["runc", "crun"],
                                   ipsInUse: ["10.89.0.42"], containerNames: ["web"])
        let merged = FactsCollector.merge(declared, over: detected)
        #expect(merged == TargetFacts(architecture: "aarch64", criuVersion: 40200, runtimes: ["crun", "runc"], kernel: "6.1.0",
                                      cgroupVersion: "v2", ipsInUse: ["192.168.1.5", "10.89.0.42"], containerNames: ["web"]))
        #expect(FactsCollector.merge(TargetFacts(), over: detected) == detected)
    }

    @Test("facts detected on this machine match uname, and unknown ones stay nil")
    func detected() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let collector = FactsCollector(driver: CommandDriver(restore: "true", checkpoint: nil), workDirectory: directory.path,
                                       declared: nil)
        let report = collector.current()
        let machine = try Fixtures.run("/usr/bin/uname", ["-m"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let release = try Fixtures.run("/usr/bin/uname", ["-r"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(report.facts.architecture == machine)
        #expect(report.facts.kernel == release)
        #expect(report.facts.cgroupVersion == (FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") ? "v2" : "v1"))
        #expect((report.freeDiskBytes ?? 0) > 0)
        #expect(report.facts.ipsInUse != nil)
        #expect(report.facts.ipsInUse?.contains("127.0.0.1") == false, "loopback is not an address in use on the network")
        // The command driver knows nothing of images or containers: unknown, not empty.
        #expect(report.facts.images == nil && report.facts.containerNames == nil && report.facts.containerIDs == nil)
        #expect(report.runtimeVersion == nil)
        if HostSystem.findExecutable("criu") == nil { #expect(report.facts.criuVersion == nil) }
        if HostSystem.findExecutable("runc") == nil && HostSystem.findExecutable("crun") == nil { #expect(report.facts.runtimes == nil) }
    }
}
