import FerryAPI
import FerryCatalog
import FerryClient
import FerryValidation
import Foundation

/// Drives migrations: feeds each input (a tick, an agent's report, a probe's facts, a cancel) through
/// ``MigrationMachine``, records the new state and its events in the catalog, and only then performs the actions,
/// each on the worker of the node it concerns (``NodeWorker``). Agents push job changes as they happen, so a
/// migration moves on at once; every `interval` a tick checks deadlines and liveness and follows each active job
/// (at most every `followInterval` per job), the backstop for a lost push and for a restarted service.
///
/// Several replicas on one PostgreSQL catalog share the work: a replica ticks only the migrations whose lease it
/// holds (``Catalog/takeMigrationLease(_:holder:duration:)``, renewed at half its life), so exactly one drives each;
/// when it dies its leases expire and the others take them over. Inputs that arrive at any replica (an agent's push,
/// a cancel) are applied there, each under the migration's lock across replicas, so no two transitions of one
/// migration ever interleave.
public final class MigrationOrchestrator: @unchecked Sendable {
    private let context: FerryServiceContext
    private let registry: NodeRegistry
    private let interval: Double
    private let followInterval: Double
    /// This replica's name in the leases: host, process and a random part (a restarted process is a new replica).
    let replicaID: String
    /// Seconds a lease lasts unless renewed.
    private let leaseDuration: Double
    /// Serialises transitions, so each migration's record changes one input at a time.
    private let transitions = NSLock()
    /// Guards `running`, `workers`, `lastFollow`, `prefetchesAsked`, `probing`, `unreachableLogged` and `leases`.
    private let condition = NSCondition()
    private var running = false
    private var workers: [String: NodeWorker] = [:]
    private var lastFollow: [String: Date] = [:]
    /// Uploads whose prefetch was asked for (a few hundred bytes each; forgotten past 10,000).
    private var prefetchesAsked: Set<String> = []
    private var probing: Set<String> = []
    private var unreachableLogged: Set<String> = []
    /// The last known lease of each unfinished migration, ours or another replica's.
    private var leases: [String: KnownLease] = [:]
    let watch = MigrationWatch()

    init(context: FerryServiceContext, registry: NodeRegistry, interval: Double = 0.5, followInterval: Double = 2,
         leaseDuration: Double = 10, replicaID: String = MigrationOrchestrator.newReplicaID()) {
        self.context = context
        self.registry = registry
        self.interval = interval
        self.followInterval = followInterval
        self.leaseDuration = leaseDuration
        self.replicaID = replicaID
    }

    static func newReplicaID() -> String {
        let host = ProcessInfo.processInfo.hostName.prefix(64)
        return "\(host)-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
    }

    func start() {
        if context.catalog.sharedLocks == nil {
            // One process serves this catalog (the data directory's lock says so): its earlier run's leases are
            // of a replica that is gone, and waiting for them to expire would only delay the migrations.
            do {
                try context.catalog.releaseAllMigrationLeases()
            } catch {
                context.log("migrations: cannot clear the last run's leases (they expire by themselves): \(error)")
            }
        }
        condition.lock()
        running = true
        condition.unlock()
        let thread = Thread { [self] in loop() }
        thread.name = "ferry-migrations"
        thread.start()
    }

    func stop() {
        condition.lock()
        running = false
        let all = Array(workers.values)
        workers.removeAll()
        condition.broadcast()
        condition.unlock()
        all.forEach { $0.stop() }
        // Another replica goes on at its next tick rather than after the lease would have expired.
        do {
            try context.catalog.releaseMigrationLeases(heldBy: replicaID)
        } catch {
            context.log("migrations: cannot release this replica's leases (they expire by themselves): \(error)")
        }
    }

    /// A migration was created: this replica takes its lease and runs its first step now rather than at the next tick.
    func wake(_ id: String) {
        onThread { [self] in
            if holdsLease(id) { handle(id, .tick) }
        }
    }

