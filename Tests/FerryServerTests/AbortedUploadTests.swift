import FerryTestSupport
import Foundation
import Testing

/// A client that goes away mid-upload leaves no catalog row, no blob and no temporary file, and the service
/// keeps serving.
@Suite("aborted uploads")
struct AbortedUploadTests {
    @Test("a client that disconnects half-way leaves nothing behind", arguments: [1_000, 131_072, 200_000])
    func disconnect(sending: Int) throws {
        let server = try TestServer()
        let archive = try Fixtures.uncompressedBytes(of: "podman-counter-none.tar")
        try server.abortedUpload(announced: archive.count, sending: Array(archive.prefix(sending)))
        // Generous: on a loaded machine (the lab's migrations run beside this) the handler may start late.
        let clean = try server.eventually(20) {
            try FileManager.default.contentsOfDirectory(atPath: server.temporaryDirectory.path).isEmpty
        }
        #expect(clean, "the temporary upload file is removed; left: \((try? FileManager.default.contentsOfDirectory(atPath: server.temporaryDirectory.path)) ?? []); log:\n\(server.log.suffix(20).joined(separator: "\n"))")
        #expect(try server.blobFiles().isEmpty)
        #expect(try server.request("GET", "/api/v1/checkpoints").json["total"] as? Int == 0)
        // Still serving, and the same archive uploads fine afterwards.
        #expect(try server.upload(Fixtures.archive("podman-counter-none.tar")).status == 201)
    }
}
