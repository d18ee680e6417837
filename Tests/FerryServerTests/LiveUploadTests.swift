import FerryServer
import FerryTestSupport
import Foundation
import Testing

/// Uploads a node names (`Ferry-Upload-ID`) are readable at `/api/v1/nodes/{node}/uploads/{id}/archive` while they
/// arrive: the service half of a migration's cut-through. The upload is paced by the test over a raw connection, so
/// "while it arrives" is a fact of each assertion, not a race.
@Suite("live uploads")
struct LiveUploadTests {
    static let archiveName = "podman-tcp-established.tar"

    @Test("a named upload is served as it arrives, a waiting reader is woken by new bytes, and the end names the checkpoint")
    func servedWhileArriving() throws {
        let server = try TestServer()
        let archive = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.archive(Self.archiveName))))
        let half = archive.count / 2
        let upload = try PacedUpload(port: server.running.port, path: "/api/v1/checkpoints?node=node-a", total: archive.count,
                                     headers: ["Ferry-Upload-ID: node-a-job-1"])
        try upload.send(archive[..<half])
        let status = "/api/v1/nodes/node-a/uploads/node-a-job-1"
        #expect(try server.eventually(10) { try server.request("GET", status).json["bytes_received"] as? Int == half })
        let state = try server.request("GET", status).json
        #expect(state["state"] as? String == "receiving" && state["upload"] as? String == "node-a/node-a-job-1", "\(state)")

        // What is there so far, while the upload is open.
        let first = try server.request("GET", status + "/archive", headers: ["Range: bytes=0-"])
        #expect(first.status == 206)
        #expect(first.headers["content-range"] == "bytes 0-\(half - 1)/*", "\(first.headers)")
        #expect(first.headers["ferry-upload-state"] == "receiving")
        #expect([UInt8](first.body) == Array(archive[..<half]))
        // Nothing past it yet: 204 after the wait.
        let none = try server.request("GET", status + "/archive?wait=0.2", headers: ["Range: bytes=\(half)-"])
        #expect(none.status == 204 && none.headers["ferry-upload-state"] == "receiving" && none.headers["ferry-upload-received"] == String(half))

        // A reader waiting past the end is answered as soon as bytes come, not at the end of its wait.
        let waiting = ResponseBox()
        let asked = Date()
        let reader = Thread {
            waiting.set(try? server.request("GET", status + "/archive?wait=20", headers: ["Range: bytes=\(half)-"]))
        }
        reader.start()
        usleep(300_000)
        try upload.send(archive[half...])
        let answer = try upload.finish()
        #expect(answer.status == 201, "\(answer.body)")
        let id = try #require((answer.body["checkpoint"] as? [String: Any])?["id"] as? String)
        #expect(id == (try sha256(ofFile: Fixtures.archive(Self.archiveName))))
        #expect(try server.eventually(10) { waiting.value != nil })
        #expect(Date().timeIntervalSince(asked) < 10, "the waiting reader was woken by the bytes")
        let rest = try #require(waiting.value)
        #expect(rest.status == 206)
        #expect(rest.headers["content-range"]?.hasPrefix("bytes \(half)-") == true, "\(rest.headers)")
        #expect([UInt8](rest.body) == Array(archive[half..<(half + rest.body.count)]))

        // Complete: the status and the last answer name the checkpoint; the whole upload reads back byte-identical.
        let done = try server.request("GET", status).json
        #expect(done["state"] as? String == "complete" && done["checkpoint"] as? String == id, "\(done)")
        let end = try server.request("GET", status + "/archive", headers: ["Range: bytes=\(archive.count)-"])
        #expect(end.status == 204 && end.headers["ferry-upload-state"] == "complete" && end.headers["ferry-upload-checkpoint"] == id)
        let whole = try server.request("GET", status + "/archive")
        #expect(whole.status == 206 && whole.headers["content-range"] == "bytes 0-\(archive.count - 1)/\(archive.count)")
        #expect([UInt8](whole.body) == archive)
        let past = try server.request("GET", status + "/archive", headers: ["Range: bytes=\(archive.count + 1)-"])
        #expect(past.status == 416 && past.errorCode == "RANGE_NOT_SATISFIABLE")
    }

    @Test("an upload that breaks off is reported failed to its readers, and leaves nothing in the catalog")
    func brokenOff() throws {
        let server = try TestServer()
        let archive = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.archive(Self.archiveName))))
        let upload = try PacedUpload(port: server.running.port, path: "/api/v1/checkpoints?node=node-a", total: archive.count,
                                     headers: ["Ferry-Upload-ID: job-2"])
        try upload.send(archive[..<1000])
        let status = "/api/v1/nodes/node-a/uploads/job-2"
        #expect(try server.eventually(10) { try server.request("GET", status).json["bytes_received"] as? Int == 1000 })
        upload.abort()
        #expect(try server.eventually(20) { try server.request("GET", status).json["state"] as? String == "failed" })
        let failed = try server.request("GET", status + "/archive", headers: ["Range: bytes=0-"])
        #expect(failed.status == 409 && failed.errorCode == "UPLOAD_FAILED", "\(failed.text)")
        #expect(try server.request("GET", "/api/v1/checkpoints").json["total"] as? Int == 0)
    }

    @Test("upload names are per node and checked; reading one needs a token like any archive")
    func namesAndTokens() throws {
        let server = try TestServer(tokens: true)
        let archive = Fixtures.archive("podman-counter-none.tar")
        // A node token uploads as its own node: the name is under node-a whatever the query says.
        let pushed = try server.request("POST", "/api/v1/checkpoints", token: TestServer.nodeToken, upload: archive,
                                        headers: ["Ferry-Upload-ID: job-3"])
        #expect(pushed.status == 201, "\(pushed.text)")
        let status = "/api/v1/nodes/node-a/uploads/job-3"
        #expect(try server.request("GET", status, token: TestServer.readToken).json["state"] as? String == "complete")
        #expect(try server.request("GET", status).status == 401)
        #expect(try server.request("GET", status + "/archive").status == 401)
        #expect(try server.request("GET", "/api/v1/nodes/node-b/uploads/job-3", token: TestServer.readToken).errorCode == "UPLOAD_NOT_FOUND")
        // Without a source node there is no live upload; a bad name is refused before any byte is stored.
        let anonymous = try server.request("POST", "/api/v1/checkpoints", token: TestServer.writeToken,
                                           upload: Fixtures.archive("podman-web-tcp.tar"), headers: ["Ferry-Upload-ID: job-4"])
        #expect(anonymous.status == 201)
        #expect(try server.request("GET", "/api/v1/nodes/node-a/uploads/job-4", token: TestServer.readToken).errorCode == "UPLOAD_NOT_FOUND")
        let bad = try server.request("POST", "/api/v1/checkpoints", token: TestServer.nodeToken,
                                     upload: Fixtures.archive("podman-volume.tar"), headers: ["Ferry-Upload-ID: ../../etc"])
        #expect(bad.status == 400 && bad.errorCode == "INVALID_UPLOAD_ID", "\(bad.text)")
        #expect(try server.request("GET", "/api/v1/nodes/node-a/uploads/a%20b", token: TestServer.readToken).status == 400)
        #expect(try server.request("GET", "/api/v1/checkpoints", token: TestServer.readToken).json["total"] as? Int == 2)
    }
}

/// One response, handed from a reader thread to the test.
private final class ResponseBox: @unchecked Sendable {
    // @unchecked Sendable invariant: `stored` is only touched with `lock` held.
    private let lock = NSLock()
    private var stored: TestServer.Response?
    func set(_ response: TestServer.Response?) { lock.withLock { stored = response } }
    var value: TestServer.Response? { lock.withLock { stored } }
}