    private func loop() {
        while true {
            condition.lock()
            _ = condition.wait(until: Date().addingTimeInterval(interval))
            let keepGoing = running
            condition.unlock()
            guard keepGoing else { return }
            do {
                let unfinished = try context.catalog.unfinishedMigrations()
                forgetLeases(except: Set(unfinished.map(\.id)))
                for migration in unfinished where holdsLease(migration.id) { handle(migration.id, .tick) }
            } catch {
                context.log("migrations: cannot read the catalog: \(error)")
            }
        }
    }

    // MARK: Leases

    /// Whether this replica drives migration `id` now: its lease is ours and has more than half its life left, or
    /// the catalog grants it (renewed, new, or taken over from a replica that stopped renewing). Another replica's
    /// unexpired lease is not asked about again before it expires.
    private func holdsLease(_ id: String) -> Bool {
        let now = Date()
        condition.lock()
        let known = leases[id]
        let stopping = !running
        condition.unlock()
        // A tick under way while the replica stops must not take back a lease `stop()` just released.
        if stopping { return false }
        if let known {
            if known.ours && known.until.timeIntervalSince(now) > leaseDuration / 2 { return true }
            if !known.ours && known.until > now { return false }
        }
        let lease: MigrationLease
        do {
            lease = try context.catalog.takeMigrationLease(id, holder: replicaID, duration: leaseDuration)
        } catch {
            context.log("migration \(id): cannot take its lease: \(error)")
            return false
        }
        condition.lock()
        leases[id] = KnownLease(ours: lease.granted, until: now.addingTimeInterval(Double(lease.millisecondsLeft) / 1000))
        condition.unlock()
        if lease.granted, let previous = lease.previousHolder {
            _ = try? context.catalog.updateMigration(
                id, event: "replica \(replicaID) drives the migration now: the lease of \(previous) expired") { _ in }
            context.log("migration \(id): taken over from replica \(previous), whose lease expired")
            watch.changed()
        } else if !lease.granted, known?.ours == true {
            context.log("migration \(id): replica \(lease.holder) drives it now")
        }
        return lease.granted
    }

    /// Drops the leases kept for migrations that have ended or are gone.
    private func forgetLeases(except unfinished: Set<String>) {
        condition.lock()
        leases = leases.filter { unfinished.contains($0.key) }
        condition.unlock()
    }

    // MARK: Inputs

    /// Applies one input to a migration: the transition is computed and recorded under one lock, then its actions
    /// run. Returns the migration as recorded, and the verdict for a job report.
    @discardableResult
    func handle(_ id: String, _ input: MigrationInput) -> (MigrationRecord, JobVerdict?)? {
        guard let locks = context.catalog.sharedLocks else { return transition(id, input) }
        do {
            return try locks.withLock("migration:" + id) { transition(id, input) }
        } catch {
            context.log("migration \(id): cannot take its lock: \(error)")
            return nil
        }
    }

    private func transition(_ id: String, _ input: MigrationInput) -> (MigrationRecord, JobVerdict?)? {
        transitions.lock()
        guard let migration = try? context.catalog.migration(id) else {
            transitions.unlock()
            return nil
        }
        let transition = MigrationMachine.next(migration, input, environment(for: migration))
        var recorded = migration
        if transition.record != migration || !transition.events.isEmpty {
            do {
                recorded = try context.catalog.updateMigration(
                    id, events: transition.events, changingFinished: transition.changesFinished) { $0 = transition.record }
                for event in transition.events { context.log("migration \(id): \(recorded.state.rawValue): \(event.message)") }
            } catch {
                context.log("migration \(id): cannot record the change: \(error)")
                transitions.unlock()
                return (migration, nil)
            }
        }
        var verdict: JobVerdict?
        if case .jobReport(_, let job) = input { verdict = MigrationMachine.verdict(recorded, job: job) }
        transitions.unlock()
        if recorded != migration || !transition.events.isEmpty { watch.changed() }
        if recorded.state.isTerminal && !migration.state.isTerminal { forget(recorded) }
        for action in transition.actions { perform(action, for: recorded) }
        return (recorded, verdict)
    }

