import FerryCatalog
import FerryClient
import FerryValidation
import Foundation

/// Drives every unfinished migration forward, on its own thread, from what is in the catalog: so a restarted
/// service picks up where it stopped, and an agent that restarts is asked again for the same (idempotent) job.
///
/// pending → (checkpointing on the source node) → transferring (the target agent downloads the archive, resuming
/// with Range and checking the digest) → restoring (the target's runtime driver) → succeeded | failed; cancelled at
/// any point by request. A migration fails with a stable code and never hangs: a node that stops heartbeating fails
/// it with `NODE_DOWN`, and every migration has a deadline (`TIMEOUT`).
public final class MigrationOrchestrator: @unchecked Sendable {
    private let context: FerryServiceContext
    private let registry: NodeRegistry
    private let interval: Double
    /// Guards `running` and `pending`; `condition` wakes the loop early.
    private let condition = NSCondition()
    private var running = false
    private var pending = false
    private var thread: Thread?
    /// Which unreachable-agent messages were logged, so the event log is not flooded. Loop thread only.
    private var reportedUnreachable: Set<String> = []

    init(context: FerryServiceContext, registry: NodeRegistry, interval: Double = 0.5) {
        self.context = context
        self.registry = registry
        self.interval = interval
    }

    func start() {
        condition.lock()
        running = true
        condition.unlock()
        let thread = Thread { [self] in loop() }
        thread.name = "ferry-migrations"
        self.thread = thread
        thread.start()
    }

