import FerryServer
import FerryTestSupport
import Foundation
import Testing

/// Retention end to end: a real service with a policy file, a catalog built from the shipped archives with their
/// container, pod and namespace varied, pins, a migration in flight and a node whose facts decide what is orphaned.
/// The exact set that goes is asserted through the API's dry run, `ferry gc --dry-run`, the real run, the record of
/// deletions and the metrics; then the run after an upload, and the refusals of manual deletes.
@Suite("retention", .serialized)
struct RetentionTests {
    static let policies = """
        applyPoliciesImmediately: false
        globalPolicy:
          maxCheckpointsPerContainer: 2
          maxCheckpointSize: 600Ki
        containerPolicies:
          - {namespace: "", pod: "", container: web, maxCheckpoints: 1}
          - {namespace: "", pod: "", container: ghost, retainOrphan: false}
          - {namespace: "", pod: "", container: alive, retainOrphan: false}
          - {namespace: shop, pod: cart, container: special, maxCheckpoints: 5}
        podPolicies:
          - {namespace: shop, pod: cart, maxCheckpoints: 1}
        namespacePolicies:
          - {namespace: batch, maxCheckpoints: 1}
        """

    /// A shipped archive as another container (and, for a CRI-O archive, pod and namespace): its metadata
    /// rewritten and one extra file, so every variant has its own bytes and digest.
    static func variant(_ name: String, container: String, pod: String? = nil, namespace: String? = nil, serial: Int) throws -> String {
        let archive = try Fixtures.uncompressedBytes(of: name)
        func json(_ entry: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(TarBuilder.extract(entry, from: archive))) as? [String: Any])
        }
        var config = try json("config.dump")
        var spec = try json("spec.dump")
        config["name"] = container
        if let pod, let namespace {
            var annotations = spec["annotations"] as? [String: Any] ?? [:]
            annotations["io.kubernetes.pod.name"] = pod
            annotations["io.kubernetes.pod.namespace"] = namespace
            annotations["io.kubernetes.container.name"] = container
            annotations["io.kubernetes.cri-o.Metadata"] = #"{"name": "\#(container)", "attempt": 0}"#
            spec["annotations"] = annotations
        }
        var builder = TarBuilder()
        builder.copyEntries(of: archive) { $0 == "config.dump" || $0 == "spec.dump" }
        builder.file("config.dump", Array(try JSONSerialization.data(withJSONObject: config)))
        builder.file("spec.dump", Array(try JSONSerialization.data(withJSONObject: spec)))
        builder.file("ferry-variant", "\(serial)\n")
        return try Fixtures.write(builder.finished(), name: "\(container)-\(serial).tar")
    }

    @Test("a policy set deletes exactly what precedence, pins, orphans and a migration in flight say, through the API and ferry gc")
    func policiesApplied() throws {
        let directory = try Fixtures.temporaryDirectory()
        let file = directory.appendingPathComponent("retention.yaml")
        try Self.policies.write(to: file, atomically: true, encoding: .utf8)
        // The catalog is built by a service without policies (with them, every upload would apply them), then
        // the service restarts with them; applyPoliciesImmediately: false, so nothing runs until asked.
        var setup: TestServer? = try TestServer(tokens: true)
        let writer = TestServer.writeToken

        var ids: [String: String] = [:]
        func upload(_ key: String, _ path: String, to server: TestServer) throws {
            let response = try server.request("POST", "/api/v1/checkpoints", token: writer, upload: path)
            #expect(response.status == 201, "\(key): \(response.text)")
            ids[key] = try #require((response.json["checkpoint"] as? [String: Any])?["id"] as? String)
            usleep(5_000)  // distinct upload times: "oldest" is by upload time
        }
        let podman = "podman-counter-none.tar"
        let crio = "crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar"
        for serial in 1...4 { try upload("counter-\(serial)", try Self.variant(podman, container: "counter", serial: serial), to: setup!) }
        for serial in 1...3 { try upload("web-\(serial)", try Self.variant(podman, container: "web", serial: serial), to: setup!) }
        for serial in 1...2 { try upload("ghost-\(serial)", try Self.variant(podman, container: "ghost", serial: serial), to: setup!) }
        try upload("alive-1", try Self.variant(podman, container: "alive", serial: 1), to: setup!)
        try upload("big", try Self.variant("podman-tcp-established.tar", container: "big", serial: 1), to: setup!)
        for serial in 1...2 {
            try upload("cart-counter-\(serial)", try Self.variant(crio, container: "counter", pod: "cart", namespace: "shop", serial: serial), to: setup!)
        }
        for serial in 1...2 {
            try upload("cart-special-\(serial)", try Self.variant(crio, container: "special", pod: "cart", namespace: "shop", serial: serial), to: setup!)
        }
        try upload("job-a", try Self.variant(crio, container: "worker", pod: "job-a", namespace: "batch", serial: 1), to: setup!)
        try upload("job-b", try Self.variant(crio, container: "worker", pod: "job-b", namespace: "batch", serial: 2), to: setup!)
        let dataDirectory = setup!.dataDirectory
        setup = nil
        let server = try TestServer(tokens: true, reusing: dataDirectory, retention: file.path)
        #expect(try server.request("GET", "/api/v1/checkpoints", token: writer).json["total"] as? Int == 17, "nothing ran on its own yet")

        // Pins, a migration in flight (its target answers nothing, so it stays pending), and a node whose facts
        // list counter, web and alive but not ghost.
        for key in ["counter-1", "web-3"] {
            let pin = try server.request("PUT", "/api/v1/checkpoints/\(ids[key]!)/pin", token: writer,
                                         upload: try Fixtures.write(Array(#"{"reason": "evidence for ticket 42"}"#.utf8), name: "pin.json"),
                                         headers: ["Content-Type: application/json"])
            #expect(pin.status == 200, "\(pin.text)")
        }
        func heartbeat() throws {
            let body = try Fixtures.write(Array(#"{"name": "node-a", "agent_url": "http://127.0.0.1:9", "driver": "command", "facts": {"container_names": ["counter", "web", "alive"]}}"#.utf8), name: "heartbeat.json")
            #expect(try server.request("POST", "/api/v1/nodes/node-a/heartbeat", token: TestServer.nodeToken, upload: body,
                                       headers: ["Content-Type: application/json"]).status == 200)
        }
        try heartbeat()
        let migration = try server.request("POST", "/api/v1/migrations", token: TestServer.adminToken,
                                           upload: try Fixtures.write(Array(#"{"checkpoint": "\#(ids["web-2"]!)", "target": "node-a"}"#.utf8), name: "m.json"),
                                           headers: ["Content-Type: application/json"])
        #expect(migration.status == 201, "\(migration.text)")

        let expected: [String: String] = [
            "counter-2": "globalPolicy", "counter-3": "globalPolicy", "big": "globalPolicy",
            "web-1": "containerPolicies[0]", "ghost-1": "containerPolicies[1]", "ghost-2": "containerPolicies[1]",
            "cart-counter-1": "podPolicies[0]", "job-a": "namespacePolicies[0]",
        ]
        let expectedIDs = Dictionary(uniqueKeysWithValues: expected.map { (ids[$0.key]!, $0.value) })
        func policiesByID(_ answer: [String: Any]) -> [String: String] {
            let deleted = answer["deleted"] as? [[String: Any]] ?? []
            return Dictionary(deleted.map { ($0["checkpoint"] as? String ?? "", $0["policy"] as? String ?? "") }) { first, _ in first }
        }

        // The dry run, through the API and through ferry gc --dry-run: the same set, nothing deleted.
        let dry = try server.request("POST", "/api/v1/gc?dry_run=true", token: writer)
        #expect(dry.status == 200 && dry.json["dry_run"] as? Bool == true, "\(dry.text)")
        #expect(policiesByID(dry.json) == expectedIDs, "\(dry.text)")
        let reasons = (dry.json["deleted"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) { $0[$1["checkpoint"] as? String ?? ""] = $1["reason"] as? String }
        #expect(reasons[ids["big"]!]?.hasPrefix("maxCheckpointSize:") == true)
        #expect(reasons[ids["ghost-1"]!]?.hasPrefix("retainOrphan: false") == true)
        #expect(reasons[ids["counter-2"]!]?.hasPrefix("maxCheckpoints: 4 checkpoints of container -/-/counter") == true, "\(reasons)")
        let blocked = dry.json["blocked"] as? [[String: Any]] ?? []
        #expect(blocked.count == 1, "\(blocked)")
        #expect(blocked.first?["scope"] as? String == "container -/-/web" && blocked.first?["limit"] as? String == "maxCheckpoints")
        #expect(Set(blocked.first?["blocking"] as? [String] ?? []) == [ids["web-2"]!, ids["web-3"]!], "a pin and a migration in flight")
        let cli = try Fixtures.ferry(["gc", "--dry-run", "--json", "--server", server.base, "--token", writer])
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect(policiesByID((try JSONSerialization.jsonObject(with: cli.stdoutData) as? [String: Any]) ?? [:]) == expectedIDs)
        let text = try Fixtures.ferry(["gc", "--dry-run", "--server", server.base, "--token", writer])
        #expect(text.stdout.contains("would delete \(ids["job-a"]!.prefix(12)) batch/job-a/worker"), "\(text.stdout)")
        #expect(text.stdout.contains("kept over maxCheckpoints 1 in container -/-/web"), "\(text.stdout)")
        #expect(try server.request("GET", "/api/v1/checkpoints", token: writer).json["total"] as? Int == 17)

        // Manual deletes are refused for a pinned checkpoint and one a migration restores.
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(ids["counter-1"]!)", token: writer).errorCode == "CHECKPOINT_PINNED")
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(ids["web-2"]!)", token: writer).errorCode == "CHECKPOINT_IN_USE")
        #expect(try server.request("POST", "/api/v1/gc", token: TestServer.readToken).status == 403)

        // The real run: the same set goes, each deletion recorded with its policy and reason.
        try heartbeat()
        let run = try server.request("POST", "/api/v1/gc", token: writer)
        #expect(policiesByID(run.json) == expectedIDs, "\(run.text)")
        #expect(try server.request("GET", "/api/v1/checkpoints?limit=100", token: writer).json["total"] as? Int == 9)
        for (key, _) in expected {
            #expect(try server.request("GET", "/api/v1/checkpoints/\(ids[key]!)", token: writer).status == 404, "\(key)")
        }
        let recorded = try server.request("GET", "/api/v1/deletions", token: TestServer.readToken).json["items"] as? [[String: Any]] ?? []
        #expect(recorded.count == 8)
        let recordedBy = Dictionary(recorded.map { ($0["checkpoint_id"] as? String ?? "", $0["deleted_by"] as? String ?? "") }) { a, _ in a }
        #expect(recordedBy == expectedIDs.mapValues { "policy:" + $0 })
        #expect(recorded.allSatisfy { ($0["reason"] as? String)?.isEmpty == false && $0["deleted_at"] is String })
        let metrics = try server.request("GET", "/metrics", token: TestServer.readToken).text
        #expect(metrics.contains(#"ferry_retention_blocked_checkpoints{scope="container -/-/web",limit="maxCheckpoints",policy="containerPolicies[0]"} 2"#), "\(metrics)")
        #expect(metrics.contains("ferry_retention_deleted_total 8"))
        #expect(server.log.contains { $0.contains("retention: maxCheckpoints 1 of container -/-/web") && $0.contains("cannot be met") })
        let detail = try server.request("GET", "/api/v1/checkpoints/\(ids["counter-1"]!)", token: writer).json
        #expect((detail["pin"] as? [String: Any])?["reason"] as? String == "evidence for ticket 42")
        #expect((detail["pin"] as? [String: Any])?["pinned_by"] as? String == "ci")
        let settings = try server.request("GET", "/api/v1/retention", token: TestServer.readToken).json
        #expect(settings["configured"] as? Bool == true)
        #expect(((settings["policies"] as? [String: Any])?["containerPolicies"] as? [Any])?.count == 4)

        // After an upload the policies run by themselves: a fifth counter pushes the oldest unpinned one out.
        try upload("counter-5", try Self.variant(podman, container: "counter", serial: 5), to: server)
        #expect(try server.eventually(10) {
            try server.request("GET", "/api/v1/checkpoints/\(ids["counter-4"]!)", token: writer).status == 404
        }, "counter-4 goes: counter-1 is pinned, counter-5 is new")
        #expect(try server.request("GET", "/api/v1/checkpoints/\(ids["counter-1"]!)", token: writer).status == 200)

        // Unpinned, a checkpoint can be deleted by hand; the deletion names the token and the reason given.
        let unpin = try Fixtures.ferry(["unpin", ids["counter-1"]!, "--server", server.base, "--token", writer])
        #expect(unpin.status == 0, "\(unpin.stderr)")
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(ids["counter-1"]!)?reason=case%20closed", token: writer).status == 204)
        let last = try server.request("GET", "/api/v1/deletions?checkpoint=\(ids["counter-1"]!)", token: writer).json["items"] as? [[String: Any]]
        #expect(last?.first?["deleted_by"] as? String == "ci" && last?.first?["reason"] as? String == "case closed", "\(last ?? [])")
        let pinCLI = try Fixtures.ferry(["pin", ids["alive-1"]!, "--reason", "keep", "--server", server.base, "--token", writer])
        #expect(pinCLI.status == 0, "\(pinCLI.stderr)")
        let noReason = try Fixtures.ferry(["pin", ids["alive-1"]!, "--reason", " ", "--server", server.base, "--token", writer])
        #expect(noReason.status == 1 && noReason.stderr.contains("[INVALID_PIN]"), "\(noReason.stderr)")
    }

    @Test("a live migration's upload is kept from the moment it is catalogued, before the migration names it")
    func liveMigrationUploadKept() throws {
        let directory = try Fixtures.temporaryDirectory()
        let file = directory.appendingPathComponent("retention.yaml")
        try "globalPolicy:\n  maxCheckpointSize: 600Ki\n".write(to: file, atomically: true, encoding: .utf8)
        let server = try TestServer(tokens: true, retention: file.path)
        for node in ["node-a", "node-b"] {
            let body = try Fixtures.write(Array(#"{"name": "\#(node)", "agent_url": "http://127.0.0.1:9", "driver": "command"}"#.utf8), name: "hb.json")
            #expect(try server.request("POST", "/api/v1/nodes/\(node)/heartbeat", token: TestServer.adminToken, upload: body,
                                       headers: ["Content-Type: application/json"]).status == 200)
        }
        // Its agents answer nothing, so the migration stays pending while the test uploads what its checkpoint
        // job would.
        let created = try server.request("POST", "/api/v1/migrations", token: TestServer.adminToken,
                                         upload: try Fixtures.write(Array(#"{"source": {"node": "node-a", "container": "big"}, "target": "node-b"}"#.utf8), name: "m.json"),
                                         headers: ["Content-Type: application/json"])
        let migration = try #require(created.json["id"] as? String, "\(created.text)")
        func upload(serial: Int, as uploadID: String) throws -> String {
            let path = try Self.variant("podman-tcp-established.tar", container: "big", serial: serial)
            let response = try server.request("POST", "/api/v1/checkpoints", token: TestServer.nodeToken, upload: path,
                                              headers: ["Ferry-Upload-ID: \(uploadID)"])
            #expect(response.status == 201, "\(response.text)")
            return try #require((response.json["checkpoint"] as? [String: Any])?["id"] as? String)
        }
        // Larger than maxCheckpointSize: the run after the upload deletes one of another job, not the migration's.
        let other = try upload(serial: 1, as: "some-other-job")
        #expect(try server.eventually(10) {
            try server.request("GET", "/api/v1/checkpoints/\(other)", token: TestServer.writeToken).status == 404
        })
        let kept = try upload(serial: 2, as: migration + "-checkpoint")
        let dry = try server.request("POST", "/api/v1/gc?dry_run=true", token: TestServer.writeToken).json
        #expect((dry["deleted"] as? [Any])?.isEmpty == true, "\(dry)")
        #expect(try server.request("GET", "/api/v1/checkpoints/\(kept)", token: TestServer.writeToken).status == 200)
        #expect(try server.request("DELETE", "/api/v1/deletions", token: TestServer.writeToken).status == 405)
        let recorded = try server.request("GET", "/api/v1/deletions", token: TestServer.readToken).json["items"] as? [[String: Any]] ?? []
        #expect(recorded.map { $0["checkpoint_id"] as? String } == [other])
    }

    @Test("without a policy file gc is refused with its code; a bad file stops ferry serve with one line")
    func notConfigured() throws {
        let server = try TestServer()
        #expect(try server.request("POST", "/api/v1/gc").errorCode == "RETENTION_NOT_CONFIGURED")
        #expect(try server.request("GET", "/api/v1/retention").json["configured"] as? Bool == false)
        let bad = try Fixtures.write(Array("globalPolicy:\n  maxCheckpointsPerPods: 3\n".utf8), name: "bad.yaml")
        let serve = try Fixtures.ferry(["serve", "--listen", "127.0.0.1:0", "--data-dir", try Fixtures.temporaryDirectory().path,
                                        "--retention", bad])
        #expect(serve.status != 0)
        #expect(serve.stderr.contains("--retention") && serve.stderr.contains("unknown field maxCheckpointsPerPods"), "\(serve.stderr)")
    }
}
