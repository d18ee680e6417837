import FerryServer
import FerryTestSupport
import Foundation
import Testing

/// The blob store against the catalog: what a crash can leave (a blob no row names, a row whose blob is gone) is
/// found by `ferry fsck`, and repaired, logged and counted by `ferry serve` at start-up.
@Suite("store consistency")
struct StoreConsistencyTests {
    func fsck(_ directory: URL, _ extra: [String] = []) throws -> ProcessResult {
        try Fixtures.ferry(["fsck", "--data-dir", directory.appendingPathComponent("data").path,
                            "--migrations-dir", Fixtures.repositoryRoot.appendingPathComponent("migrations").path] + extra)
    }

    @Test("an orphan blob and a row without its blob are reported by fsck, repaired at start-up, and counted")
    func orphansAndMissingBlobs() throws {
        var server: TestServer? = try TestServer()
        let directory = server!.dataDirectory
        let kept = try #require((try server!.upload(Fixtures.archive("podman-counter-none.tar")).json["checkpoint"] as? [String: Any])?["id"] as? String)
        let lost = try #require((try server!.upload(Fixtures.archive("podman-inpod.tar")).json["checkpoint"] as? [String: Any])?["id"] as? String)
        let blobs = server!.blobsDirectory
        server!.running.stop(timeout: 5)
        server = nil

        // What a kill -9 between a blob's rename and its row's insert leaves, and a blob lost underneath a row.
        let orphanSource = Fixtures.archive("podman-web-tcp.tar")
        let orphan = try sha256(ofFile: orphanSource)
        try FileManager.default.createDirectory(at: blobs.appendingPathComponent(String(orphan.prefix(2))), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: orphanSource, toPath: blobs.appendingPathComponent("\(orphan.prefix(2))/\(orphan)").path)
        try FileManager.default.removeItem(at: blobs.appendingPathComponent("\(lost.prefix(2))/\(lost)"))

        let found = try fsck(directory, ["--json"])
        #expect(found.status == 1, "\(found.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: found.stdoutData) as? [String: Any])
        #expect(report["orphan_blobs"] as? [String] == [orphan])
        #expect(report["rows_without_blob"] as? [String] == [lost])
        #expect(FileManager.default.fileExists(atPath: blobs.appendingPathComponent("\(orphan.prefix(2))/\(orphan)").path),
                "fsck without --repair changes nothing")

        let restarted = try TestServer(reusing: directory)
        #expect(!FileManager.default.fileExists(atPath: blobs.appendingPathComponent("\(orphan.prefix(2))/\(orphan)").path))
        #expect(restarted.log.contains { $0.contains("store check: removed 1 blob") }, "\(restarted.log)")
        let metrics = try restarted.request("GET", "/metrics").text
        #expect(metrics.contains("ferry_store_orphan_blobs_removed_total 1"))
        #expect(metrics.contains("ferry_store_rows_without_blob 1"))
        let gone = try restarted.request("GET", "/api/v1/checkpoints/\(lost)/archive")
        #expect(gone.status == 410)
        #expect(gone.errorCode == "BLOB_MISSING")
        #expect(try restarted.request("GET", "/api/v1/checkpoints/\(kept)/archive", output: "/dev/null").status == 200)

        // A running service holds the directory: fsck may look, not repair; a second service is refused.
        let locked = try fsck(directory, ["--repair"])
        #expect(locked.status == 2)
        #expect(locked.stderr.contains("another Ferry process"), "\(locked.stderr)")
        #expect(throws: (any Error).self) { _ = try TestServer(reusing: directory) }

        // The same bytes uploaded again make the row whole.
        _ = try restarted.upload(Fixtures.archive("podman-inpod.tar"))
        #expect(try restarted.request("GET", "/api/v1/checkpoints/\(lost)/archive", output: "/dev/null").status == 200)
        #expect(try restarted.request("GET", "/metrics").text.contains("ferry_store_rows_without_blob 0"), "the gauge follows the repair")
        let clean = try fsck(directory)
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.contains("consistent"))
    }
}
