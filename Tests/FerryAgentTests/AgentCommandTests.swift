import FerryTestSupport
import Foundation
import Testing

/// `ferry agent` as a process: configuration errors, and a run from start to SIGTERM.
@Suite("ferry agent command")
struct AgentCommandTests {
    @Test("bad configurations exit 1 with one line on stderr")
    func badConfiguration() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var environment = ProcessInfo.processInfo.environment
        for name in ["FERRY_SERVER", "FERRY_NODE", "FERRY_TOKEN"] { environment[name] = nil }
        let work = ["--work-dir", directory.appendingPathComponent("w").path]
        let cases: [([String], String)] = [
            (["--node", "n"], "give --server URL"),
            (["--server", "http://127.0.0.1:1"], "give --node NAME"),
            (["--server", "ftp://x", "--node", "n"], "--server must be an http(s) URL"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--listen", "0.0.0.0:8090", "--advertise", "http://10.0.0.1:8090"], "without a token"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--listen", "0.0.0.0:8090", "--token", "t"], "--advertise"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--driver", "docker"], "--driver is podman, criu, command or kubelet"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--driver", "kubelet"], "needs --kubelet-url"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--kubelet-url", "https://127.0.0.1:10250"], "go with --driver kubelet"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--driver", "kubelet", "--kubelet-url", "https://127.0.0.1:10250",
              "--kubelet-token-file", "/nonexistent"], "cannot read /nonexistent"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--collect", "/nonexistent"], "is not a directory"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--after-upload", "shred"], "--after-upload is keep or remove"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--driver", "command"], "needs --restore-command"),
            (["--server", "http://127.0.0.1:1", "--node", "bad name"], "--node is letters"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--heartbeat", "0"], "--heartbeat"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--facts-file", "/nonexistent"], "cannot read the facts file"),
            (["--server", "http://127.0.0.1:1", "--node", "n", "--max-download-rate", "fast"], "fast is not a size"),
        ]
        for (arguments, message) in cases {
            let result = try Fixtures.run(Fixtures.ferryBinary, ["agent"] + arguments + work, environment: environment)
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("ferry: ") && result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments): \(result.stderr)")
        }
    }

    @Test("ferry agent heartbeats, serves its API and exits 0 on SIGTERM; the environment supplies the server, node and token")
    func runsUntilSIGTERM() throws {
        let harness = try AgentHarness()
        var environment = ProcessInfo.processInfo.environment
        environment["FERRY_SERVER"] = harness.service.url
        environment["FERRY_NODE"] = "node-env"
        environment["FERRY_TOKEN"] = AgentHarness.token
        let log = harness.directory.appendingPathComponent("agent.log").path
        let child = try Fixtures.spawn(Fixtures.ferryBinary, [
            "agent", "--listen", "127.0.0.1:0", "--driver", "command", "--restore-command", harness.restoreTemplate,
            "--work-dir", harness.workDirectory.path, "--heartbeat", "0.2", "--max-download-rate", "10M",
        ], stdout: harness.directory.appendingPathComponent("agent.out").path, stderr: log, environment: environment)
        var exited = false
        defer { if !exited { kill(child, SIGKILL); _ = Fixtures.wait(child) } }
        try waitUntil("a heartbeat arrived") { !harness.service.heartbeats.current.isEmpty }
        let beat = try #require(harness.service.receivedHeartbeats.first)
        #expect(beat.node == "node-env" && beat.authorization == "Bearer \(AgentHarness.token)")
        let agentURL = try #require(beat.body["agent_url"] as? String)
        #expect(agentURL.hasPrefix("http://127.0.0.1:") && !agentURL.hasSuffix(":0"))
        let posted = try curl("POST", agentURL + "/v1/jobs", token: AgentHarness.token, json: harness.restoreJob("cli-1"))
        #expect(posted.status == 202)
        try waitUntil("the job succeeded") {
            try curl("GET", agentURL + "/v1/jobs/cli-1", token: AgentHarness.token).json["state"] as? String == "succeeded"
        }
        kill(child, SIGTERM)
        let status = Fixtures.wait(child)
        exited = true
        #expect(status == 0)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("ferry agent stopped"))
        #expect(!text.contains(AgentHarness.token), "the token is never logged")
    }
}
