import FerryTestSupport
import Foundation
import Testing

/// Checkpoint images through Ferry's registry view (`/v2/`) with real Podman, runc and CRIU on two stores: what a
/// node without a Ferry agent (or a Kubernetes node) does with a checkpoint. Skipped, with a `LAB SKIPPED` line
/// on stderr, when the runtime lab is not set up.
@Suite("real-runtime checkpoint images", .serialized,
       .enabled(if: LabCluster.isAvailable(suite: "real-runtime checkpoint images"), "the runtime lab is not set up"))
final class RealRuntimeImageTests {
    let cluster: LabCluster

    init() throws {
        cluster = try LabCluster()
    }

    deinit { cluster.tearDown() }

    @Test("a live counter checkpointed on node-a and pushed as an archive is pulled by podman on node-b as an image, restored, and counts on")
    func pulledImageRestores() throws {
        let originalID = try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let before = try LabCluster.waitFor("the counter on node-a to reach 10") {
            cluster.count(node: .nodeA).flatMap { $0 >= 10 ? $0 : nil }
        }
        let archive = cluster.scratch.appendingPathComponent("lab-counter.tar.zst").path
        let export = try cluster.podman(.nodeA, "container", "checkpoint", "--export=\(archive)", "--compress=zstd", "lab-counter")
        try #require(export.status == 0, "podman container checkpoint: \(export.stderr)")
        let push = try cluster.ferry("push", "--node", "node-a", archive)
        try #require(push.status == 0, "ferry push: \(push.stderr)")
        let id = String(push.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("sha256:".count))
        let checkpoint = try cluster.api("GET", "/api/v1/checkpoints/\(id)").json["checkpoint"] as? [String: Any]
        let reference = try #require(checkpoint?["oci_reference"] as? String, "\(checkpoint ?? [:])")
        #expect(reference.hasSuffix("/checkpoints/lab-counter:\(id.prefix(12))"))

        // What a user on node-b types: log in with a read-capable token, pull, restore.
        // (A private auth file: the test leaves no credentials in root's.)
        let authFile = cluster.scratch.appendingPathComponent("auth.json").path
        let login = try cluster.podman(.nodeB, "login", "--authfile", authFile, "--tls-verify=false", "--username", "ferry",
                                       "--password", LabCluster.adminToken, String(reference.split(separator: "/").first ?? ""))
        try #require(login.status == 0, "podman login: \(login.stderr)")
        let noCredentials = cluster.scratch.appendingPathComponent("none.json")
        try Data("{}".utf8).write(to: noCredentials)
        let anonymous = try cluster.podman(.nodeB, "pull", "--authfile", noCredentials.path, "--tls-verify=false", reference)
        #expect(anonymous.status != 0 && anonymous.stderr.lowercased().contains("unauthorized"), "the registry wants a token: \(anonymous.stderr)")
        let pull = try cluster.podman(.nodeB, "pull", "--authfile", authFile, "--tls-verify=false", reference)
        try #require(pull.status == 0, "podman pull: \(pull.stderr)")
        let restore = try cluster.podman(.nodeB, "container", "restore", reference)
        try #require(restore.status == 0, "podman container restore IMAGE: \(restore.stderr)\n\(cluster.diagnostics())")

        #expect(cluster.runningContainers(node: .nodeB).contains("lab-counter"), "\(cluster.diagnostics())")
        #expect(!cluster.runningContainers(node: .nodeA).contains("lab-counter"))
        #expect(cluster.containerID(node: .nodeB, name: "lab-counter") == originalID, "Podman restores the image under the checkpoint's ID")
        let first = try LabCluster.waitFor("lab-counter to answer on node-b", timeout: 10) { cluster.count(node: .nodeB) }
        #expect(first >= before, "restored from the checkpoint, not started afresh: \(first) after \(before)")
        try LabCluster.waitUntil("lab-counter to count past \(first) on node-b", timeout: 10) {
            (cluster.count(node: .nodeB) ?? 0) > first
        }
    }

