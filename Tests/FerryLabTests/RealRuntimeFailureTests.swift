import FerryTestSupport
import Foundation
import Testing

/// Every way a migration of a live container can go wrong, staged for real on two Podman stores, each ending with
/// the invariant checked by `podman ps` on both nodes and by the record: after a migration ends exactly one copy
/// runs, on the target when it `succeeded`, on the source when it `failed` (rolled back, or never stopped).
@Suite("real-runtime migration failures", .serialized,
       .enabled(if: LabCluster.isAvailable(suite: "real-runtime migration failures"), "the runtime lab is not set up"))
final class RealRuntimeFailureTests {
    let cluster: LabCluster

    init() throws {
        cluster = try LabCluster(nodeTimeout: 3)
    }

    deinit { cluster.tearDown() }

    // MARK: Preflight, before anything stops

    @Test("a name taken on the target blocks the migration before the checkpoint; freed, the next try passes at once")
    func preflightFailureStopsNothing() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        #expect(try cluster.podman(.nodeB, "create", "--name", "lab-counter", LabCluster.image, "true").status == 0)
        let blocked = try migrate("lab-counter")
        #expect(blocked.cli.status == 1)
        #expect(blocked.migration["state"] as? String == "failed")
        #expect(code(blocked.migration) == "PREFLIGHT_FAILED")
        #expect(message(blocked.migration).contains("CONTAINER_NAME_IN_USE"), "\(message(blocked.migration))")
        #expect(!states(blocked.migration).contains("checkpointing"), "nothing was checkpointed")
        #expect(blocked.migration["running_on"] as? String == "node-a")
        try expectCounting("lab-counter", on: .nodeA)

