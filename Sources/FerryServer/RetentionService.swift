import FerryAPI
import FerryCatalog
import FerryValidation
import Foundation

/// Applies the retention policies: after every ingest, on a timer, and on demand (`POST /api/v1/gc`). One run at a
/// time, on a thread of its own; a run asked for while one is under way is folded into one more run after it.
///
/// Each deletion goes through ``CheckpointDeletion`` with the policy as its cause, so it is recorded beside the
/// delete, and the pin and "in use" checks are made again inside the delete's transaction: a pin or a migration
/// that lands after the plan was made still wins. A checkpoint that an unfinished migration is uploading (its
/// upload named after the migration's checkpoint job) counts as in use before any migration row points at it.
final class RetentionService: @unchecked Sendable {
    // @unchecked Sendable invariant: `pending`, `running`, `stopped`, `blockedKeys`, `blockedGauge` and
    // `deletedTotal` are only touched with `condition` locked.
    let policies: RetentionPolicies?
    let interval: Double
    private let catalog: Catalog
    private let blobs: BlobStore
    private let reserve: SpaceReserve?
    private let liveUploads: LiveUploads
    private let log: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var pending = false
    private var running = false
    private var stopped = false
    private var thread: Thread?
    /// What blocked each limit at the last run (`scope|limit` → blocking IDs), so a change is logged once.
    private var blockedKeys: [String: [String]] = [:]
    private var blockedGauge: [RetentionBlock] = []
    private var deletedTotal = 0

    init(catalog: Catalog, blobs: BlobStore, reserve: SpaceReserve?, liveUploads: LiveUploads, policies: RetentionPolicies?,
         interval: Double = 60, log: @escaping @Sendable (String) -> Void) {
        self.catalog = catalog
        self.blobs = blobs
        self.reserve = reserve
        self.liveUploads = liveUploads
        self.policies = policies
        self.interval = interval
        self.log = log
    }

    /// Starts the timer thread (nothing without policies).
    func start() {
        guard policies != nil else { return }
        let thread = Thread { [self] in loop() }
        thread.name = "ferry-retention"
        self.thread = thread
        thread.start()
        if policies?.applyPoliciesImmediately == true { trigger() }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Asks for a run soon (after an ingest).
    func trigger() {
        guard policies != nil else { return }
        condition.lock()
        pending = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            let deadline = Date(timeIntervalSinceNow: interval)
            while !pending && !stopped {
                if !condition.wait(until: deadline) { break }
            }
            if stopped {
                condition.unlock()
                return
            }
            pending = false
            condition.unlock()
            do {
                _ = try run(dryRun: false, by: nil)
            } catch {
                log("retention: \(error)")
            }
        }
    }

    /// One run: the plan, and unless `dryRun` its deletions. `by` names who asked (nil: the timer or an ingest).
    func run(dryRun: Bool, by: String?) throws -> RetentionResult {
        guard let policies else { return RetentionResult(dryRun: dryRun, deleted: [], blocked: []) }
        condition.lock()
        while running { condition.wait() }
        running = true
        condition.unlock()
        defer {
            condition.lock()
            running = false
            condition.broadcast()
            condition.unlock()
        }
        var items = try catalog.retentionItems()
        let uploading = try uploadsOfUnfinishedMigrations()
        for index in items.indices where uploading.contains(items[index].id) { items[index].inUse = true }
        let reported = try reportedContainers()
        let plan = RetentionPlanner.plan(items, policies: policies) { scope, _ in
            Self.isOrphan(scope, reported: reported)
        }
        var deleted: [RetentionDeletion] = []
        if dryRun {
            deleted = plan.deletions
        } else {
            for deletion in plan.deletions {
                let cause = DeletionCause(by: "policy:\(deletion.policy)", reason: deletion.reason)
                do {
                    try CheckpointDeletion.delete(deletion.checkpoint, cause: cause, catalog: catalog,
                                                  blobs: blobs, reserve: reserve)
                    deleted.append(deletion)
                    log("retention: deleted \(deletion.checkpoint.prefix(12)) (\(deletion.container)) by \(deletion.policy): \(deletion.reason)")
                } catch let error as CatalogError where [.checkpointPinned, .checkpointInUse, .checkpointNotFound].contains(error.code) {
                    log("retention: kept \(deletion.checkpoint.prefix(12)): \(error.message)")
                }
            }
            record(plan.blocked, deleted: deleted.count)
        }
        if let by, !dryRun { log("retention: run by \(by) deleted \(deleted.count) checkpoint(s)") }
        return RetentionResult(dryRun: dryRun, deleted: deleted, blocked: plan.blocked)
    }

