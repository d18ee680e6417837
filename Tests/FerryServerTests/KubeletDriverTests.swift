import FerryTestSupport
import Foundation
import Testing

/// The kubelet driver against a kubelet double over HTTPS (`Doubles/kubelet_double.py`: the checkpoint API of
/// KEP-2008, its authentication and its error answers), since no kubelet runs here; certificates made with openssl
/// for the run.
@Suite("kubelet driver", .serialized)
final class KubeletDriverTests {
    let directory: URL
    let checkpoints: URL
    let log: URL
    var double: pid_t?
    var port: Int = 0
    static let token = "kubelet-token-0123456789"
    static let archive = Fixtures.archive("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")

    init() throws {
        directory = try Fixtures.temporaryDirectory()
        checkpoints = directory.appendingPathComponent("kubelet-checkpoints")
        log = directory.appendingPathComponent("requests.log")
        try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
        try makeCertificates()
        try Self.token.write(to: file("token"), atomically: true, encoding: .utf8)
        try "forbidden-token".write(to: file("forbidden"), atomically: true, encoding: .utf8)
        let script = Fixtures.repositoryRoot.appendingPathComponent("Tests/FerryServerTests/Doubles/kubelet_double.py").path
        double = try Fixtures.spawn("/usr/bin/python3", [script, file("port").path, file("server.pem").path, file("server.key").path,
                                                         file("ca.pem").path, Self.token, Self.archive, checkpoints.path, log.path],
                                    stdout: file("double.out").path, stderr: file("double.err").path)
        try LabCluster.waitUntil("the kubelet double to listen", timeout: 20) {
            FileManager.default.fileExists(atPath: self.file("port").path)
        }
        port = Int(try String(contentsOf: file("port"), encoding: .utf8)) ?? 0
    }

    deinit {
        if let double { kill(double, SIGKILL); _ = Fixtures.wait(double) }
        try? FileManager.default.removeItem(at: directory)
    }

    func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate (CN=system:node-admin).
    func makeCertificates() throws {
        try TestCertificates.make(in: directory, authority: "kubelet-test-ca", clientCommonName: "system:node-admin")
    }

    var url: String { "https://127.0.0.1:\(port)" }

    func checkpoint(_ container: String, token: String? = "token", ca: Bool = true, client: Bool = false, timeout: Int? = nil) throws -> (ProcessResult, String) {
        let output = file("out-\(UUID().uuidString).tar").path
        var arguments = ["kubelet-checkpoint", "--kubelet-url", url]
        if let token { arguments += ["--kubelet-token-file", file(token).path] }
        if ca { arguments += ["--kubelet-ca-file", file("ca.pem").path] }
        if client { arguments += ["--kubelet-cert-file", file("client.pem").path, "--kubelet-key-file", file("client.key").path] }
        if let timeout { arguments += ["--timeout", String(timeout)] }
        return (try Fixtures.ferry(arguments + [container, output]), output)
    }

    @Test("a checkpoint through the kubelet API: the path and the timeout as the API wants them, the archive copied 0600")
    func checkpointsThroughTheKubelet() throws {
        let (result, output) = try checkpoint("shop/counter-7d9f8b6c5-x2kqz/counter", timeout: 90)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try sha256(ofFile: output) == (try sha256(ofFile: Self.archive)))
        let mode = ((try FileManager.default.attributesOfItem(atPath: output)[.posixPermissions]) as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let request = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").last.map(String.init) ?? ""
        #expect(request.contains(#""path": "/checkpoint/shop/counter-7d9f8b6c5-x2kqz/counter""#), "\(request)")
        #expect(request.contains(#""query": "timeout=90""#) && request.contains(#""auth": "token""#))
        // The kubelet's own file stays where it wrote it (the collector may take it too: same bytes, same checkpoint).
        #expect(try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).count == 1)
        // A client certificate instead of a token.
        let (byCertificate, _) = try checkpoint("shop/pod/counter", token: nil, client: true)
        #expect(byCertificate.status == 0, "\(byCertificate.stderr)")
    }