    func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    /// Runs the loop soon (a migration was created).
    func wake() {
        condition.lock()
        pending = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            if !pending { _ = condition.wait(until: Date().addingTimeInterval(interval)) }
            pending = false
            let keepGoing = running
            condition.unlock()
            guard keepGoing else { return }
            do {
                for migration in try context.catalog.unfinishedMigrations() { step(migration) }
            } catch {
                context.log("migrations: cannot read the catalog: \(error)")
            }
        }
    }

    // MARK: Steps

    private func step(_ migration: MigrationRecord) {
        if let deadline = Catalog.date(fromTimestamp: migration.deadlineAt), Date() > deadline {
            fail(migration, "TIMEOUT", "the migration did not finish before its deadline (\(migration.deadlineAt))")
            cancelJobs(of: migration)
            return
        }
        switch migration.state {
        case .pending: start(migration)
        case .checkpointing: followCheckpoint(migration)
        case .transferring, .restoring: followRestore(migration)
        case .succeeded, .failed, .cancelled: break
        }
    }

    private func start(_ migration: MigrationRecord) {
        guard let target = liveNode(migration.targetNode, for: migration, role: "target") else { return }
        if migration.checkpointID == nil, let sourceName = migration.sourceNode, let container = migration.sourceContainer {
            guard let source = liveNode(sourceName, for: migration, role: "source") else { return }
            let options = storedOptions(migration)
            let job: [String: Any] = ["id": checkpointJobID(migration), "kind": "checkpoint", "container": container,
                                      "options": jsonObject(options.checkpoint)]
            guard post(job, to: source, migration: migration) else { return }
            update(migration, "checkpointing \(container) on \(sourceName)") { $0.state = .checkpointing }
            return
        }
        beginRestore(migration, on: target)
    }

    /// Preflight against the target's facts, then hand the restore job to the target agent.
    private func beginRestore(_ migration: MigrationRecord, on target: NodeRecord) {
        guard let checkpointID = migration.checkpointID, let record = try? context.catalog.checkpoint(checkpointID) else {
            fail(migration, "CHECKPOINT_NOT_FOUND", "the checkpoint to migrate is no longer in the catalog")
            return
        }
        let options = storedOptions(migration)
        let targetFacts = (try? JSONDecoder().decode(TargetFacts.self, from: Data(target.facts.utf8))) ?? TargetFacts()
        var blocking: [Finding] = []
        if let factsText = record.facts, let facts = try? JSONDecoder().decode(CheckpointFacts.self, from: Data(factsText.utf8)) {
            blocking = Preflight.findings(checkpoint: facts, target: targetFacts, options: options.restoreOptions)
        }
        let archiveErrors = ((try? context.catalog.findings(of: record.id)) ?? []).filter { $0.severity == "error" }
        blocking += archiveErrors.map { Finding(code: $0.code, severity: .error, path: $0.path, message: $0.message, waiver: $0.waiver) }
        blocking = blocking.filter { $0.severity == .error && !options.waive.contains($0.code) }
        if !blocking.isEmpty {
            let list = blocking.map { finding in
                finding.waiver.map { "\(finding.code) (waive with \($0))" } ?? finding.code
            }.joined(separator: ", ")
            fail(migration, "PREFLIGHT_FAILED", "preflight found errors on \(target.name): \(list)",
                 result: ["findings": blocking.map { ["code": $0.code, "message": $0.message, "waiver": $0.waiver as Any] }])
            return
        }
        let job: [String: Any] = ["id": migration.id, "kind": "restore", "checkpoint": record.id, "size": record.size,
                                  "options": jsonObject(options.restore)]
        guard post(job, to: target, migration: migration) else { return }
        update(migration, "transferring \(record.id.prefix(12)) (\(record.size) bytes) to \(target.name)") {
            $0.state = .transferring
            $0.bytesTotal = record.size
        }
    }

    private func followCheckpoint(_ migration: MigrationRecord) {
        guard let sourceName = migration.sourceNode,
              let source = liveNode(sourceName, for: migration, role: "source") else { return }
        guard let job = job(checkpointJobID(migration), on: source, migration: migration, repost: nil) else { return }
        switch job["state"] as? String {
        case "succeeded":
            guard let checkpoint = job["checkpoint"] as? String else {
                fail(migration, "CHECKPOINT_FAILED", "the source agent reported no checkpoint ID")
                return
            }
            let updated = update(migration, "checkpointed as \(checkpoint.prefix(12)) and catalogued") {
                $0.checkpointID = checkpoint
            }
            guard let target = liveNode(migration.targetNode, for: updated, role: "target") else { return }
            beginRestore(updated, on: target)
        case "failed":
            let error = job["error"] as? [String: Any]
            fail(migration, error?["code"] as? String ?? "CHECKPOINT_FAILED",
                 "checkpoint on \(sourceName) failed: \(error?["message"] as? String ?? "no reason given")", result: job["result"])
        default:
            break
        }
    }

    private func followRestore(_ migration: MigrationRecord) {
        guard let target = liveNode(migration.targetNode, for: migration, role: "target") else { return }
        let repost: [String: Any]? = migration.checkpointID.map { checkpoint in
            ["id": migration.id, "kind": "restore", "checkpoint": checkpoint, "size": migration.bytesTotal,
             "options": jsonObject(storedOptions(migration).restore)]
        }
        guard let job = job(migration.id, on: target, migration: migration, repost: repost) else { return }
        let done = (job["bytes_done"] as? NSNumber)?.int64Value ?? migration.bytesDone
        switch job["state"] as? String {
        case "downloading":
            if done != migration.bytesDone { update(migration, nil) { $0.bytesDone = done } }
        case "restoring":
            if migration.state != .restoring {
                update(migration, "archive verified on \(target.name); restoring") {
                    $0.state = .restoring
                    $0.bytesDone = $0.bytesTotal
                }
            }
        case "succeeded":
            // A small restore can finish between two polls: the log still shows that the archive was verified
            // and the runtime ran.
            if migration.state == .transferring {
                update(migration, "archive verified on \(target.name); restoring") {
                    $0.state = .restoring
                    $0.bytesDone = $0.bytesTotal
                }
            }
            update(migration, "restored on \(target.name)") {
                $0.state = .succeeded
                $0.bytesDone = $0.bytesTotal
                $0.result = self.jsonText(job["result"])
            }
        case "failed":
            let error = job["error"] as? [String: Any]
            fail(migration, error?["code"] as? String ?? "RESTORE_FAILED",
                 "restore on \(target.name) failed: \(error?["message"] as? String ?? "no reason given")", result: job["result"])
        default:
            break
        }
    }

    // MARK: Agents

    /// The node, if it is registered and heartbeating; otherwise the migration fails (`NODE_NOT_FOUND`, `NODE_DOWN`).
    private func liveNode(_ name: String, for migration: MigrationRecord, role: String) -> NodeRecord? {
        guard let node = try? context.catalog.node(name) else {
            fail(migration, "NODE_NOT_FOUND", "the \(role) node \(name) has never registered")
            return nil
        }
        guard registry.isUp(node) else {
            fail(migration, "NODE_DOWN", "the \(role) node \(name) stopped heartbeating (last seen \(node.lastSeenAt))")
            return nil
        }
        return node
    }

    private func client(for node: NodeRecord) -> FerryClient? {
        guard let url = URL(string: node.agentURL) else { return nil }
        return FerryClient(server: url, token: registry.token(for: node.name))
    }

    /// Hands a job to an agent; true when the agent took it (or already had it).
    private func post(_ job: [String: Any], to node: NodeRecord, migration: MigrationRecord) -> Bool {
        guard let client = client(for: node), let body = try? JSONSerialization.data(withJSONObject: job) else { return false }
        do {
            let (status, data) = try client.call("POST", "/v1/jobs", json: body, timeout: 10)
            if status == 200 || status == 201 || status == 202 { return true }
            let message = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["error"] as? [String: Any]
            if status == 401 || status == 403 {
                unreachable(migration, "the agent on \(node.name) refused the service's token; waiting for its next heartbeat")
                return false
            }
            fail(migration, message?["code"] as? String ?? "AGENT_REFUSED",
                 "the agent on \(node.name) refused the job (\(status)): \(message?["message"] as? String ?? "")")
        } catch {
            unreachable(migration, "cannot reach the agent on \(node.name) at \(node.agentURL); retrying")
        }
        return false
    }

    /// A job's status from an agent. A job the agent does not know (it lost its work directory) is posted again.
    private func job(_ id: String, on node: NodeRecord, migration: MigrationRecord, repost: [String: Any]?) -> [String: Any]? {
        guard let client = client(for: node) else { return nil }
        do {
            let (status, data) = try client.call("GET", "/v1/jobs/\(id)", timeout: 10)
            if status == 404, let repost {
                _ = post(repost, to: node, migration: migration)
                return nil
            }
            guard status == 200, let job = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                if status == 404 { fail(migration, "JOB_LOST", "the agent on \(node.name) no longer knows job \(id)") }
                return nil
            }
            reportedUnreachable.remove(migration.id)
            return job
        } catch {
            unreachable(migration, "cannot reach the agent on \(node.name) at \(node.agentURL); retrying")
            return nil
        }
    }

    /// Best effort: tells the agents to stop a migration's jobs.
    func cancelJobs(of migration: MigrationRecord) {
        for (nodeName, jobID) in [(migration.targetNode, migration.id), (migration.sourceNode, checkpointJobID(migration))] {
            guard let nodeName, let node = try? context.catalog.node(nodeName), let client = client(for: node) else { continue }
            _ = try? client.call("DELETE", "/v1/jobs/\(jobID)", timeout: 5)
        }
    }

    private func unreachable(_ migration: MigrationRecord, _ message: String) {
        guard reportedUnreachable.insert(migration.id).inserted else { return }
        update(migration, message) { _ in }
    }

    // MARK: Helpers

    private func checkpointJobID(_ migration: MigrationRecord) -> String { migration.id + "-checkpoint" }

    private func storedOptions(_ migration: MigrationRecord) -> StoredMigrationOptions {
        (try? JSONDecoder().decode(StoredMigrationOptions.self, from: Data(migration.options.utf8)))
            ?? StoredMigrationOptions(restore: [:], checkpoint: [:], waive: [])
    }

    private func jsonObject(_ options: [String: JSONScalar]) -> Any {
        (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(options))) ?? [String: Any]()
    }

    private func jsonText(_ value: Any?) -> String? {
        guard let value, JSONSerialization.isValidJSONObject(value),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    @discardableResult
    private func update(_ migration: MigrationRecord, _ event: String?, _ change: (inout MigrationRecord) -> Void) -> MigrationRecord {
        do {
            let updated = try context.catalog.updateMigration(migration.id, event: event, change)
            if let event { context.log("migration \(migration.id): \(updated.state.rawValue): \(event)") }
            return updated
        } catch {
            context.log("migration \(migration.id): cannot record the change: \(error)")
            return migration
        }
    }

    private func fail(_ migration: MigrationRecord, _ code: String, _ message: String, result: Any? = nil) {
        update(migration, "\(code): \(message)") {
            $0.state = .failed
            $0.errorCode = code
            $0.errorMessage = message
            if let text = self.jsonText(result) { $0.result = text }
        }
    }
}
