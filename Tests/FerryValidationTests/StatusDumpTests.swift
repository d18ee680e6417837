import CheckpointArchive
import FerryTestSupport
import FerryValidation
import Testing

/// containerd's `status.dump` carries the container ID a second time; it must agree with `config.dump`.
@Suite("status.dump identity")
struct StatusDumpTests {
    static func archive(statusID: String) throws -> String {
        let crio = try Fixtures.uncompressedBytes(of: "crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")
        var builder = TarBuilder()
        builder.copyEntries(of: crio)
        builder.file("status.dump", #"{"id": "\#(statusID)", "metadata": {"name": "counter"}}"#)
        return try Fixtures.write(builder.finished())
    }

    @Test("a status.dump ID that differs from config.dump's is an error")
    func mismatch() throws {
        let manifest = try CheckpointReader.read(path: try Self.archive(statusID: String(repeating: "b", count: 64)))
        let findings = ArchiveValidator.findings(for: manifest)
        #expect(findings.contains { $0.code == "CONTAINER_ID_MISMATCH" && $0.path == "status.dump:id" && $0.severity == .error })
    }

    @Test("a matching status.dump ID is fine")
    func match() throws {
        let manifest = try CheckpointReader.read(path: try Self.archive(
            statusID: "6a2b7e9c7c0c6a0e2da0c82638b0528591e4810e00dc38506c2527633f86fb5c"))
        #expect(!ArchiveValidator.findings(for: manifest).contains { $0.code == "CONTAINER_ID_MISMATCH" })
    }
}