    @Test("each refusal has its code and exit status, with the kubelet's own words")
    func refusals() throws {
        let cases: [(String, String?, Bool, Int?, Int32, String)] = [
            ("shop/pod/counter", nil, true, nil, 10, "KUBELET_UNAUTHORIZED"),
            ("shop/pod/counter", "forbidden", true, nil, 10, "KUBELET_UNAUTHORIZED"),
            ("shop/pod/missing", "token", true, nil, 11, "KUBELET_NOT_FOUND"),
            ("shop/pod/broken", "token", true, nil, 12, "KUBELET_CHECKPOINT_FAILED"),
            ("shop/pod/slow", "token", true, 1, 13, "KUBELET_TIMEOUT"),  // answers after 5 s; the call gives up after 2
            ("shop/pod/counter", "token", false, nil, 14, "KUBELET_UNREACHABLE"),  // the test CA is not trusted
        ]
        for (container, token, ca, timeout, status, code) in cases {
            let (result, _) = try checkpoint(container, token: token, ca: ca, timeout: timeout)
            #expect(result.status == status, "\(container) \(token ?? "-"): \(result.stderr)")
            #expect(result.stderr.hasSuffix("[\(code)]\n") && result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        }
        let (broken, _) = try checkpoint("shop/pod/broken")
        #expect(broken.stderr.contains("criu failed"), "the runtime's message: \(broken.stderr)")
        let (forbidden, _) = try checkpoint("shop/pod/counter", token: "forbidden")
        #expect(forbidden.stderr.contains("subresource=checkpoint"))
    }

    @Test("an agent with --driver kubelet takes checkpoint jobs for NAMESPACE/POD/CONTAINER: catalogued from its node, or failed with the kubelet's code")
    func agentJobs() throws {
        let server = try TestServer(tokens: true)
        let agentPort = try Fixtures.freeLoopbackPort()
        let agent = try Fixtures.spawn(Fixtures.ferryBinary, [
            "agent", "--server", server.base, "--node", "node-a", "--token", TestServer.nodeToken,
            "--listen", "127.0.0.1:\(agentPort)", "--driver", "kubelet", "--kubelet-url", url,
            "--kubelet-token-file", file("token").path, "--kubelet-ca-file", file("ca.pem").path,
            "--work-dir", file("agent").path, "--heartbeat", "1",
        ], stdout: file("agent.out").path, stderr: file("agent.err").path)
        defer { kill(agent, SIGKILL); _ = Fixtures.wait(agent) }
        func agentCall(_ method: String, _ path: String, body: String? = nil) throws -> [String: Any] {
            var arguments = ["-sS", "--max-time", "10", "-X", method, "-H", "Authorization: Bearer \(TestServer.nodeToken)"]
            if let body { arguments += ["-H", "Content-Type: application/json", "--data", body] }
            let result = try Fixtures.run("/usr/bin/curl", arguments + ["http://127.0.0.1:\(agentPort)\(path)"])
            return (try? JSONSerialization.jsonObject(with: result.stdoutData)) as? [String: Any] ?? [:]
        }
        try LabCluster.waitUntil("the agent to answer", timeout: 30) { try agentCall("GET", "/v1/jobs/none")["error"] != nil }
        _ = try agentCall("POST", "/v1/jobs", body: #"{"id": "forensic-1", "kind": "checkpoint", "container": "shop/counter-7d9f8b6c5-x2kqz/counter"}"#)
        _ = try agentCall("POST", "/v1/jobs", body: #"{"id": "forensic-2", "kind": "checkpoint", "container": "shop/pod/missing"}"#)
        let done = try LabCluster.waitFor("the checkpoint job to succeed", timeout: 30) { () -> [String: Any]? in
            let job = try agentCall("GET", "/v1/jobs/forensic-1")
            return job["state"] as? String == "succeeded" ? job : nil
        }
        let id = try #require(done["checkpoint"] as? String, "\(done)")
        #expect(id == (try sha256(ofFile: Self.archive)))
        #expect(done["container_running"] as? Bool == true, "the kubelet leaves the container running")
        let catalogued = try server.request("GET", "/api/v1/checkpoints/\(id)", token: TestServer.readToken)
        let checkpoint = catalogued.json["checkpoint"] as? [String: Any]
        #expect(checkpoint?["source_node"] as? String == "node-a" && checkpoint?["engine"] as? String == "CRI-O")
        let failed = try LabCluster.waitFor("the job on a missing container to fail", timeout: 30) { () -> [String: Any]? in
            let job = try agentCall("GET", "/v1/jobs/forensic-2")
            return job["state"] as? String == "failed" ? job : nil
        }
        #expect((failed["error"] as? [String: Any])?["code"] as? String == "KUBELET_NOT_FOUND", "\(failed)")

        // The same through the service, without a migration: ferry checkpoint --node, and the API it uses.
        try LabCluster.waitUntil("node-a to be up", timeout: 30) {
            let nodes = try server.request("GET", "/api/v1/nodes", token: TestServer.readToken)
            return (nodes.json["items"] as? [[String: Any]] ?? []).contains { $0["name"] as? String == "node-a" && $0["up"] as? Bool == true }
        }
        let cli = try Fixtures.ferry(["checkpoint", "--server", server.base, "--token", TestServer.writeToken, "--node", "node-a",
                                      "--label", "case=forensic", "shop/counter-7d9f8b6c5-x2kqz/counter"])
        #expect(cli.status == 0, "\(cli.stderr)")
        // The double hands out the same archive every time: the same bytes are the same checkpoint.
        #expect(cli.stdout == "sha256:\(id)\n")
        #expect(server.log.contains { $0.contains("checkpoint ckpt-") && $0.contains("handed to its agent") })
        let refused = try Fixtures.ferry(["checkpoint", "--server", server.base, "--token", TestServer.writeToken, "--node", "node-a", "shop/pod/missing"])
        #expect(refused.status == 1 && refused.stderr.hasSuffix("[KUBELET_NOT_FOUND]\n"), "\(refused.stderr)")
        let readOnly = try Fixtures.ferry(["checkpoint", "--server", server.base, "--token", TestServer.readToken, "--node", "node-a", "shop/pod/counter"])
        #expect(readOnly.status == 1 && readOnly.stderr.contains("[FORBIDDEN]"), "\(readOnly.stderr)")
        let unknownNode = try Fixtures.ferry(["checkpoint", "--server", server.base, "--token", TestServer.writeToken, "--node", "node-z", "shop/pod/counter"])
        #expect(unknownNode.status == 1 && unknownNode.stderr.contains("[NODE_NOT_FOUND]"), "\(unknownNode.stderr)")
    }
}