    /// Logs each limit whose blockers changed since the last run, and keeps the gauge's values.
    private func record(_ blocked: [RetentionBlock], deleted: Int) {
        condition.lock()
        defer { condition.unlock() }
        deletedTotal += deleted
        var now: [String: [String]] = [:]
        for block in blocked {
            let key = "\(block.scope)|\(block.limit)"
            now[key] = block.blocking
            if blockedKeys[key] != block.blocking {
                log("retention: \(block.limit) \(block.limitValue) of \(block.scope) (\(block.policy)) cannot be met: \(block.remaining) remain, kept by pinned or in-use checkpoints \(block.blocking.map { String($0.prefix(12)) }.joined(separator: ", "))")
            }
        }
        blockedKeys = now
        blockedGauge = blocked
    }

    /// `ferry_retention_…` metrics in Prometheus text format.
    func prometheusText() -> String {
        condition.lock()
        defer { condition.unlock() }
        var out = "# HELP ferry_retention_deleted_total Checkpoints deleted by retention policies.\n"
        out += "# TYPE ferry_retention_deleted_total counter\nferry_retention_deleted_total \(deletedTotal)\n"
        out += "# HELP ferry_retention_blocked_checkpoints Pinned or in-use checkpoints that keep a retention limit from being met, by scope and limit.\n"
        out += "# TYPE ferry_retention_blocked_checkpoints gauge\n"
        for block in blockedGauge {
            let scope = block.scope.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            out += "ferry_retention_blocked_checkpoints{scope=\"\(scope)\",limit=\"\(block.limit)\",policy=\"\(block.policy)\"} \(block.blocking.count)\n"
        }
        return out
    }

    /// Checkpoints that unfinished migrations' checkpoint jobs uploaded (the live upload names the job), whether
    /// or not the migration has recorded them yet.
    private func uploadsOfUnfinishedMigrations() throws -> Set<String> {
        let unfinished = try catalog.unfinishedMigrations()
        var ids: Set<String> = []
        for migration in unfinished {
            guard let node = migration.sourceNode,
                  let upload = liveUploads.upload(node: node, id: MigrationMachine.checkpointJobID(migration)),
                  case .complete(let checkpoint) = upload.state.outcome else { continue }
            ids.insert(checkpoint)
        }
        return ids
    }

    /// The container names and IDs each node reports, when at least one node reports its containers at all.
    private func reportedContainers() throws -> Set<String>? {
        var reported: Set<String> = []
        var anyReport = false
        for node in try catalog.nodes() {
            guard let facts = try? JSONDecoder().decode(TargetFacts.self, from: Data(node.facts.utf8)) else { continue }
            if facts.containerNames != nil || facts.containerIDs != nil { anyReport = true }
            reported.formUnion(facts.containerNames ?? [])
            reported.formUnion(facts.containerIDs ?? [])
        }
        return anyReport ? reported : nil
    }

    /// A scope is orphaned when some node reports its containers and no node reports any container of the scope
    /// (by name or ID). Kubernetes checkpoints never are: Ferry does not watch the cluster's pods, and the kubelet
    /// driver reports no container list.
    static func isOrphan(_ scope: [RetentionItem], reported: Set<String>?) -> Bool {
        guard let reported, !scope.isEmpty, scope.allSatisfy({ $0.pod.isEmpty && $0.namespace.isEmpty }) else { return false }
        return !scope.contains { reported.contains($0.container) || (!$0.containerID.isEmpty && reported.contains($0.containerID)) }
    }
}