    /// A job report pushed by the agent on `node`: applied, and answered with whether to go on.
    func report(_ report: JobReport, from node: String) throws(CatalogError) -> JobVerdict {
        let (migrationID, kind) = MigrationMachine.migrationID(ofJob: report.job.id)
        guard let migration = try? context.catalog.migration(migrationID), report.job.kind == kind else {
            throw CatalogError(.migrationNotFound, "no migration has job \(report.job.id.prefix(80))")
        }
        guard MigrationMachine.node(of: kind, in: migration) == node else {
            throw CatalogError(.migrationNotFound, "job \(report.job.id.prefix(80)) does not run on \(node)")
        }
        return handle(migration.id, .jobReport(node: node, report.job))?.1 ?? JobVerdict(proceed: false, reason: "the migration cannot be read")
    }

    func cancel(_ id: String) -> MigrationRecord? {
        handle(id, .cancel)?.0
    }

    private func environment(for migration: MigrationRecord) -> MigrationMachine.Environment {
        let catalog = context.catalog
        return MigrationMachine.Environment(
            now: Date(),
            sourceUp: migration.sourceNode.map { isUp($0) } ?? true,
            targetUp: isUp(migration.targetNode),
            sourceKnown: migration.sourceNode.map { (try? context.catalog.node($0)) != nil } ?? true,
            targetKnown: (try? context.catalog.node(migration.targetNode)) != nil,
            checkpoint: { id in Self.catalogued(id, catalog: catalog) },
            frozenMilliseconds: { id in Self.frozenMilliseconds(id, catalog: catalog) })
    }

    private func isUp(_ name: String) -> Bool {
        guard let node = try? context.catalog.node(name) else { return false }
        return registry.isUp(node)
    }

    static func catalogued(_ id: String, catalog: Catalog) -> CataloguedCheckpoint? {
        guard let record = try? catalog.checkpoint(id) else { return nil }
        let facts = record.facts.flatMap { try? JSONDecoder().decode(CheckpointFacts.self, from: Data($0.utf8)) }
        let errors = ((try? catalog.findings(of: record.id)) ?? []).filter { $0.severity == "error" }
            .map { Finding(code: $0.code, severity: .error, path: $0.path, message: $0.message, waiver: $0.waiver) }
        return CataloguedCheckpoint(id: record.id, size: record.size, facts: facts, archiveErrors: errors)
    }

    /// CRIU's `frozen_time` from the stored inspection, in milliseconds. Parses the whole inspection, so it is read
    /// once per migration (when its checkpoint is catalogued), not on every tick.
    static func frozenMilliseconds(_ id: String, catalog: Catalog) -> Int64? {
        guard let text = try? catalog.inspection(of: id),
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let stats = object["statistics"] as? [String: Any],
              let microseconds = (stats["frozen_time"] as? NSNumber)?.int64Value else { return nil }
        return (microseconds + 500) / 1000
    }

    // MARK: Actions

    private func perform(_ action: MigrationAction, for migration: MigrationRecord) {
        let id = migration.id
        switch action {
        case .probe(let target, let source):
            guard beginProbe(id) else { return }
            onThread { [self] in
                defer { endProbe(id) }
                probe(id, target: target, source: source)
            }
        case .post(let node, let job):
            worker(node).enqueue { [self] in post(job, to: node, migration: id) }
        case .follow(let node, let jobID, let repost):
            guard dueForFollow(jobID) else { return }
            worker(node).enqueue(key: "follow:\(jobID)") { [self] in follow(jobID, on: node, migration: id, repost: repost) }
        case .cancelJob(let node, let jobID):
            worker(node).enqueue { [self] in
                _ = try? client(for: node)?.call("DELETE", "/v1/jobs/\(jobID)", timeout: 5)
            }
        case .release(let node, let jobID, let removeContainer):
            worker(node).enqueue { [self] in
                let body = try? JSONSerialization.data(withJSONObject: ["remove_container": removeContainer])
                _ = try? client(for: node)?.call("POST", "/v1/jobs/\(jobID)/release", json: body, timeout: 60)
            }
        case .prefetch(let node, let request):
            guard firstPrefetch(request.key) else { return }
            worker(node).enqueue { [self] in
                guard let body = try? JSONEncoder.wire.encode(request) else { return }
                do {
                    let (status, _) = try client(for: node)?.call("POST", "/v1/prefetch", json: body, timeout: 10) ?? (0, Data())
                    context.log("migration \(id): \(node) prefetches \(request.key) as it arrives (agent answered \(status))")
                } catch {
                    context.log("migration \(id): \(node) cannot prefetch \(request.key); it downloads after the upload: \(error)")
                }
            }
        }
    }

