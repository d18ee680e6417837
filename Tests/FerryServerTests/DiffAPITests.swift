import FerryTestSupport
import Foundation
import Testing

/// `GET /api/v1/checkpoints/{a}/diff/{b}` and `ferry diff --server` on a real service holding the shipped series
/// pair: the same JSON and text checkpointctl printed for the archives, and the refusals with their codes.
@Suite("checkpoint diff API")
struct DiffAPITests {
    static let shippedQuery = "?files=true&sockets=true&ps_tree_cmd=true"

    /// A service with both series checkpoints and one of another container.
    static func catalog(tokens: Bool = false) throws -> (server: TestServer, a: String, b: String, other: String) {
        let server = try TestServer(tokens: tokens)
        func upload(_ name: String) throws -> String {
            let response = try server.upload(Fixtures.archive(name), token: tokens ? TestServer.writeToken : nil)
            return try #require((response.json["checkpoint"] as? [String: Any])?["id"] as? String, "\(response.text)")
        }
        return (server, try upload("podman-series-1.tar"), try upload("podman-series-2.tar"), try upload("podman-counter-none.tar"))
    }

    @Test("the diff route answers checkpointctl's JSON for the catalogued pair, its arrays compared as sets")
    func jsonAgrees() throws {
        let (server, a, b, _) = try Self.catalog()
        let response = try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(b)\(Self.shippedQuery)")
        #expect(response.status == 200, "\(response.text)")
        #expect(response.headers["content-type"] == "application/json")
        #expect(try DiffComparison.canonicalJSON(response.body) == DiffComparison.canonicalJSON(try DiffComparison.reference("json")))
        // ID prefixes work as everywhere, and `1` means true.
        let prefixed = try server.request("GET", "/api/v1/checkpoints/\(a.prefix(12))/diff/\(b.prefix(12))?files=1&sockets=1&ps_tree_cmd=1")
        #expect(prefixed.body == response.body)
        // Without flags: no file or socket section, no command lines.
        let plain = try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(b)")
        #expect(plain.json["file_changes"] == nil && plain.json["socket_changes"] == nil)
        #expect(!plain.text.contains("cmdline"))
        #expect(plain.json["summary"] as? String == "Checkpoint comparison for container cd-series\nProcesses: +3 -1 ~0\nMemory: +0.12 MB")
    }

    @Test("the diff reads the inspections stored at ingest, not the archives: it answers with the blobs gone")
    func noArchiveRead() throws {
        let (server, a, b, _) = try Self.catalog()
        let expected = try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(b)\(Self.shippedQuery)")
        for file in try server.blobFiles() { try FileManager.default.removeItem(at: server.blobsDirectory.appendingPathComponent(file)) }
        #expect(try server.request("GET", "/api/v1/checkpoints/\(a)/archive").status == 410, "the archive is gone")
        let response = try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(b)\(Self.shippedQuery)")
        #expect(response.status == 200 && response.body == expected.body)
    }

    @Test("format=tree answers checkpointctl's text")
    func treeAgrees() throws {
        let (server, a, b, _) = try Self.catalog()
        let response = try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(b)\(Self.shippedQuery)&format=tree")
        #expect(response.status == 200)
        #expect(response.headers["content-type"]?.hasPrefix("text/plain") == true)
        let differences = DiffComparison.lineDifferences(response.text, String(decoding: try DiffComparison.reference("txt"), as: UTF8.self))
        #expect(differences.isEmpty, "\(differences.joined(separator: "\n"))")
    }

    @Test("unknown IDs, different containers and bad flags are refused with their codes")
    func refusals() throws {
        let (server, a, b, other) = try Self.catalog()
        let unknown = try server.request("GET", "/api/v1/checkpoints/\(a)/diff/0000000000000000")
        #expect(unknown.status == 404 && unknown.errorCode == "CHECKPOINT_NOT_FOUND", "\(unknown.text)")
        let unknownA = try server.request("GET", "/api/v1/checkpoints/ffffffffffffffff/diff/\(b)")
        #expect(unknownA.status == 404 && unknownA.errorCode == "CHECKPOINT_NOT_FOUND")
        let mismatch = try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(other)")
        #expect(mismatch.status == 409 && mismatch.errorCode == "CONTAINER_MISMATCH", "\(mismatch.text)")
        let message = (mismatch.json["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("cd-series") && message.contains("counter") && !message.contains("\n"))
        for query in ["?files=yes", "?format=xml"] {
            let bad = try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(b)\(query)")
            #expect(bad.status == 400 && bad.errorCode == "INVALID_QUERY", "\(query): \(bad.text)")
        }
    }

    @Test("the route needs a read token when tokens are on")
    func tokens() throws {
        let (server, a, b, _) = try Self.catalog(tokens: true)
        #expect(try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(b)").status == 401)
        #expect(try server.request("GET", "/api/v1/checkpoints/\(a)/diff/\(b)", token: TestServer.readToken).status == 200)
    }

    @Test("ferry diff --server prints what ferry diff prints for the archives, and one line for a refusal")
    func commandLine() throws {
        let (server, a, b, other) = try Self.catalog(tokens: true)
        let flags = ["--ps-tree-cmd", "--files", "--sockets"]
        let remote = ["--server", server.base, "--token", TestServer.readToken]
        let text = try Fixtures.ferry(["diff"] + flags + remote + [a, b])
        #expect(text.status == 0, "\(text.stderr)")
        let local = try Fixtures.ferry(["diff"] + flags + [Fixtures.archive("podman-series-1.tar"), Fixtures.archive("podman-series-2.tar")])
        #expect(text.stdout == local.stdout)
        #expect(DiffComparison.lineDifferences(text.stdout, String(decoding: try DiffComparison.reference("txt"), as: UTF8.self)).isEmpty)
        let json = try Fixtures.ferry(["diff", "--format", "json"] + flags + remote + [String(a.prefix(12)), b])
        #expect(json.status == 0)
        #expect(try DiffComparison.canonicalJSON(json.stdoutData) == DiffComparison.canonicalJSON(try DiffComparison.reference("json")))
        let unchanged = try Fixtures.ferry(["diff", "--show-unchanged"] + remote + [a, b])
        #expect(unchanged.stdout.contains("│ └── [= PID 1]  sh\n"))

        for (arguments, code) in [([a, other], "CONTAINER_MISMATCH"), ([a, "0000000000000000"], "CHECKPOINT_NOT_FOUND")] {
            let refused = try Fixtures.ferry(["diff"] + remote + arguments)
            #expect(refused.status == 1)
            #expect(refused.stdout.isEmpty)
            #expect(refused.stderr.split(separator: "\n").count == 1 && refused.stderr.hasSuffix("[\(code)]\n"), "\(refused.stderr)")
        }
        let noToken = try Fixtures.ferry(["diff", "--server", server.base, a, b])
        #expect(noToken.status == 1 && noToken.stderr.hasSuffix("[UNAUTHORIZED]\n"))
    }
}
