import FerryTestSupport
import Foundation
import Testing

/// Migrations of real containers between two Podman stores on this machine (`LabCluster`): the real service, two
/// real agents with the podman driver, runc and CRIU. Each test gets a fresh cluster. Skipped, with a
/// `LAB SKIPPED` line on stderr, when the runtime lab is not set up.
@Suite("real-runtime migrations", .serialized,
       .enabled(if: LabCluster.isAvailable(suite: "real-runtime migrations"), "the runtime lab is not set up"))
final class RealRuntimeMigrationTests {
    let cluster: LabCluster

    init() throws {
        cluster = try LabCluster()
    }

    deinit { cluster.tearDown() }

    @Test("a live counter on node-a moves to node-b with ferry migrate --wait, and counts on from where it was")
    func liveCounterMoves() throws {
        let originalID = try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let before = try LabCluster.waitFor("the counter on node-a to reach 15") {
            cluster.count(node: .nodeA).flatMap { $0 >= 15 ? $0 : nil }
        }

        let cli = try cluster.ferry("migrate", "--container", "lab-counter", "--from", "node-a", "--to", "node-b",
                                    "--wait", "--json", "--timeout", "120")
        try #require(cli.status == 0, "ferry migrate: \(cli.stderr)\n\(cluster.diagnostics())")
        let printed = try #require(try JSONSerialization.jsonObject(with: cli.stdoutData) as? [String: Any])
        #expect(cli.stderr.contains("checkpointing lab-counter on node-a"), "progress is printed: \(cli.stderr)")

        try expectMoved("lab-counter", to: .nodeB, from: .nodeA, countBefore: before)
        #expect(cluster.containerID(node: .nodeB, name: "lab-counter") == originalID, "Podman restores under the same ID")

        let migration = try cluster.migration(try #require(printed["id"] as? String))
        try expectRecorded(migration, restoring: "lab-counter", on: .nodeB)
        #expect((migration["source"] as? [String: Any])?["node"] as? String == "node-a")
        #expect((migration["source"] as? [String: Any])?["container"] as? String == "lab-counter")
        #expect(states(of: migration).first { $0 != "pending" } == "checkpointing", "\(states(of: migration))")
        // Phases timed by the nodes that did the work, in the API, the CLI and the page's timeline.
        let phases = (migration["phases"] as? [[String: Any]] ?? []).reduce(into: [String: Int]()) { all, phase in
            all[phase["name"] as? String ?? ""] = phase["duration_ms"] as? Int
        }
        for name in ["preflight", "checkpoint", "frozen", "upload", "transfer", "restore"] {
            #expect((phases[name] ?? -1) >= 0, "phase \(name) in \(phases)")
        }
        #expect((phases["checkpoint"] ?? 0) > 0 && (phases["restore"] ?? 0) > 0)
        #expect(cli.stderr.contains("phases: preflight"), "\(cli.stderr)")
        // Cut-through: node-b fetched the archive while node-a uploaded it, and restored that file (named by the
        // digest node-b computed) without downloading it again.
        let messages = (migration["events"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
        #expect(messages.contains { $0.contains("archive verified on node-b (fetched while it was uploaded)") }, "\(messages)")
        // The page is rendered on the server: fetched with the admin token, then shown in Chromium.
        let html = try Fixtures.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-H", "Authorization: Bearer \(LabCluster.adminToken)",
                                                      cluster.serviceURL + "/migrations"]).stdout
        #expect(html.contains("data-migration=\"\(printed["id"] as? String ?? "")\""), "\(html.prefix(300))")
        #expect(html.contains("class=\"timeline\""), "the page draws a timeline")
        #expect(html.contains("phase phase-checkpoint") && html.contains("phase phase-restore"))
        let saved = cluster.scratch.appendingPathComponent("migrations.html")
        try html.replacingOccurrences(of: "<head>", with: "<head><base href=\"\(cluster.serviceURL)/\">")
            .write(to: saved, atomically: true, encoding: .utf8)
        let shot = try Browser.run(["--screenshot=" + Browser.artifacts.appendingPathComponent("migrations-timeline.png").path,
                                    "file://" + saved.path])
        #expect(shot.status == 0, "\(shot.stderr.suffix(300))")
        let checkpoint = try #require(migration["checkpoint"] as? String)
        let catalogued = try cluster.api("GET", "/api/v1/checkpoints/\(checkpoint)")
        #expect(catalogued.status == 200)
        #expect((catalogued.json["checkpoint"] as? [String: Any])?["source_node"] as? String == "node-a")
    }

    @Test("a checkpoint exported on node-a and pushed is restored on node-b by ferry migrate --checkpoint, and counts on")
    func cataloguedCheckpointRestores() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let before = try LabCluster.waitFor("the counter on node-a to reach 10") {
            cluster.count(node: .nodeA).flatMap { $0 >= 10 ? $0 : nil }
        }
        let archive = cluster.scratch.appendingPathComponent("lab-counter.tar.zst").path
        let export = try cluster.podman(.nodeA, "container", "checkpoint", "--export=\(archive)", "--compress=zstd", "lab-counter")
        try #require(export.status == 0, "podman container checkpoint: \(export.stderr)")
        #expect(!cluster.runningContainers(node: .nodeA).contains("lab-counter"), "the checkpoint stopped it on node-a")

        let push = try cluster.ferry("push", "--node", "node-a", archive)
        try #require(push.status == 0, "ferry push: \(push.stderr)")
        let id = String(push.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("sha256:".count))
        #expect(id.count == 64, "ferry push prints the digest: \(push.stdout)")

        let cli = try cluster.ferry("migrate", "--checkpoint", id, "--to", "node-b", "--wait", "--json", "--timeout", "120")
        try #require(cli.status == 0, "ferry migrate: \(cli.stderr)\n\(cluster.diagnostics())")
        let printed = try #require(try JSONSerialization.jsonObject(with: cli.stdoutData) as? [String: Any])

        try expectMoved("lab-counter", to: .nodeB, from: .nodeA, countBefore: before)

        let migration = try cluster.migration(try #require(printed["id"] as? String))
        try expectRecorded(migration, restoring: "lab-counter", on: .nodeB)
        #expect(migration["checkpoint"] as? String == id)
        #expect(migration["source"] == nil || migration["source"] is NSNull, "nothing was checkpointed by the migration")
        #expect(!states(of: migration).contains("checkpointing"), "\(states(of: migration))")
    }

    @Test("a torn-down cluster leaves no container, mount, directory, address or process behind")
    func teardownLeavesNothing() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        try cluster.runCounter(node: .nodeB, name: "lab-other")
        let addresses = LabCluster.Node.allCases.flatMap { node in
            cluster.allContainers(node: node).compactMap { container -> String? in
                let inspect = try? cluster.podman(node, "inspect", "--format", "{{.NetworkSettings.IPAddress}}", container.name)
                return inspect?.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        #expect(addresses.count == 2 && addresses.allSatisfy { !$0.isEmpty }, "\(addresses)")
        let processes = cluster.processIDs
        let stores = LabCluster.Node.allCases.map { cluster.store($0) }
        let roots = stores.flatMap { [$0.directory.path, $0.runRoot.path] } + [cluster.run.directory.path]

        #expect(cluster.tearDown().isEmpty)

        #expect(LabStore.mountPoints(under: roots).isEmpty)
        for path in roots + [cluster.directory.path] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) is removed")
        }
        for pid in processes { #expect(kill(pid, 0) != 0, "process \(pid) is gone") }
        let runtimes = try Self.processes { argv in argv.contains { word in roots.contains { word.contains($0) } } }
        #expect(runtimes.isEmpty, "no conmon or podman still works on the stores: \(runtimes)")
        let reserved = (try? FileManager.default.contentsOfDirectory(atPath: "/var/lib/cni/networks/podman")) ?? []
        for address in addresses { #expect(!reserved.contains(address), "\(address) is released") }
    }

    // MARK: Checks

    /// The container runs on `target` only, and its counter went on from where it was: the first value read there is
    /// at least the one read before the move (a fresh start would count from 1), and it keeps going up.
    private func expectMoved(_ name: String, to target: LabCluster.Node, from source: LabCluster.Node,
                             countBefore before: Int) throws {
        #expect(cluster.runningContainers(node: target).contains(name), "\(cluster.diagnostics())")
        #expect(!cluster.runningContainers(node: source).contains(name), "\(cluster.diagnostics())")
        #expect(cluster.allContainers(node: source).first { $0.name == name }?.state != "running")
        let first = try LabCluster.waitFor("\(name) to answer on \(target)", timeout: 10) { cluster.count(node: target, name: name) }
        #expect(first >= before, "restored, not restarted: \(first) after \(before)")
        try LabCluster.waitUntil("\(name) to count past \(first) on \(target)", timeout: 10) {
            (cluster.count(node: target, name: name) ?? 0) > first
        }
    }

    /// The migration's record: succeeded on `target`, through transferring and restoring, with the restored
    /// container's ID as the driver's result.
    private func expectRecorded(_ migration: [String: Any], restoring name: String, on target: LabCluster.Node) throws {
        #expect(migration["state"] as? String == "succeeded", "\(migration)")
        #expect(migration["target"] as? String == target.rawValue)
        #expect(migration["error"] == nil || migration["error"] is NSNull, "\(migration["error"] ?? "")")
        let states = states(of: migration)
        let transferring = try #require(states.firstIndex(of: "transferring"), "\(states)")
        let restoring = try #require(states.firstIndex(of: "restoring"), "\(states)")
        #expect(transferring < restoring && states.last == "succeeded", "\(states)")
        let result = migration["result"] as? [String: Any]
        #expect(result?["container_id"] as? String == cluster.containerID(node: target, name: name), "\(result ?? [:])")
        #expect(result?["exit_status"] as? Int == 0)
        #expect(migration["finished_at"] as? String != nil)
    }

    private func states(of migration: [String: Any]) -> [String] {
        (migration["events"] as? [[String: Any]] ?? []).compactMap { $0["state"] as? String }
    }

    /// Processes whose argv matches (from /proc).
    private static func processes(matching: ([String]) -> Bool) throws -> [String] {
        let pids = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }
        return pids.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return matching(argv) ? "\(pid): \(argv.joined(separator: " "))" : nil
        }
    }
}
