import FerryTestSupport
import Foundation
import Testing

/// Migration end to end: the service and two agents ("node-a", "node-b") as separate `ferry` processes on
/// loopback, the `command` driver pointed at a script that checks the archive it receives (digest, layout) and
/// records the options. Every shipped archive moves from node A to node B, through the API and `ferry migrate`;
/// an agent killed mid-transfer, a service restarted mid-migration, a target that is down and a preflight error
/// are each handled.
@Suite("migration end to end", .serialized)
final class MigrationEndToEndTests {
    let directory: URL
    let tokens: URL
    let script: URL
    let records: URL
    var checkpointScript: URL
    var servicePort: UInt16 = 0
    var service: pid_t = 0
    var agents: [String: (pid: pid_t, port: UInt16)] = [:]

    static let adminToken = "admin-token-0123456789abcdef"
    static let nodeTokens = ["node-a": "node-a-token-0123456789abcdef", "node-b": "node-b-token-0123456789abcdef"]
    var base: String { "http://127.0.0.1:\(servicePort)" }

    init() throws {
        directory = try Fixtures.temporaryDirectory()
        tokens = directory.appendingPathComponent("tokens")
        try """
            admin \(Self.adminToken) operator
            node \(Self.nodeTokens["node-a"]!) node-a
            node \(Self.nodeTokens["node-b"]!) node-b
            """.write(to: tokens, atomically: true, encoding: .utf8)
        chmod(tokens.path, 0o600)
        records = directory.appendingPathComponent("restored.txt")
        // The "runtime": checks the archive it is given and records what it restored with which options.
        script = directory.appendingPathComponent("restore.sh")
        try Fixtures.writeScript("""
            #!/bin/sh
            set -e
            archive="$1"; options="$2"; node="$3"
            [ -f "$archive" ] || { echo "no archive at $archive" >&2; exit 3; }
            tar -tf "$archive" | grep -q '^checkpoint/' || { echo "not a checkpoint archive" >&2; exit 4; }
            tar -tf "$archive" | grep -qx 'config.dump' || { echo "no config.dump" >&2; exit 4; }
            digest=$(sha256sum "$archive" | cut -d' ' -f1)
            case "$options" in *'"fail":true'*) echo "runtime says no" >&2; exit 7;; esac
            case "$options" in *'"slow":true'*) sleep 3;; esac
            echo "$node $digest $options" >> "\(records.path)"
            echo "restored-container-id-$digest"
            """, to: script)
        // The "runtime" of node-a's checkpoints: writes a real checkpoint archive where the agent asks.
        checkpointScript = directory.appendingPathComponent("checkpoint.sh")
        try Fixtures.writeScript("""
            #!/bin/sh
            set -e
            container="$1"; output="$2"
            [ "$container" = "web" ] || { echo "no such container: $container" >&2; exit 5; }
            cp "\(Fixtures.archive("podman-web-tcp.tar"))" "$output"
            """, to: checkpointScript)
        try startService()
        try startAgent("node-a")
        try startAgent("node-b", facts: #"{"runtimes": ["runc"], "ips_in_use": ["10.89.0.42"]}"#)
        try waitForNodes(["node-a", "node-b"])
    }

    deinit {
        for (_, agent) in agents { kill(agent.pid, SIGKILL); _ = Fixtures.wait(agent.pid) }
        kill(service, SIGKILL)
        _ = Fixtures.wait(service)
    }

    // MARK: Processes

    func startService() throws {
        if servicePort == 0 { servicePort = try ServeCommandTests.freePort() }
        service = try Fixtures.spawn(Fixtures.ferryBinary, [
            "serve", "--listen", "127.0.0.1:\(servicePort)", "--data-dir", directory.appendingPathComponent("service").path,
            "--tokens", tokens.path, "--node-timeout", "3",
            "--migrations-dir", Fixtures.repositoryRoot.appendingPathComponent("migrations").path,
            "--web-root", Fixtures.repositoryRoot.appendingPathComponent("web").path,
        ], stdout: directory.appendingPathComponent("service.out").path,
           stderr: directory.appendingPathComponent("service-\(Date().timeIntervalSince1970).log").path)
        try waitUntil("the service answers") { try curl("GET", "/healthz").status == 200 }
    }

    func startAgent(_ node: String, facts: String = #"{"runtimes": ["runc"]}"#, extra: [String] = []) throws {
        let port = try agents[node]?.port ?? ServeCommandTests.freePort()
        let factsFile = directory.appendingPathComponent("\(node)-facts.json")
        try facts.write(to: factsFile, atomically: true, encoding: .utf8)
        let pid = try Fixtures.spawn(Fixtures.ferryBinary, [
            "agent", "--server", base, "--node", node, "--token", Self.nodeTokens[node]!,
            "--listen", "127.0.0.1:\(port)", "--driver", "command",
            "--restore-command", "\(script.path) {archive} {options_json} \(node)",
            "--checkpoint-command", "\(checkpointScript.path) {container} {output}",
            "--work-dir", directory.appendingPathComponent("agent-\(node)").path, "--heartbeat", "1",
            "--facts-file", factsFile.path,
        ] + extra, stdout: directory.appendingPathComponent("\(node).out").path,
           stderr: directory.appendingPathComponent("\(node)-\(Date().timeIntervalSince1970).log").path)
        agents[node] = (pid, port)
    }

    func stopAgent(_ node: String, signal: Int32 = SIGKILL) {
        guard let agent = agents[node] else { return }
        kill(agent.pid, signal)
        _ = Fixtures.wait(agent.pid)
    }

    func waitForNodes(_ names: [String], up: Bool = true) throws {
        try waitUntil("nodes \(names) \(up ? "up" : "down")") {
            let nodes = (try curl("GET", "/api/v1/nodes").json["items"] as? [[String: Any]]) ?? []
            return names.allSatisfy { name in nodes.contains { $0["name"] as? String == name && ($0["up"] as? Bool) == up } }
        }
    }

    func waitUntil(_ what: String, seconds: Double = 30, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return }
            usleep(100_000)
        }
        throw FixtureError("timed out waiting until \(what)")
    }

    // MARK: HTTP

    struct Response {
        var status: Int
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    /// A request to the service, or with `base` to an agent's own API.
    func curl(_ method: String, _ path: String, json: String? = nil, token: String = adminToken, base: String? = nil) throws -> Response {
        let out = try Fixtures.temporaryDirectory().appendingPathComponent("body")
        var arguments = ["-sS", "--max-time", "20", "-X", method, "-o", out.path, "-w", "%{http_code}",
                         "-H", "Authorization: Bearer \(token)"]
        if let json { arguments += ["-H", "Content-Type: application/json", "--data-binary", json] }
        let result = try Fixtures.run("/usr/bin/curl", arguments + [(base ?? self.base) + path])
        guard result.status == 0, let status = Int(result.stdout) else { throw FixtureError("curl failed: \(result.stderr)") }
        return Response(status: status, body: (try? Data(contentsOf: out)) ?? Data())
    }

    func push(_ name: String, node: String = "node-a") throws -> String {
        let push = try Fixtures.ferry(["push", "--server", base, "--token", Self.adminToken, "--node", node, Fixtures.archive(name)])
        #expect(push.status == 0, "\(push.stderr)")
        return String(push.stdout.dropFirst("sha256:".count).prefix(64))
    }

    func migrate(_ checkpoint: String, to node: String, options: String) throws -> String {
        let response = try curl("POST", "/api/v1/migrations", json: #"{"checkpoint": "\#(checkpoint)", "target": "\#(node)", "options": \#(options), "timeout_seconds": 120}"#)
        #expect(response.status == 201, "\(String(decoding: response.body, as: UTF8.self))")
        return response.json["id"] as? String ?? ""
    }

    func finished(_ id: String, seconds: Double = 60) throws -> [String: Any] {
        var migration: [String: Any] = [:]
        try waitUntil("migration \(id) finishes", seconds: seconds) {
            migration = try curl("GET", "/api/v1/migrations/\(id)").json
            return ["succeeded", "failed", "cancelled"].contains(migration["state"] as? String ?? "")
        }
        return migration
    }

    /// A request to an agent's own API (its token is the node's).
    func agentCurl(_ node: String, _ method: String, _ path: String, json: String? = nil) throws -> Response {
        try curl(method, path, json: json, token: Self.nodeTokens[node]!, base: "http://127.0.0.1:\(agents[node]!.port)")
    }

    /// Starts node-a's upload of a shipped archive under `uploadID` and sends its first half.
    func halfUploaded(_ name: String, as uploadID: String) throws -> (archive: [UInt8], id: String, half: Int, upload: PacedUpload) {
        let path = Fixtures.archive(name)
        let archive = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let upload = try PacedUpload(port: servicePort, total: archive.count,
                                     headers: ["Authorization: Bearer \(Self.nodeTokens["node-a"]!)", "Ferry-Upload-ID: \(uploadID)"])
        try upload.send(archive[..<(archive.count / 2)])
        return (archive, try sha256(ofFile: path), archive.count / 2, upload)
    }

    /// Waits for an agent's job to finish and returns its status.
    func agentJob(_ node: String, _ id: String) throws -> [String: Any] {
        var job: [String: Any] = [:]
        try waitUntil("job \(id) on \(node) finishes") {
            job = try agentCurl(node, "GET", "/v1/jobs/\(id)").json
            return ["succeeded", "failed"].contains(job["state"] as? String ?? "")
        }
        return job
    }

    static func messages(_ migration: [String: Any]) -> [String] {
        (migration["events"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1
    }

    func restored() -> [String] {
        ((try? String(contentsOf: records, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    // MARK: Tests

    @Test("every shipped archive moves from node A to node B through the API, and through ferry migrate --wait")
    func everyArchive() throws {
        var expected: [String] = []
        for (index, name) in Fixtures.checkpointArchives.enumerated() {
            let id = try push(name)
            expected.append(id)
            if index % 3 == 0 {
                let cli = try Fixtures.ferry(["migrate", "--server", base, "--token", Self.adminToken, "--checkpoint", id,
                                              "--to", "node-b", "--name", "copy-\(index)", "--tcp-close", "--wait", "--json",
                                              "--timeout", "60"])
                #expect(cli.status == 0, "\(name): \(cli.stderr)")
                let migration = try #require(try JSONSerialization.jsonObject(with: cli.stdoutData) as? [String: Any])
                #expect(migration["state"] as? String == "succeeded")
                #expect(cli.stderr.contains("restoring"), "progress is printed")
            } else {
                let migration = try finished(try migrate(id, to: "node-b", options: #"{"name": "copy-\#(index)", "tcp_close": true}"#))
                #expect(migration["state"] as? String == "succeeded", "\(name): \(migration["error"] ?? "")")
                #expect(((migration["result"] as? [String: Any])?["container_id"] as? String)?.hasSuffix(id) == true)
                let events = (migration["events"] as? [[String: Any]] ?? []).compactMap { $0["state"] as? String }
                #expect(events.contains("transferring") && events.contains("restoring") && events.last == "succeeded", "\(events)")
            }
        }
        let lines = restored()
        for id in expected {
            let line = lines.first { $0.contains(id) }
            #expect(line?.hasPrefix("node-b \(id) ") == true, "the script on node B saw the archive with its digest")
        }
        #expect(lines.contains { $0.contains(#""name":"copy-1""#) && $0.contains(#""tcp_close":true"#) }, "options reach the driver")

        // The same request again is the same migration while it is unfinished, and always with an Idempotency-Key.
        let again = try curl("POST", "/api/v1/migrations", json: #"{"checkpoint": "\#(expected[0])", "target": "node-b", "options": {"slow": true, "name": "again"}}"#)
        let repeatRequest = try curl("POST", "/api/v1/migrations", json: #"{"checkpoint": "\#(expected[0])", "target": "node-b", "options": {"slow": true, "name": "again"}}"#)
        #expect(again.status == 201)
        #expect(repeatRequest.status == 200)
        #expect(again.json["id"] as? String == repeatRequest.json["id"] as? String)
        _ = try finished(again.json["id"] as? String ?? "")
    }

    @Test("a running container is checkpointed on node A, catalogued, and restored on node B")
    func liveContainer() throws {
        let cli = try Fixtures.ferry(["migrate", "--server", base, "--token", Self.adminToken, "--container", "web",
                                      "--from", "node-a", "--to", "node-b", "--name", "web-2", "--leave-running",
                                      "--wait", "--json", "--timeout", "60"])
        #expect(cli.status == 0, "\(cli.stderr)")
        let migration = try #require(try JSONSerialization.jsonObject(with: cli.stdoutData) as? [String: Any])
        #expect(migration["state"] as? String == "succeeded")
        let checkpoint = try #require(migration["checkpoint"] as? String)
        #expect(checkpoint == (try sha256(ofFile: Fixtures.archive("podman-web-tcp.tar"))))
        #expect(cli.stderr.contains("checkpointing web on node-a"))
        let catalogued = try curl("GET", "/api/v1/checkpoints/\(checkpoint)")
        #expect((catalogued.json["checkpoint"] as? [String: Any])?["source_node"] as? String == "node-a")
        #expect(restored().contains { $0.hasPrefix("node-b \(checkpoint) ") && $0.contains("web-2") })
        // Cut-through: node-b was told to fetch the upload as it arrived, and restored that file.
        #expect(Self.messages(migration).contains { $0.contains("archive verified on node-b (fetched while it was uploaded)") },
                "\(Self.messages(migration))")
        #expect((migration["options"] as? [String: Any])?["cut_through"] == nil)

        // Without cut-through the target downloads after the upload, as before.
        let plain = try Fixtures.ferry(["migrate", "--server", base, "--token", Self.adminToken, "--container", "web",
                                        "--from", "node-a", "--to", "node-b", "--name", "web-3", "--leave-running",
                                        "--no-cut-through", "--wait", "--json", "--timeout", "60"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let plainMigration = try #require(try JSONSerialization.jsonObject(with: plain.stdoutData) as? [String: Any])
        #expect((plainMigration["options"] as? [String: Any])?["cut_through"] as? Bool == false)
        #expect(Self.messages(plainMigration).contains { $0.hasPrefix("archive verified on node-b; restoring") }, "\(Self.messages(plainMigration))")
        #expect(restored().contains { $0.hasPrefix("node-b \(checkpoint) ") && $0.contains("web-3") })

        let missing = try Fixtures.ferry(["migrate", "--server", base, "--token", Self.adminToken, "--container", "nope",
                                          "--from", "node-a", "--to", "node-b", "--wait", "--timeout", "60"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("[CHECKPOINT_FAILED]"), "\(missing.stderr)")
    }

    @Test("node B fetches node A's upload while it arrives; a restore job takes that file only when it is the archive it was told")
    func prefetchWhileUploading() throws {
        let (archive, id, half, upload) = try halfUploaded("podman-tcp-established.tar", as: "paced-1")
        // What the service asks of the target when the source's checkpoint job starts uploading.
        let asked = try agentCurl("node-b", "POST", "/v1/prefetch", json: #"{"node": "node-a", "upload": "paced-1"}"#)
        #expect(asked.status == 202 && asked.json["started"] as? Bool == true, "\(String(decoding: asked.body, as: UTF8.self))")
        let twice = try agentCurl("node-b", "POST", "/v1/prefetch", json: #"{"node": "node-a", "upload": "paced-1"}"#)
        #expect(twice.status == 200 && twice.json["started"] as? Bool == false, "a second request changes nothing")
        #expect(try agentCurl("node-b", "POST", "/v1/prefetch", json: #"{"node": "../x", "upload": "paced-1"}"#).status == 400)

        let prefetch = directory.appendingPathComponent("agent-node-b/prefetch")
        let partial = prefetch.appendingPathComponent("node-a@paced-1.partial").path
        try waitUntil("node-b holds the half that has arrived") { Self.size(partial) == half }
        #expect(try curl("GET", "/api/v1/nodes/node-a/uploads/paced-1").json["state"] as? String == "receiving",
                "node-b has those bytes while the upload is still open")
        try upload.send(archive[half...])
        let answer = try upload.finish()
        #expect(answer.status == 201, "\(answer.body)")
        let fetched = prefetch.appendingPathComponent("\(id).tar").path
        try waitUntil("the prefetch is complete and named by its digest") { FileManager.default.fileExists(atPath: fetched) }
        #expect(try sha256(ofFile: fetched) == id)
        #expect(((try FileManager.default.attributesOfItem(atPath: fetched))[.posixPermissions] as? Int) == 0o600)

        // The restore job told of this prefetch restores that file, without downloading it.
        let job = #"{"id": "restore-prefetched", "kind": "restore", "checkpoint": "\#(id)", "size": \#(archive.count), "options": {"name": "prefetched", "tcp_close": true}, "prefetch": {"node": "node-a", "upload": "paced-1"}}"#
        #expect(try agentCurl("node-b", "POST", "/v1/jobs", json: job).status == 202)
        let restoredJob = try agentJob("node-b", "restore-prefetched")
        #expect(restoredJob["state"] as? String == "succeeded", "\(restoredJob)")
        #expect(restoredJob["prefetched"] as? Bool == true, "\(restoredJob)")
        #expect(restored().contains { $0.hasPrefix("node-b \(id) ") && $0.contains("prefetched") }, "the runtime got the archive with its digest")
        #expect(!FileManager.default.fileExists(atPath: fetched), "the prefetched file became the job's archive")

        // A prefetch of other bytes is never taken for a checkpoint: that restore downloads its own archive.
        let otherPath = Fixtures.archive("podman-volume.tar")
        let other = try [UInt8](Data(contentsOf: URL(fileURLWithPath: otherPath)))
        let otherUpload = try PacedUpload(port: servicePort, total: other.count,
                                          headers: ["Authorization: Bearer \(Self.nodeTokens["node-a"]!)", "Ferry-Upload-ID: paced-2"])
        #expect(try agentCurl("node-b", "POST", "/v1/prefetch", json: #"{"node": "node-a", "upload": "paced-2"}"#).status == 202)
        try otherUpload.send(other[...])
        #expect(try otherUpload.finish().status == 201)
        let otherFetched = prefetch.appendingPathComponent("\(try sha256(ofFile: otherPath)).tar").path
        try waitUntil("the other prefetch is complete") { FileManager.default.fileExists(atPath: otherFetched) }
        let web = try push("podman-web-tcp.tar")
        let mismatched = #"{"id": "restore-mismatched", "kind": "restore", "checkpoint": "\#(web)", "size": 1, "options": {"name": "mismatched", "tcp_close": true}, "prefetch": {"node": "node-a", "upload": "paced-2"}}"#
        #expect(try agentCurl("node-b", "POST", "/v1/jobs", json: mismatched).status == 202)
        let downloadedJob = try agentJob("node-b", "restore-mismatched")
        #expect(downloadedJob["state"] as? String == "succeeded", "\(downloadedJob)")
        #expect(downloadedJob["prefetched"] == nil, "\(downloadedJob)")
        #expect(restored().contains { $0.hasPrefix("node-b \(web) ") && $0.contains("mismatched") })
        #expect(FileManager.default.fileExists(atPath: otherFetched), "the other bytes were left alone")
    }

    @Test("a target agent killed mid-prefetch leaves a partial file that the restore job resumes from, with the digest checked")
    func prefetchAgentKilled() throws {
        let (archive, id, half, upload) = try halfUploaded("podman-tcp-established.tar", as: "paced-kill")
        #expect(try agentCurl("node-b", "POST", "/v1/prefetch", json: #"{"node": "node-a", "upload": "paced-kill"}"#).status == 202)
        let prefetch = directory.appendingPathComponent("agent-node-b/prefetch")
        let partial = prefetch.appendingPathComponent("node-a@paced-kill.partial").path
        try waitUntil("node-b holds the half that has arrived") { Self.size(partial) == half }
        stopAgent("node-b")  // SIGKILL mid-prefetch
        try upload.send(archive[half...])
        #expect(try upload.finish().status == 201)
        try startAgent("node-b", facts: #"{"runtimes": ["runc"], "ips_in_use": ["10.89.0.42"]}"#)
        try waitUntil("the new agent on node-b answers") { try agentCurl("node-b", "GET", "/v1/facts").status == 200 }
        #expect(Self.size(partial) == half, "the partial file outlived the agent")

        let job = #"{"id": "restore-after-kill", "kind": "restore", "checkpoint": "\#(id)", "size": \#(archive.count), "options": {"name": "after-kill", "tcp_close": true}, "prefetch": {"node": "node-a", "upload": "paced-kill"}}"#
        #expect(try agentCurl("node-b", "POST", "/v1/jobs", json: job).status == 202)
        let done = try agentJob("node-b", "restore-after-kill")
        #expect(done["state"] as? String == "succeeded", "\(done)")
        #expect(done["prefetched"] == nil, "the prefetch never finished, so the job downloaded the rest itself")
        #expect(restored().contains { $0.hasPrefix("node-b \(id) ") && $0.contains("after-kill") }, "the runtime got the archive with its digest")
        #expect(!FileManager.default.fileExists(atPath: partial), "the partial file was taken over by the download")
    }

    @Test("a preflight error blocks the migration unless waived")
    func preflightBlocks() throws {
        let id = try push("podman-staticip-leave-running.tar")
        let blocked = try finished(try migrate(id, to: "node-b", options: "{}"))
        #expect(blocked["state"] as? String == "failed")
        #expect((blocked["error"] as? [String: Any])?["code"] as? String == "PREFLIGHT_FAILED")
        #expect(((blocked["error"] as? [String: Any])?["message"] as? String)?.contains("STATIC_IP_IN_USE") == true)
        #expect(((blocked["error"] as? [String: Any])?["message"] as? String)?.contains("--ignore-static-ip") == true)
        let waived = try finished(try migrate(id, to: "node-b", options: #"{"ignore_static_ip": true}"#))
        #expect(waived["state"] as? String == "succeeded", "\(waived["error"] ?? "")")
        let cli = try Fixtures.ferry(["migrate", "--server", base, "--token", Self.adminToken, "--checkpoint", id, "--to", "node-b", "--wait"])
        #expect(cli.status == 1)
        #expect(cli.stderr.contains("[PREFLIGHT_FAILED]"))
    }

    @Test("a failing runtime fails the migration with its exit status and output")
    func runtimeFails() throws {
        let id = try push("podman-counter-none.tar")
        let migration = try finished(try migrate(id, to: "node-b", options: #"{"fail": true, "name": "x"}"#))
        #expect(migration["state"] as? String == "failed")
        #expect((migration["error"] as? [String: Any])?["code"] as? String == "RESTORE_FAILED")
        #expect((migration["result"] as? [String: Any])?["exit_status"] as? Int == 7)
        #expect(((migration["result"] as? [String: Any])?["output_tail"] as? String)?.contains("runtime says no") == true)

        // The web page's Migrations tab shows it with its state and reason, and the nodes.
        let page = String(decoding: try curl("GET", "/migrations").body, as: UTF8.self)
        let migrationID = try #require(migration["id"] as? String)
        #expect(page.contains("data-migration=\"\(migrationID)\" data-state=\"failed\""))
        #expect(page.contains("RESTORE_FAILED"))
        #expect(page.contains("<td>node-b</td><td><span class=\"badge ok\">up</span>"))
    }

    @Test("a target agent refuses an unsigned, altered or foreign-signed archive (SIGNATURE_INVALID); the runtime never sees it")
    func unsignedArchivesRefused() throws {
        let database = directory.appendingPathComponent("service/catalog.sqlite").path
        func sql(_ statement: String, _ argument: String) throws {
            let run = try Fixtures.run("/usr/bin/env", ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2], (sys.argv[3],)); c.commit()", database, statement, argument])
            #expect(run.status == 0, "\(run.stderr)")
        }
        func refused(_ id: String, _ why: String) throws {
            let migration = try finished(try migrate(id, to: "node-b", options: #"{"name": "x"}"#))
            #expect(migration["state"] as? String == "failed", "\(why)")
            let error = migration["error"] as? [String: Any]
            #expect(error?["code"] as? String == "SIGNATURE_INVALID", "\(why): \(error ?? [:])")
            #expect(!restored().contains { $0.contains(id) }, "\(why): the runtime never ran on it")
        }
        // Signed as the service signs: restored (and node-b pins the service's key).
        let signed = try push("podman-counter-none.tar")
        #expect(try finished(try migrate(signed, to: "node-b", options: #"{"name": "x"}"#))["state"] as? String == "succeeded")
        let pinned = directory.appendingPathComponent("agent-node-b/provenance-key.json").path
        #expect(FileManager.default.fileExists(atPath: pinned))

        // No statement.
        let unsigned = try push("podman-counter-gzip.tar.gz")
        try sql("DELETE FROM checkpoint_statement WHERE checkpoint_id = ?", unsigned)
        try refused(unsigned, "unsigned")

        // Signed, but the stored bytes were changed afterwards.
        let altered = try push("podman-multinet.tar")
        let blob = directory.appendingPathComponent("service/blobs/sha256/\(altered.prefix(2))/\(altered)")
        var bytes = try Data(contentsOf: blob)
        bytes[bytes.count - 2000] ^= 0x20
        try bytes.write(to: blob)
        try refused(altered, "altered blob")

        // The service's key replaced: its new statements are not signed by the key node-b pinned.
        kill(service, SIGTERM)
        _ = Fixtures.wait(service)
        try FileManager.default.removeItem(at: directory.appendingPathComponent("service/provenance-key"))
        try startService()
        try waitForNodes(["node-a", "node-b"])
        let foreign = try push("podman-inpod.tar")
        try refused(foreign, "signed by another key")

        // The operator pins the new key explicitly (--provenance-key wins over the key pinned on first use).
        let keyFile = directory.appendingPathComponent("service-key.json")
        try curl("GET", "/.well-known/ferry/provenance-key").body.write(to: keyFile)
        stopAgent("node-b")
        try startAgent("node-b", facts: #"{"runtimes": ["runc"], "ips_in_use": ["10.89.0.42"]}"#, extra: ["--provenance-key", keyFile.path])
        try waitForNodes(["node-b"])
        let migration = try finished(try migrate(foreign, to: "node-b", options: #"{"name": "y"}"#))
        #expect(migration["state"] as? String == "succeeded", "\(migration["error"] ?? "")")
        #expect(restored().contains { $0.contains(foreign) })
    }

    @Test("a target that stopped heartbeating fails the migration with NODE_DOWN")
    func targetDown() throws {
        let id = try push("podman-inpod.tar")
        stopAgent("node-b")
        try waitForNodes(["node-b"], up: false)
        let migration = try finished(try migrate(id, to: "node-b", options: #"{"name": "x"}"#), seconds: 20)
        #expect((migration["error"] as? [String: Any])?["code"] as? String == "NODE_DOWN")
        let unknown = try finished(try migrate(id, to: "node-z", options: "{}"), seconds: 20)
        #expect((unknown["error"] as? [String: Any])?["code"] as? String == "NODE_NOT_FOUND")
        try startAgent("node-b", facts: #"{"runtimes": ["runc"], "ips_in_use": ["10.89.0.42"]}"#)
        try waitForNodes(["node-b"])
    }

    @Test("an agent killed mid-transfer finishes the download after a restart")
    func agentRestart() throws {
        let id = try push("podman-tcp-established.tar")
        stopAgent("node-b", signal: SIGTERM)
        try startAgent("node-b", facts: #"{"runtimes": ["runc"]}"#, extra: ["--max-download-rate", "100000"])
        try waitForNodes(["node-b"])
        let migration = try migrate(id, to: "node-b", options: #"{"name": "resumed", "tcp_close": true}"#)
        try waitUntil("some bytes arrived") {
            let state = try curl("GET", "/api/v1/migrations/\(migration)").json
            return ((state["progress"] as? [String: Any])?["bytes_done"] as? Int ?? 0) > 0
        }
        stopAgent("node-b")  // SIGKILL in the middle of the download
        try startAgent("node-b", facts: #"{"runtimes": ["runc"]}"#)
        let done = try finished(migration)
        #expect(done["state"] as? String == "succeeded", "\(done["error"] ?? "")")
        #expect(restored().contains { $0.hasPrefix("node-b \(id) ") && $0.contains("resumed") }, "the resumed download has the right digest")
    }

    @Test("a service restarted mid-migration picks the migration up again")
    func serviceRestart() throws {
        let id = try push("podman-web-tcp.tar")
        let migration = try migrate(id, to: "node-b", options: #"{"slow": true, "name": "after-restart"}"#)
        try waitUntil("the migration is restoring") {
            try curl("GET", "/api/v1/migrations/\(migration)").json["state"] as? String == "restoring"
        }
        kill(service, SIGKILL)
        _ = Fixtures.wait(service)
        try startService()
        let done = try finished(migration)
        #expect(done["state"] as? String == "succeeded", "\(done["error"] ?? "")")
        #expect(restored().contains { $0.contains("after-restart") })
    }
}
