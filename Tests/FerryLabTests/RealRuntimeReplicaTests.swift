import FerryTestSupport
import Foundation
import Testing

/// Two real `ferry serve` replicas on one real PostgreSQL catalog and one bucket of a real S3-compatible store
/// (moto), behind HAProxy, with real agents moving a real container with Podman and CRIU. Skipped, with a
/// `LAB SKIPPED` line on stderr, when the runtime lab is not set up.
@Suite("real-runtime replicas", .serialized,
       .enabled(if: LabCluster.isAvailable(suite: "real-runtime replicas"), "the runtime lab is not set up"))
final class RealRuntimeReplicaTests {
    static let bucket = "ferry-lab-replicas"
    static let lease = 2.0

    @Test("the replica driving a migration is killed mid-checkpoint: the other takes its lease over and the container runs on the target once")
    func replicaKilledMidMigration() throws {
        guard let moto = try MotoServer.start(suite: "real-runtime replicas") else { return }
        defer { moto.stop() }
        try moto.createBucket(Self.bucket)
        let catalog = try TestPostgres.freshDatabase()
        let cluster = try LabCluster(replication: LabReplication(
            count: 2, catalogURL: catalog,
            arguments: ["--blobs", "s3://\(Self.bucket)/lab", "--s3-endpoint", moto.endpoint, "--migration-lease", String(Self.lease)],
            environment: MotoServer.environment))
        defer { cluster.tearDown() }

        try cluster.runCounter(node: .nodeA, name: "lab-counter")
        let before = try LabCluster.waitFor("the counter on node-a to reach 10") {
            cluster.count(node: .nodeA).flatMap { $0 >= 10 ? $0 : nil }
        }
        // Asked of replica 0 itself, so it is the one that takes the lease and drives the migration.
        let asked = try Fixtures.ferry(["migrate", "--server", cluster.replicaURL(0), "--token", LabCluster.adminToken,
                                        "--container", "lab-counter", "--from", "node-a", "--to", "node-b", "--json", "--timeout", "180"])
        try #require(asked.status == 0, "ferry migrate: \(asked.stderr)")
        let id = try #require((try JSONSerialization.jsonObject(with: asked.stdoutData) as? [String: Any])?["id"] as? String)
        let first = try #require(cluster.replicaPID(0))
        let second = try #require(cluster.replicaPID(1))
        let holder = try LabCluster.waitFor("replica 0 to hold the lease", timeout: 10) {
            let holder = try TestPostgres.psql(catalog, "SELECT holder FROM migration_lease WHERE migration_id = '\(id)'")
            return holder.isEmpty ? nil : holder
        }
        #expect(holder.contains("-\(first)-"), "the replica asked drives it: \(holder)")

        try LabCluster.waitUntil("the migration to checkpoint on node-a", timeout: 60) {
            (try cluster.migration(id))["state"] as? String == "checkpointing"
        }
        // Both agents are held still while the lease changes hands, so that no report can finish the migration
        // before the surviving replica must take over (heartbeats pause for less than --node-timeout); then
        // replica 0 crashes.
        cluster.signalAgent(.nodeA, SIGSTOP)
        cluster.signalAgent(.nodeB, SIGSTOP)
        cluster.stopReplica(0)
        let takenOver = try LabCluster.waitFor("replica 1 to take the lease over", timeout: 30) {
            let events = ((try cluster.migration(id))["events"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
            return events.first { $0.contains("drives the migration now: the lease of \(holder) expired") }
        }
        cluster.signalAgent(.nodeA, SIGCONT)
        cluster.signalAgent(.nodeB, SIGCONT)
        #expect(takenOver.contains("-\(second)-"), "\(takenOver)")

        let migration = try cluster.waitForMigration(id, timeout: 180)
        #expect(migration["state"] as? String == "succeeded", "\(migration)\n\(cluster.diagnostics())")
        #expect(cluster.runningContainers(node: .nodeB).contains("lab-counter"), "\(cluster.diagnostics())")
        #expect(!cluster.runningContainers(node: .nodeA).contains("lab-counter"), "\(cluster.diagnostics())")
        #expect(cluster.allContainers(node: .nodeB).filter { $0.name == "lab-counter" }.count == 1, "restored once")
        // The target's prefetch asked a replica that never had the upload: it gave way to a download at once
        // rather than waiting out its 15 s stall limit with the container down.
        let transfer = (migration["phases"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "transfer" }?["duration_ms"] as? Int
        #expect((transfer ?? .max) < 10_000, "transfer took \(transfer ?? -1) ms")
        let restored = try LabCluster.waitFor("lab-counter to answer on node-b", timeout: 10) { cluster.count(node: .nodeB) }
        #expect(restored >= before, "restored, not restarted: \(restored) after \(before)")
        try LabCluster.waitUntil("lab-counter to count on on node-b", timeout: 10) { (cluster.count(node: .nodeB) ?? 0) > restored }
        #expect(try TestPostgres.psql(catalog, "SELECT count(*) FROM migration_lease").trimmingCharacters(in: .whitespaces) == "0",
                "a finished migration holds no lease")
        // The checkpoint went through the object store and is catalogued once, in the shared catalog.
        let checkpoint = try #require(migration["checkpoint"] as? String)
        #expect(try cluster.api("GET", "/api/v1/checkpoints/\(checkpoint)", base: cluster.replicaURL(1)).status == 200)
        #expect(try TestPostgres.psql(catalog, "SELECT count(*) FROM checkpoint") == "1")
    }
}