        // Facts are asked for at that moment, not taken from a heartbeat seconds old.
        #expect(try cluster.podman(.nodeB, "rm", "-f", "-t", "0", "lab-counter").status == 0)
        let passed = try migrate("lab-counter")
        #expect(passed.cli.status == 0, "\(passed.cli.stderr)")
        try expectOnlyOn(.nodeB, "lab-counter", passed.migration, state: "succeeded")
    }

    @Test("another build of the base image on the target (BASE_IMAGE_ID_MISMATCH) blocks before the checkpoint")
    func baseImageMismatch() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let original = try cluster.podman(.nodeB, "image", "inspect", "--format", "{{.Id}}", LabCluster.image).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cluster.podman(.nodeB, "run", "--name", "lab-build", LabCluster.image, "touch", "/rebuilt").status == 0)
        #expect(try cluster.podman(.nodeB, "commit", "-q", "lab-build", LabCluster.image).status == 0)
        #expect(try cluster.podman(.nodeB, "rm", "-f", "-t", "0", "lab-build").status == 0)
        let removed = try cluster.podman(.nodeB, "rmi", original)
        #expect(removed.status == 0, "\(removed.stderr)")
        let blocked = try migrate("lab-counter")
        #expect(blocked.migration["state"] as? String == "failed")
        #expect(message(blocked.migration).contains("BASE_IMAGE_ID_MISMATCH"), "\(message(blocked.migration))")
        try expectCounting("lab-counter", on: .nodeA)
        #expect(cluster.allContainers(node: .nodeB).isEmpty)
    }

    @Test("--name with --tcp-established, which Podman refuses, is refused by preflight with nothing stopped")
    func nameWithTCPEstablished() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let blocked = try migrate("lab-counter", "--name", "lab-copy", "--tcp-established")
        #expect(blocked.migration["state"] as? String == "failed")
        #expect(message(blocked.migration).contains("NAME_WITH_TCP_ESTABLISHED"), "\(message(blocked.migration))")
        try expectCounting("lab-counter", on: .nodeA)
        #expect(cluster.allContainers(node: .nodeB).isEmpty)
    }

    // MARK: After the source stopped: rollback

    @Test("a restore that fails on the target (its base image gone) rolls back: the counter runs on node-a again")
    func restoreFailureRollsBack() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        #expect(try cluster.podman(.nodeB, "rmi", "-f", LabCluster.image).status == 0)
        let failed = try migrate("lab-counter")
        #expect(failed.cli.status == 1)
        #expect(failed.migration["state"] as? String == "failed", "\(failed.migration)")
        #expect(code(failed.migration) == "RESTORE_FAILED")
        #expect(failed.migration["rolled_back"] as? Bool == true)
        #expect(failed.migration["running_on"] as? String == "node-a")
        #expect(message(failed.migration).contains("Error:"), "the runtime's own message: \(message(failed.migration))")
        #expect(failed.cli.stderr.contains("rolled back"), "\(failed.cli.stderr)")
        try expectCounting("lab-counter", on: .nodeA)
        #expect(cluster.allContainers(node: .nodeB).isEmpty, "a failed restore leaves nothing on the target: \(cluster.allContainers(node: .nodeB))")
    }

    @Test("a target down past the node timeout during the transfer: NODE_DOWN, rolled back, and the returning agent never restores")
    func targetDownPastTimeout() throws {
        _ = cluster.stopAgent(.nodeB)
        try cluster.startAgent(.nodeB, extraArguments: ["--max-download-rate", "4000"])
        try cluster.waitForNodes()
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let id = try start("lab-counter")
        try LabCluster.waitUntil("the transfer to begin", timeout: 30) {
            ((try cluster.migration(id)["progress"] as? [String: Any])?["bytes_done"] as? Int ?? 0) > 0
        }
        _ = cluster.stopAgent(.nodeB)
        let failed = try cluster.waitForMigration(id, timeout: 60)
        #expect(failed["state"] as? String == "failed")
        #expect(code(failed) == "NODE_DOWN")
        #expect(failed["rolled_back"] as? Bool == true)
        try expectCounting("lab-counter", on: .nodeA)

        try cluster.startAgent(.nodeB)
        try cluster.waitForNodes()
        let job = try LabCluster.waitFor("node-b's agent to give its job up", timeout: 30) { () -> [String: Any]? in
            let reply = try? cluster.agentAPI(.nodeB, "GET", "/v1/jobs/\(id)")
            let json = reply?.json ?? [:]
            return json["state"] as? String == "failed" ? json : nil
        }
        #expect((job["error"] as? [String: Any])?["code"] as? String == "ABANDONED", "\(job)")
        #expect(cluster.allContainers(node: .nodeB).isEmpty, "no second copy: \(cluster.allContainers(node: .nodeB))")
        try expectCounting("lab-counter", on: .nodeA)
    }

    // MARK: Agents killed at the worst moment

    @Test("the target agent killed after Podman restored but before it reported: the restarted agent reports success")
    func targetKilledAfterRestore() throws {
        let hold = cluster.store(.nodeB).directory.appendingPathComponent("hold-after-restore")
        let done = cluster.store(.nodeB).directory.appendingPathComponent("restore-done")
        FileManager.default.createFile(atPath: hold.path, contents: nil)
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let id = try start("lab-counter")
        try LabCluster.waitUntil("Podman to finish the restore on node-b", timeout: 60) {
            FileManager.default.fileExists(atPath: done.path)
        }
        _ = cluster.stopAgent(.nodeB)
        try FileManager.default.removeItem(at: hold)
        try cluster.startAgent(.nodeB)
        let finished = try cluster.waitForMigration(id, timeout: 60)
        try expectOnlyOn(.nodeB, "lab-counter", finished, state: "succeeded")
        let job = try cluster.agentAPI(.nodeB, "GET", "/v1/jobs/\(id)").json
        #expect(job["state"] as? String == "succeeded", "\(job)")
    }

    @Test("the source agent killed mid-checkpoint: the archive is kept, reconciled, and exactly one copy runs")
    func sourceKilledMidCheckpoint() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let id = try start("lab-counter")
        try LabCluster.waitUntil("the checkpoint to start", timeout: 30, interval: 0.02) {
            try cluster.migration(id)["state"] as? String == "checkpointing"
        }
        _ = cluster.stopAgent(.nodeA)
        try cluster.startAgent(.nodeA)
        let finished = try cluster.waitForMigration(id, timeout: 90)
        let state = finished["state"] as? String
        #expect(state == "succeeded" || state == "failed", "\(finished)")
        if state == "succeeded" {
            try expectOnlyOn(.nodeB, "lab-counter", finished, state: "succeeded")
        } else {
            #expect(finished["running_on"] as? String == "node-a", "\(finished)")
            try expectCounting("lab-counter", on: .nodeA)
            #expect(!cluster.runningContainers(node: .nodeB).contains("lab-counter"))
        }
    }

    // MARK: TCP

    @Test("a container with an established TCP connection moves with --tcp-established and the connection carries on")
    func establishedTCPMoves() throws {
        let script = "tail -f /dev/null | nc -l -p 5000 > /tmp/recv & sleep 0.5; i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done | nc 127.0.0.1 5000"
        let run = try cluster.podman(.nodeA, "run", "-d", "--name", "lab-tcp", LabCluster.image, "sh", "-c", script)
        try #require(run.status == 0, "\(run.stderr)")
        try LabCluster.waitUntil("data flows over the connection", timeout: 20) { received(.nodeA) ?? 0 > 3 }

        // Without the flag the preflight sees the connection (CRIU would refuse the dump) and stops nothing.
        let blocked = try migrate("lab-tcp")
        #expect(blocked.migration["state"] as? String == "failed")
        #expect(message(blocked.migration).contains("TCP_ESTABLISHED_FLAG_MISSING"), "\(message(blocked.migration))")
        #expect(cluster.runningContainers(node: .nodeA).contains("lab-tcp"))

        let before = received(.nodeA) ?? 0
        let moved = try migrate("lab-tcp", "--tcp-established")
        #expect(moved.cli.status == 0, "\(moved.cli.stderr)")
        #expect(moved.migration["state"] as? String == "succeeded")
        #expect(cluster.runningContainers(node: .nodeB).contains("lab-tcp"))
        #expect(!cluster.runningContainers(node: .nodeA).contains("lab-tcp"))
        let first = try LabCluster.waitFor("the connection to answer on node-b", timeout: 10) { received(.nodeB) }
        #expect(first >= before)
        try LabCluster.waitUntil("the same connection to carry on", timeout: 10) { (received(.nodeB) ?? 0) > first }
    }

    // MARK: Helpers

    private func received(_ node: LabCluster.Node) -> Int? {
        guard let result = try? cluster.podman(node, "exec", "lab-tcp", "sh", "-c", "tail -n1 /tmp/recv"), result.status == 0 else { return nil }
        return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private func migrate(_ container: String, _ extra: String...) throws -> (cli: ProcessResult, migration: [String: Any]) {
        let cli = try cluster.ferry(arguments: ["migrate", "--container", container, "--from", "node-a", "--to", "node-b",
                                                "--wait", "--json", "--timeout", "120"] + extra)
        let printed = (try? JSONSerialization.jsonObject(with: cli.stdoutData) as? [String: Any]) ?? [:]
        let id = try #require(printed["id"] as? String, "ferry migrate printed no migration: \(cli.stderr)")
        return (cli, try cluster.migration(id))
    }

    /// Starts a migration without waiting; its ID.
    private func start(_ container: String) throws -> String {
        let reply = try cluster.api("POST", "/api/v1/migrations", body: """
            {"source": {"node": "node-a", "container": "\(container)"}, "target": "node-b", "timeout_seconds": 300}
            """)
        return try #require(reply.json["id"] as? String, "\(reply.text)")
    }

    private func expectCounting(_ name: String, on node: LabCluster.Node) throws {
        #expect(cluster.runningContainers(node: node).contains(name), "\(cluster.diagnostics())")
        let other: LabCluster.Node = node == .nodeA ? .nodeB : .nodeA
        #expect(!cluster.runningContainers(node: other).contains(name), "\(cluster.diagnostics())")
        let first = try LabCluster.waitFor("\(name) to answer on \(node)", timeout: 10) { cluster.count(node: node, name: name) }
        try LabCluster.waitUntil("\(name) to count on \(node)", timeout: 10) { (cluster.count(node: node, name: name) ?? 0) > first }
    }

    private func expectOnlyOn(_ node: LabCluster.Node, _ name: String, _ migration: [String: Any], state: String) throws {
        #expect(migration["state"] as? String == state, "\(migration)")
        #expect(migration["running_on"] as? String == node.rawValue)
        try expectCounting(name, on: node)
    }

    private func code(_ migration: [String: Any]) -> String? { (migration["error"] as? [String: Any])?["code"] as? String }
    private func message(_ migration: [String: Any]) -> String { (migration["error"] as? [String: Any])?["message"] as? String ?? "" }
    private func states(_ migration: [String: Any]) -> [String] {
        (migration["events"] as? [[String: Any]] ?? []).compactMap { $0["state"] as? String }
    }
}
