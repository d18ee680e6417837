import FerryTestSupport
import Foundation
import Testing

/// docs/openapi.yaml stays true: real requests against a live service, every exchange checked against the spec
/// (documented path, method and status; JSON bodies against their schemas), every documented operation exercised.
@Suite("OpenAPI description")
struct OpenAPITests {
    @Test("the live service agrees with docs/openapi.yaml")
    func liveServerMatchesSpec() throws {
        let server = try TestServer(tokens: true, maximumUploadSize: 500_000)
        var exchanges: [[String: Any]] = []
        func record(_ method: String, _ path: String, token: String? = TestServer.adminToken, upload: String? = nil,
                    headers: [String] = [], extra: [String] = []) throws -> TestServer.Response {
            let response = try server.request(method, path, token: token, upload: upload, headers: headers, extra: extra)
            exchanges.append([
                "method": method, "path": path, "status": response.status,
                "content_type": response.headers["content-type"] ?? "",
                "body": method == "HEAD" ? "" : (response.headers["content-type"]?.hasPrefix("application/json") == true ? response.text : ""),
            ])
            return response
        }
        let archive = Fixtures.archive("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")
        let created = try record("POST", "/api/v1/checkpoints?node=node-a&labels=a=b", upload: archive)
        #expect(created.status == 201)
        let id = try #require((created.json["checkpoint"] as? [String: Any])?["id"] as? String)
        _ = try record("POST", "/api/v1/checkpoints", upload: archive)                                   // 200 duplicate
        _ = try record("POST", "/api/v1/checkpoints", token: nil, upload: archive)                       // 401
        _ = try record("POST", "/api/v1/checkpoints", token: TestServer.readToken, upload: archive)      // 403
        _ = try record("POST", "/api/v1/checkpoints", upload: Fixtures.archive("podman-tcp-established.tar")) // 413
        _ = try record("POST", "/api/v1/checkpoints", upload: archive, headers: ["Content-Type: text/plain"]) // 415
        var builder = TarBuilder()
        builder.file("x", "y")
        _ = try record("POST", "/api/v1/checkpoints", upload: try Fixtures.write(builder.finished()))     // 422
        _ = try record("POST", "/api/v1/checkpoints?labels=bad", upload: archive)                        // 400
        _ = try record("GET", "/api/v1/checkpoints?limit=1&sort=size")
        _ = try record("GET", "/api/v1/checkpoints?limit=5000")                                          // 400
        _ = try record("GET", "/api/v1/checkpoints", token: nil)                                         // 401
        _ = try record("GET", "/api/v1/checkpoints/\(id)")
        _ = try record("GET", "/api/v1/checkpoints/\(id.prefix(10))")
        _ = try record("GET", "/api/v1/checkpoints/0000000000000000")                                    // 404
        _ = try record("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=0-"])
        _ = try record("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=0-9"])
        _ = try record("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=999999999-"]) // 416
        _ = try record("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["If-None-Match: \"sha256:\(id)\""]) // 304
        _ = try record("HEAD", "/api/v1/checkpoints/\(id)/archive")
        _ = try record("GET", "/api/v1/checkpoints?validation=clean")
        _ = try record("GET", "/api/v1/checkpoints/\(id)/findings")
        let facts = try Fixtures.write(Array(#"{"target": {"architecture": "aarch64", "runtimes": ["crun"]}, "options": {"ignore_static_ip": true}}"#.utf8), name: "preflight.json")
        let preflight = try record("POST", "/api/v1/checkpoints/\(id)/preflight", upload: facts, headers: ["Content-Type: application/json"])
        #expect(preflight.json["restorable"] as? Bool == false)
        let notJSON = try Fixtures.write(Array("nope".utf8), name: "bad.json")
        _ = try record("POST", "/api/v1/checkpoints/\(id)/preflight", upload: notJSON, headers: ["Content-Type: application/json"])   // 400
        let heartbeat = try Fixtures.write(Array(#"{"name": "node-a", "agent_url": "http://127.0.0.1:9", "driver": "command", "facts": {"architecture": "x86_64", "runtimes": ["runc"]}}"#.utf8), name: "heartbeat.json")
        _ = try record("POST", "/api/v1/nodes/node-a/heartbeat", token: TestServer.nodeToken, upload: heartbeat, headers: ["Content-Type: application/json"])
        _ = try record("POST", "/api/v1/nodes/node-b/heartbeat", token: TestServer.nodeToken, upload: heartbeat, headers: ["Content-Type: application/json"]) // 403
        // A node's named upload, readable while it arrives (here, once it has).
        let counter = Fixtures.archive("podman-counter-none.tar")
        let counterSize = try #require((try FileManager.default.attributesOfItem(atPath: counter))[.size] as? Int)
        let counterUpload = try record("POST", "/api/v1/checkpoints", token: TestServer.nodeToken, upload: counter, headers: ["Ferry-Upload-ID: job-openapi"])
        let counterID = try #require((counterUpload.json["checkpoint"] as? [String: Any])?["id"] as? String)
        // The diff of two checkpoints: a checkpoint with itself (one container), as JSON and as text, and refusals.
        _ = try record("GET", "/api/v1/checkpoints/\(id)/diff/\(id.prefix(12))?files=true&sockets=true&ps_tree_cmd=true&show_unchanged=1")
        _ = try record("GET", "/api/v1/checkpoints/\(id)/diff/\(id)?format=tree")
        _ = try record("GET", "/api/v1/checkpoints/\(id)/diff/\(counterID)")                           // 409
        _ = try record("GET", "/api/v1/checkpoints/\(id)/diff/0000000000000000")                      // 404
        _ = try record("GET", "/api/v1/checkpoints/\(id)/diff/\(id)?files=maybe")                      // 400
        _ = try record("GET", "/api/v1/checkpoints/\(id)/diff/\(id)", token: nil)                      // 401
        _ = try record("GET", "/api/v1/nodes/node-a/uploads/job-openapi")
        _ = try record("GET", "/api/v1/nodes/node-a/uploads/job-openapi/archive", headers: ["Range: bytes=0-99"])      // 206
        _ = try record("GET", "/api/v1/nodes/node-a/uploads/job-openapi/archive", headers: ["Range: bytes=\(counterSize)-"]) // 204
        _ = try record("GET", "/api/v1/nodes/node-a/uploads/job-openapi/archive", headers: ["Range: bytes=\(counterSize + 1)-"]) // 416
        _ = try record("GET", "/api/v1/nodes/node-a/uploads/job-none")                                   // 404
        _ = try record("GET", "/api/v1/nodes")
        _ = try record("GET", "/api/v1/nodes/node-a")
        _ = try record("GET", "/api/v1/nodes/nowhere")                                                   // 404
        let migrationBody = try Fixtures.write(Array(#"{"checkpoint": "\#(id)", "target": "node-a", "options": {"name": "copy"}}"#.utf8), name: "migration.json")
        let migration = try record("POST", "/api/v1/migrations", upload: migrationBody, headers: ["Content-Type: application/json"])
        #expect(migration.status == 201)
        let migrationID = try #require(migration.json["id"] as? String)
        _ = try record("POST", "/api/v1/migrations", upload: migrationBody, headers: ["Content-Type: application/json"]) // 200
        _ = try record("POST", "/api/v1/migrations", upload: notJSON, headers: ["Content-Type: application/json"])       // 400
        _ = try record("GET", "/api/v1/migrations")
        _ = try record("GET", "/api/v1/migrations?state=bogus")                                          // 400
        _ = try record("GET", "/api/v1/migrations/\(migrationID)")
        _ = try record("GET", "/api/v1/migrations/\(migrationID)?wait=0.2&events_after=0")                 // long poll
        _ = try record("GET", "/api/v1/migrations/\(migrationID)?wait=99")                               // 400
        _ = try record("GET", "/api/v1/migrations/mig-none")                                             // 404
        // A job report from the migration's target (node-a): answered with a verdict.
        let report = try Fixtures.write(Array(#"{"sent_at": "2026-12-01T10:00:00.000Z", "job": {"id": "\#(migrationID)", "kind": "restore", "state": "downloading", "bytes_done": 0, "bytes_total": 10, "phases": [], "created_at": "2026-12-01T10:00:00.000Z", "updated_at": "2026-12-01T10:00:00.000Z"}}"#.utf8), name: "report.json")
        let verdict = try record("POST", "/api/v1/nodes/node-a/jobs/\(migrationID)/report", token: TestServer.nodeToken, upload: report, headers: ["Content-Type: application/json"])
        #expect(verdict.status == 200 && verdict.json["proceed"] is Bool, "\(verdict.text)")
        _ = try record("POST", "/api/v1/nodes/node-b/jobs/\(migrationID)/report", token: TestServer.nodeToken, upload: report, headers: ["Content-Type: application/json"]) // 403
        _ = try record("POST", "/api/v1/nodes/node-a/jobs/mig-none/report", token: TestServer.nodeToken, upload: report, headers: ["Content-Type: application/json"])    // 400: ID differs
        _ = try record("POST", "/api/v1/nodes/node-a/jobs/\(migrationID)/report", token: nil, upload: report, headers: ["Content-Type: application/json"])            // 401
        let unknownReport = try Fixtures.write(Array(#"{"sent_at": "x", "job": {"id": "mig-none", "kind": "restore", "state": "downloading", "bytes_done": 0, "bytes_total": 0, "phases": [], "created_at": "x", "updated_at": "x"}}"#.utf8), name: "unknown.json")
        _ = try record("POST", "/api/v1/nodes/node-a/jobs/mig-none/report", token: TestServer.nodeToken, upload: unknownReport, headers: ["Content-Type: application/json"]) // 404
        // An outcome belongs to a migration into Kubernetes: this one is not (409); one that is takes it (200).
        let outcome = try Fixtures.write(Array(#"{"succeeded": true, "phase": "Running"}"#.utf8), name: "outcome.json")
        _ = try record("POST", "/api/v1/migrations/\(migrationID)/outcome", upload: outcome, headers: ["Content-Type: application/json"]) // 409
        let kubernetesBody = try Fixtures.write(Array(#"{"checkpoint": "\#(id)", "target": "node-k", "kubernetes": {"namespace": "shop", "pod": "counter-restored"}}"#.utf8), name: "k8s.json")
        let kubernetes = try record("POST", "/api/v1/migrations", upload: kubernetesBody, headers: ["Content-Type: application/json"])
        let kubernetesID = try #require(kubernetes.json["id"] as? String)
        _ = try record("POST", "/api/v1/migrations/\(kubernetesID)/outcome", upload: outcome, headers: ["Content-Type: application/json"]) // 200
        _ = try record("POST", "/api/v1/migrations/\(kubernetesID)/outcome", upload: notJSON, headers: ["Content-Type: application/json"]) // 400
        _ = try record("POST", "/api/v1/migrations/\(migrationID)/cancel")
        _ = try record("POST", "/api/v1/migrations/\(migrationID)/cancel")                              // 409
        // Checkpoints without moving: node-a's agent URL leads nowhere here.
        let nodeCheckpoint = try Fixtures.write(Array(#"{"container": "counter", "leave_running": true, "labels": {"case": "x"}}"#.utf8), name: "node-checkpoint.json")
        let unreachable = try record("POST", "/api/v1/nodes/node-a/checkpoints", upload: nodeCheckpoint, headers: ["Content-Type: application/json"])
        #expect(unreachable.status == 202 && (unreachable.json["error"] as? [String: Any])?["code"] as? String == "AGENT_UNREACHABLE", "\(unreachable.text)")
        let failedJob = try #require(unreachable.json["job"] as? String)
        _ = try record("GET", "/api/v1/nodes/node-a/checkpoints/\(failedJob)?wait=1")
        _ = try record("POST", "/api/v1/nodes/node-z/checkpoints", upload: nodeCheckpoint, headers: ["Content-Type: application/json"])   // 404
        _ = try record("POST", "/api/v1/nodes/node-a/checkpoints", upload: notJSON, headers: ["Content-Type: application/json"])          // 400
        _ = try record("POST", "/api/v1/nodes/node-a/checkpoints", token: TestServer.readToken, upload: nodeCheckpoint, headers: ["Content-Type: application/json"]) // 403
        _ = try record("GET", "/api/v1/nodes/node-a/checkpoints/ckpt-none")                              // 404
        _ = try record("GET", "/api/v1/nodes/node-a/checkpoints/ckpt-none?wait=99")                      // 400
        _ = try record("GET", "/healthz", token: nil)
        _ = try record("GET", "/readyz", token: nil)
        _ = try record("GET", "/metrics")
        // Pins, retention (none configured here) and the record of deletions.
        let pinBody = try Fixtures.write(Array(#"{"reason": "kept for the audit"}"#.utf8), name: "pin.json")
        _ = try record("PUT", "/api/v1/checkpoints/\(id)/pin", upload: pinBody, headers: ["Content-Type: application/json"])
        _ = try record("PUT", "/api/v1/checkpoints/\(id)/pin", upload: notJSON, headers: ["Content-Type: application/json"]) // 400
        _ = try record("DELETE", "/api/v1/checkpoints/\(id)")                                            // 409 pinned
        _ = try record("DELETE", "/api/v1/checkpoints/\(id)/pin")
        // Provenance.
        _ = try record("GET", "/.well-known/ferry/provenance-key", token: nil)
        _ = try record("GET", "/api/v1/checkpoints/\(id)/statement")
        _ = try record("GET", "/api/v1/checkpoints/\(String(repeating: "0", count: 64))/statement")   // 404
        _ = try record("GET", "/api/v1/checkpoints/\(id)/statement", token: nil)                      // 401
        _ = try record("GET", "/api/v1/chain?container=shop/counter-7d9f8b6c5-x2kqz/counter")
        _ = try record("GET", "/api/v1/chain?container=a/b")                                          // 400
        _ = try record("GET", "/api/v1/chain?container=nobody")                                       // 404
        _ = try record("GET", "/api/v1/retention")
        _ = try record("POST", "/api/v1/gc?dry_run=true")                                                // 409
        _ = try record("DELETE", "/api/v1/checkpoints/\(id)", token: TestServer.readToken)               // 403
        _ = try record("DELETE", "/api/v1/checkpoints/\(id)")
        _ = try record("DELETE", "/api/v1/checkpoints/\(id)")                                            // 404
        _ = try record("GET", "/api/v1/deletions?limit=5")

        let lines = try exchanges.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let spec = Fixtures.repositoryRoot.appendingPathComponent("docs/openapi.yaml").path
        let checker = Fixtures.repositoryRoot.appendingPathComponent("scripts/openapi_check.py").path
        let result = try Fixtures.run("/usr/bin/env", ["python3", checker, spec], stdin: Array((lines.joined(separator: "\n") + "\n").utf8))
        #expect(result.status == 0, "spec disagreements:\n\(result.stdout)\(result.stderr)")
    }

    @Test("schemathesis, with every check and its stateful phase, finds no mismatch between the service and the spec")
    func schemathesisFindsNothing() throws {
        let found = try Fixtures.run("/usr/bin/env", ["sh", "-c", "command -v schemathesis"])
        guard found.status == 0 else {
            FileHandle.standardError.write(Data("SCHEMATHESIS SKIPPED: not installed (scripts/install-deps.sh --test installs it)\n".utf8))
            return
        }
        let server = try TestServer(tokens: true, maximumUploadSize: 500_000)
        _ = try server.upload(Fixtures.archive("podman-counter-none.tar"), token: TestServer.adminToken)
        let root = Fixtures.repositoryRoot
        let result = try Fixtures.run("/usr/bin/env", [
            "schemathesis", "--config-file", root.appendingPathComponent("docs/schemathesis.toml").path,
            "run", root.appendingPathComponent("docs/openapi.yaml").path, "--url", server.base,
            "-H", "Authorization: Bearer \(TestServer.adminToken)", "--checks", "all", "--max-examples", "25",
            "--generation-codec", "utf-8", "--request-timeout", "10", "--seed", "20261201", "--no-color",
        ], environment: ProcessInfo.processInfo.environment.merging(["SCHEMATHESIS_HOOKS": ""]) { $1 })
        let summary = result.stdout.split(separator: "\n").suffix(12).joined(separator: "\n")
        #expect(result.status == 0, "schemathesis found mismatches:\n\(result.stdout.suffix(4000))")
        print("schemathesis: \(summary)")
    }
}
