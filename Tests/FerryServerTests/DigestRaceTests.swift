@testable import FerryServer
import CheckpointArchive
import FerryCatalog
import FerryTestSupport
import Foundation
import Testing

/// A catalog row and its blob change together: a delete racing an upload of the same bytes ends with both or
/// neither, never a row whose archive is gone or a blob no row names.
@Suite("ingest and delete of the same digest")
struct DigestRaceTests {
    @Test("a delete that arrives between an upload's blob commit and its row insert waits, and leaves both in step")
    func deleteInTheUploadsWindow() throws {
        let directory = try Fixtures.temporaryDirectory()
        let catalog = try Catalog(path: directory.appendingPathComponent("catalog.db").path,
                                  migrationsDirectory: Fixtures.repositoryRoot.appendingPathComponent("migrations").path)
        let blobs = try BlobStore(dataDirectory: directory.appendingPathComponent("data").path)
        let archive = Fixtures.archive("podman-counter-none.tar")
        let plain = Ingestor(catalog: catalog, blobs: blobs, maximumSize: 1 << 30)
        let id = try plain.ingest(from: FileDescriptorSource(path: archive), metadata: IngestMetadata()).record.id

        // The same bytes again, paused after their blob commit (the blob exists, so the upload keeps it) …
        let committed = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        var paused = plain
        paused.afterBlobCommit = {
            committed.signal()
            _ = proceed.wait(timeout: .now() + 10)
        }
        let uploadDone = DispatchSemaphore(value: 0)
        let pausedIngestor = paused
        Thread.detachNewThread {
            _ = try? pausedIngestor.ingest(from: FileDescriptorSource(path: archive), metadata: IngestMetadata())
            uploadDone.signal()
        }
        #expect(committed.wait(timeout: .now() + 10) == .success)
        // … and a delete in that window: it must wait for the upload to finish rather than run in between.
        let deleteDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? CheckpointDeletion.delete(id, cause: DeletionCause(by: "test", reason: "race"), catalog: catalog, blobs: blobs)
            deleteDone.signal()
        }
        #expect(deleteDone.wait(timeout: .now() + 0.5) == .timedOut, "the delete waits for the upload's row")
        proceed.signal()
        #expect(uploadDone.wait(timeout: .now() + 10) == .success)
        #expect(deleteDone.wait(timeout: .now() + 10) == .success)

        let row = (try? catalog.checkpoint(id)) != nil
        #expect(row == blobs.contains(id), "row \(row), blob \(blobs.contains(id))")
    }

    @Test("uploads and deletes of the same archive over HTTP, raced 60 times, keep rows and blobs in step")
    func uploadRacesDeleteOverHTTP() throws {
        let server = try TestServer()
        let archive = Fixtures.archive("podman-counter-none.tar")
        let first = try server.upload(archive)
        let id = try #require((first.json["checkpoint"] as? [String: Any])?["id"] as? String)
        let blob = server.blobsDirectory.appendingPathComponent("\(id.prefix(2))/\(id)").path
        for round in 0..<60 {
            if !FileManager.default.fileExists(atPath: blob) { _ = try server.upload(archive) }
            let group = DispatchGroup()
            let works: [@Sendable () -> Void] = [{ _ = try? server.request("DELETE", "/api/v1/checkpoints/\(id)") },
                                                 { _ = try? server.upload(archive) }]
            for work in works {
                group.enter()
                Thread.detachNewThread {
                    work()
                    group.leave()
                }
            }
            group.wait()
            let row = try server.request("GET", "/api/v1/checkpoints/\(id)").status == 200
            #expect(row == FileManager.default.fileExists(atPath: blob), "round \(round)")
            if row {
                #expect(try server.request("GET", "/api/v1/checkpoints/\(id)/archive", output: "/dev/null").status == 200)
            }
        }
    }
}