    /// Whether this is the first request of a prefetch (every upload report of the source asks again).
    private func firstPrefetch(_ key: String) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if prefetchesAsked.count >= 10_000 { prefetchesAsked.removeAll() }
        return prefetchesAsked.insert(key).inserted
    }

    /// Both agents asked at once, and the answers fed back as one input.
    private func probe(_ id: String, target: String, source: MigrationRequest.Source?) {
        let startedAt = WireTime.string()
        let answers = ProbeAnswers()
        let group = DispatchGroup()
        group.enter()
        Thread.detachNewThread { [self] in
            defer { group.leave() }
            do {
                guard let client = client(for: target) else { throw FerryClientError(code: "NODE_NOT_FOUND", message: "no agent URL") }
                answers.set(target: .success(try client.decode(TargetFacts.self, "GET", "/v1/facts", timeout: 15)))
            } catch {
                answers.set(target: .failure(error))
            }
        }
        if let source {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                do {
                    guard let client = client(for: source.node) else { throw FerryClientError(code: "NODE_NOT_FOUND", message: "no agent URL") }
                    let (status, data) = try client.call("GET", "/v1/containers/\(source.container)", timeout: 15)
                    if status == 422 {
                        answers.set(source: .success(nil))  // A driver that cannot describe containers.
                    } else if status == 200, let report = try? JSONDecoder().decode(ContainerReport.self, from: data) {
                        answers.set(source: .success(report))
                    } else {
                        throw FerryClient.error(status: status, body: data)
                    }
                } catch {
                    answers.set(source: .failure(error))
                }
            }
        }
        group.wait()
        let endedAt = WireTime.string()
        switch (answers.target, answers.source) {
        case (.success(let facts)?, .success(let report)?):
            handle(id, .probed(target: facts, source: report, startedAt: startedAt, endedAt: endedAt))
        case (.success(let facts)?, nil) where source == nil:
            handle(id, .probed(target: facts, source: nil, startedAt: startedAt, endedAt: endedAt))
        case (.failure(let error)?, _):
            unreachable(id, node: target, "\(error)")
            handle(id, .probeFailed(node: target, message: "\(error)"))
        default:
            let message = answers.sourceError.map { "\($0)" } ?? "no answer"
            unreachable(id, node: source?.node ?? "", message)
            handle(id, .probeFailed(node: source?.node ?? "", message: message))
        }
    }

    private func post(_ job: AgentJobRequest, to node: String, migration: String) {
        guard let client = client(for: node), let body = try? JSONEncoder.wire.encode(job) else { return }
        do {
            let (status, data) = try client.call("POST", "/v1/jobs", json: body, timeout: 10)
            if (200..<300).contains(status) {
                reachable(migration, node: node)
                if let status = try? JSONDecoder().decode(AgentJobStatus.self, from: data) {
                    handle(migration, .jobReport(node: node, status))
                }
                return
            }
            if status == 401 || status == 403 || status >= 500 {
                unreachable(migration, node: node, "the agent answered \(status); retrying")
                return
            }
            let error = try? JSONDecoder().decode(ErrorBody.self, from: data)
            handle(migration, .jobRefused(node: node, jobID: job.id, code: error?.error.code ?? "AGENT_REFUSED",
                                          message: "(\(status)) \(error?.error.message ?? "")"))
        } catch {
            unreachable(migration, node: node, "cannot reach the agent: \(error)")
        }
    }

    private func follow(_ jobID: String, on node: String, migration: String, repost: AgentJobRequest?) {
        guard let client = client(for: node) else { return }
        do {
            let (status, data) = try client.call("GET", "/v1/jobs/\(jobID)", timeout: 10)
            if status == 404 {
                reachable(migration, node: node)
                handle(migration, .jobLost(node: node, jobID: jobID))
                return
            }
            guard status == 200, let job = try? JSONDecoder().decode(AgentJobStatus.self, from: data) else { return }
            reachable(migration, node: node)
            handle(migration, .jobReport(node: node, job))
        } catch {
            unreachable(migration, node: node, "cannot reach the agent: \(error)")
        }
    }

    // MARK: Helpers

    private func worker(_ node: String) -> NodeWorker {
        condition.lock()
        defer { condition.unlock() }
        if let worker = workers[node] { return worker }
        let worker = NodeWorker(node: node)
        workers[node] = worker
        return worker
    }

    private func client(for node: String) -> FerryClient? {
        guard let record = try? context.catalog.node(node), let url = URL(string: record.agentURL) else { return nil }
        return FerryClient(server: url, token: registry.token(for: node))
    }

    private func dueForFollow(_ jobID: String) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if let last = lastFollow[jobID], Date().timeIntervalSince(last) < followInterval { return false }
        lastFollow[jobID] = Date()
        return true
    }

    private func beginProbe(_ id: String) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return probing.insert(id).inserted
    }

    private func endProbe(_ id: String) {
        condition.lock()
        probing.remove(id)
        condition.unlock()
    }

    /// Logs an unreachable agent once per migration and node until it answers again.
    private func unreachable(_ migration: String, node: String, _ message: String) {
        condition.lock()
        let first = unreachableLogged.insert("\(migration)|\(node)").inserted
        condition.unlock()
        guard first else { return }
        _ = try? context.catalog.updateMigration(migration, event: "cannot reach the agent on \(node): \(message.prefix(300)); retrying") { _ in }
        watch.changed()
    }

    private func reachable(_ migration: String, node: String) {
        condition.lock()
        unreachableLogged.remove("\(migration)|\(node)")
        condition.unlock()
    }

    /// Drops the per-job bookkeeping of a migration that has ended, so it does not grow with every migration.
    private func forget(_ migration: MigrationRecord) {
        let jobs = [MigrationMachine.restoreJobID(migration), MigrationMachine.checkpointJobID(migration),
                    MigrationMachine.rollbackJobID(migration)]
        condition.lock()
        for job in jobs { lastFollow[job] = nil }
        unreachableLogged = unreachableLogged.filter { !$0.hasPrefix(migration.id + "|") }
        leases[migration.id] = nil
        condition.unlock()
        do {
            try context.catalog.releaseMigrationLease(migration.id)
        } catch {
            context.log("migration \(migration.id): cannot release its lease (it expires by itself): \(error)")
        }
    }

    private func onThread(_ work: @escaping @Sendable () -> Void) {
        let thread = Thread(block: work)
        thread.name = "ferry-migration-step"
        thread.start()
    }
}

/// A migration's lease as this replica last saw it, on this replica's clock.
private struct KnownLease {
    var ours: Bool
    var until: Date
}

/// The two answers of a probe, gathered by two threads.
private final class ProbeAnswers: @unchecked Sendable {
    // @unchecked Sendable invariant: both results are only touched with `lock` held.
    private let lock = NSLock()
    private var targetResult: Result<TargetFacts, any Error>?
    private var sourceResult: Result<ContainerReport?, any Error>?

    func set(target: Result<TargetFacts, any Error>) {
        lock.lock()
        targetResult = target
        lock.unlock()
    }

    func set(source: Result<ContainerReport?, any Error>) {
        lock.lock()
        sourceResult = source
        lock.unlock()
    }

    var target: Result<TargetFacts, any Error>? {
        lock.lock()
        defer { lock.unlock() }
        return targetResult
    }

    var source: Result<ContainerReport?, any Error>? {
        lock.lock()
        defer { lock.unlock() }
        return sourceResult
    }

    var sourceError: (any Error)? {
        if case .failure(let error)? = source { return error }
        return nil
    }
}
