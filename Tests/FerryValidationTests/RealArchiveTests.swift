import CheckpointArchive
import FerryTestSupport
import FerryValidation
import Testing

/// The shipped archives were made by real Podman and CRI-O runs: none may be judged unfit.
@Suite("Real archives pass validation")
struct RealArchiveTests {
    @Test("every shipped archive is found")
    func everyShippedArchiveIsFound() {
        #expect(Fixtures.checkpointArchives.count >= 12)
        #expect(Fixtures.checkpointArchives.contains(HostileArchive.crioName))
    }

    @Test("a real archive yields no findings at all", arguments: Fixtures.checkpointArchives)
    func aRealArchiveYieldsNoFindings(name: String) throws {
        let manifest = try CheckpointReader.read(path: Fixtures.archive(name))
        let findings = ArchiveValidator.findings(for: manifest)
        // Not even warnings or infos: every root entry is a known one, and every address, ID and path is clean.
        #expect(findings == [], "\(name): \(findings.map(\.description))")
    }

    @Test("a manifest read without the CRIU images says the CRIU rules were skipped")
    func aManifestWithoutCRIUImagesSaysTheRulesWereSkipped() throws {
        var options = CheckpointReadOptions()
        options.decodeProcesses = false
        let manifest = try CheckpointReader.read(path: Fixtures.archive(HostileArchive.podmanName), options: options)
        let findings = ArchiveValidator.findings(for: manifest)
        #expect(findings.codes == [.criuNotDecoded])
        #expect(findings.first?.severity == .info)
    }

    @Test("the CRI-O archive's facts carry its identity, pod IP and image")
    func theCRIOArchiveFactsCarryItsIdentity() throws {
        let facts = CheckpointFacts(manifest: try CheckpointReader.read(path: Fixtures.archive(HostileArchive.crioName)))
        #expect(facts.engine == .crio)
        #expect(facts.containerName == "counter")
        #expect(facts.podIPs == ["10.244.1.17"])
        #expect(facts.architecture == "x86_64")
        #expect(facts.runtime == "runc")
        #expect(facts.imageID == "sha256:7e63f2f9cf3ead6123ba467d90d5cbd0221e9838e3482e80ff42b0771e25994c")
        #expect(facts.hasEstablishedTCP == false)
    }

    @Test("the TCP archive's facts record its established connections on loopback")
    func theTCPArchiveFactsRecordEstablishedConnections() throws {
        let facts = CheckpointFacts(manifest: try CheckpointReader.read(path: Fixtures.archive("podman-tcp-established.tar")))
        #expect(facts.hasEstablishedTCP == true)
        #expect(facts.establishedTCPAddresses == ["::ffff:127.0.0.1", "127.0.0.1"])
        #expect(facts.networks == [.init(name: "podman", interfaces: [
            .init(name: "eth0", addresses: ["10.88.0.81/16"], mac: "da:54:85:98:7c:0b"),
        ])])
    }
}