    @Test("podman container checkpoint --create-image + podman save, pushed to Ferry, is inspected and restored on node-b by ferry migrate")
    func savedImageRestores() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let before = try LabCluster.waitFor("the counter on node-a to reach 10") {
            cluster.count(node: .nodeA).flatMap { $0 >= 10 ? $0 : nil }
        }
        let image = "localhost/lab-counter-checkpoint:1"
        let create = try cluster.podman(.nodeA, "container", "checkpoint", "--create-image", image, "lab-counter")
        try #require(create.status == 0, "podman container checkpoint --create-image: \(create.stderr)")
        for format in ["oci-archive", "docker-archive"] {
            let saved = cluster.scratch.appendingPathComponent("lab-counter.\(format).tar").path
            let save = try cluster.podman(.nodeA, "save", "--format", format, "-o", saved, image)
            try #require(save.status == 0, "podman save: \(save.stderr)")

            let inspect = try Fixtures.ferry(["inspect", saved])
            #expect(inspect.status == 0 && inspect.stdout.contains("lab-counter"), "\(inspect.stderr)")
            let push = try cluster.ferry("push", "--node", "node-a", saved)
            try #require(push.status == 0, "ferry push \(format): \(push.stderr)")
            let id = String(push.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("sha256:".count))
            let checkpoint = try cluster.api("GET", "/api/v1/checkpoints/\(id)").json["checkpoint"] as? [String: Any]
            let source = checkpoint?["source_image"] as? [String: Any]
            #expect(source?["format"] as? String == format, "\(checkpoint ?? [:])")
            if format == "oci-archive" {
                // Podman writes the dumping host's facts only into the image's annotations.
                let annotations = source?["annotations"] as? [String: String] ?? [:]
                #expect(annotations["io.podman.annotations.checkpoint.runtime.name"] == "runc", "\(annotations)")
                #expect(annotations["io.podman.annotations.checkpoint.host.kernel"] == (try? Fixtures.run("/bin/uname", ["-r"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
            }
        }

        // Restored from the catalogued image's layer through the agents: the counter carries on on node-b.
        let ids = try cluster.api("GET", "/api/v1/checkpoints?container=lab-counter").json["items"] as? [[String: Any]] ?? []
        let id = try #require(ids.first { ($0["source_image"] as? [String: Any])?["format"] as? String == "oci-archive" }?["id"] as? String)
        let cli = try cluster.ferry("migrate", "--checkpoint", id, "--to", "node-b", "--wait", "--json", "--timeout", "120")
        try #require(cli.status == 0, "ferry migrate: \(cli.stderr)\n\(cluster.diagnostics())")
        #expect(cluster.runningContainers(node: .nodeB).contains("lab-counter"), "\(cluster.diagnostics())")
        let first = try LabCluster.waitFor("lab-counter to answer on node-b", timeout: 10) { cluster.count(node: .nodeB) }
        #expect(first >= before, "restored, not restarted: \(first) after \(before)")
        try LabCluster.waitUntil("lab-counter to count past \(first) on node-b", timeout: 10) {
            (cluster.count(node: .nodeB) ?? 0) > first
        }
    }

    @Test("ferry checkpoint --node checkpoints a live counter through node-a's agent without moving it: catalogued with its labels, still counting")
    func checkpointWithoutMoving() throws {
        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let before = try LabCluster.waitFor("the counter on node-a to reach 5") {
            cluster.count(node: .nodeA).flatMap { $0 >= 5 ? $0 : nil }
        }
        let cli = try cluster.ferry("checkpoint", "--node", "node-a", "--leave-running", "--label", "case=forensic", "lab-counter")
        try #require(cli.status == 0, "ferry checkpoint: \(cli.stderr)\n\(cluster.diagnostics())")
        let id = String(cli.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("sha256:".count))
        let checkpoint = try cluster.api("GET", "/api/v1/checkpoints/\(id)").json["checkpoint"] as? [String: Any]
        #expect(checkpoint?["source_node"] as? String == "node-a")
        #expect((checkpoint?["labels"] as? [String: String])?["case"] == "forensic")
        #expect((checkpoint?["container"] as? [String: Any])?["name"] as? String == "lab-counter")
        #expect(cluster.runningContainers(node: .nodeA).contains("lab-counter"), "--leave-running")
        try LabCluster.waitUntil("the counter to go on past \(before)", timeout: 10) { (cluster.count(node: .nodeA) ?? 0) > before }
    }
}
