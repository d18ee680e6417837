import Crypto
import FerryAPI
import FerryCatalog
import FerryHTTP
import FerryValidation
import Foundation

/// `/api/v1/migrations`, and the agents' job reports (`/api/v1/nodes/{node}/jobs/{id}/report`). Every body in and
/// out is a FerryAPI message.
struct MigrationAPI: Sendable {
    let api: CheckpointAPI
    let orchestrator: MigrationOrchestrator
    var catalog: Catalog { api.context.catalog }

    static let defaultTimeout: Double = 3600
    /// The longest `wait` a long poll may ask for.
    static let maximumWait: Double = 60

    func create(_ request: HTTPRequest, body: HTTPRequestBody?) throws -> HTTPResponse {
        try api.authorize(request, .write)
        guard let body else { throw HTTPError(.bodyRequired, "send the migration as JSON") }
        let bytes = try body.readAll(maximumBytes: 1 << 20)
        let input: MigrationRequest
        do {
            input = try JSONDecoder().decode(MigrationRequest.self, from: Data(bytes))
        } catch {
            throw HTTPError(.invalidMigration, "the body must be {checkpoint | source: {node, container}, target, options}: \(error)")
        }
        guard (input.checkpoint == nil) != (input.source == nil) else {
            throw HTTPError(.invalidMigration, "give either checkpoint or source, not both or neither")
        }
        if let kubernetes = input.kubernetes {
            guard input.checkpoint != nil else {
                throw HTTPError(.invalidMigration, "a migration into Kubernetes restores a catalogued checkpoint: give checkpoint, not source")
            }
            guard Self.isDNSLabel(kubernetes.namespace), Self.isDNSLabel(kubernetes.pod) else {
                throw HTTPError(.invalidMigration, "kubernetes.namespace and kubernetes.pod are DNS labels: a-z, 0-9 and '-', at most 63")
            }
        }
        guard NodeAPI.isValidName(input.target) else {
            throw HTTPError(.invalidNode, "target is a node name")
        }
        var checkpointID: String?
        if let reference = input.checkpoint {
            checkpointID = try api.catalog { try catalog.checkpoint(reference) }.id
        }
        if let source = input.source {
            guard NodeAPI.isValidName(source.node), !source.container.isEmpty, source.container.count <= 253,
                  source.container.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }),
                  source.container.first.map({ $0.isLetter || $0.isNumber }) == true else {
                throw HTTPError(.invalidMigration, "source needs a node name and a container name or ID")
            }
        }
        let timeout = input.timeoutSeconds ?? Self.defaultTimeout
        guard timeout > 0, timeout <= 7 * 86400 else {
            throw HTTPError(.invalidMigration, "timeout_seconds is between 1 and 604800")
        }
        let options = MigrationOptions(restore: input.options ?? [:], checkpoint: input.checkpointOptions ?? [:], waive: input.waive ?? [],
                                       kubernetes: input.kubernetes, cutThrough: input.cutThrough == false ? false : nil)
        let optionsText = String(decoding: try JSONEncoder.wire.encode(options), as: UTF8.self)
        // The same request retried gives the same migration: by Idempotency-Key, else by its content while unfinished.
        let explicitKey = request.header("idempotency-key")
        var canonical = "\(checkpointID ?? "")|\(input.source?.node ?? "")|\(input.source?.container ?? "")|\(input.target)|\(optionsText)"
        if let explicitKey { canonical = "key:" + explicitKey }
        let requestKey = Hex.string(SHA256.hash(data: Data(canonical.utf8)))
        let deadline = Catalog.timestamp(Date().addingTimeInterval(timeout))
        var migration = MigrationRecord(
            id: "mig-" + UUID().uuidString.lowercased(), requestKey: requestKey, explicitKey: explicitKey != nil,
            checkpointID: checkpointID, sourceNode: input.source?.node, sourceContainer: input.source?.container,
            targetNode: input.target, options: optionsText, deadlineAt: deadline)
        // Nothing to check or move first: the Pod pulls the checkpoint image itself.
        if input.kubernetes != nil { migration.state = .restoring }
        let (stored, created) = try api.catalog { try catalog.createMigration(migration) }
        if created {
            orchestrator.watch.changed()
            orchestrator.wake(stored.id)
        }
        var response = HTTPResponse.json(Self.view(stored, events: nil), status: created ? 201 : 200)
        response.headers.append(("Location", "/api/v1/migrations/\(stored.id)"))
        return response
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        try api.authorize(request, .read)
        var state: MigrationState?
        if let text = request.query["state"] {
            guard let value = MigrationState(rawValue: text) else {
                throw HTTPError(.invalidQuery, "state is one of \(MigrationState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            state = value
        }
        let limitText = request.query["limit"] ?? "100"
        guard let limit = Int(limitText), (1...1000).contains(limit) else { throw HTTPError(.invalidQuery, "limit is a number from 1 to 1000") }
        let migrations = try api.catalog { try catalog.migrations(state: state, limit: limit) }
        return .json(MigrationList(items: migrations.map { Self.view($0, events: nil) }))
    }

    /// `GET /api/v1/migrations/{id}[?wait=SECONDS&events_after=N]`: with `wait`, answers once the migration has
    /// more than N events or has finished, or after SECONDS (at most 60): a long poll, so a client follows a
    /// migration as it happens without sleeping between requests.
    func detail(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        try api.authorize(request, .read)
        var wait: Double = 0
        var seen = 0
        if let text = request.query["wait"] {
            guard let value = Double(text), value >= 0, value <= Self.maximumWait else {
                throw HTTPError(.invalidQuery, "wait is 0 to \(Int(Self.maximumWait)) seconds")
            }
            wait = value
        }
        if let text = request.query["events_after"] {
            guard let value = Int(text), value >= 0, value <= Int(Int32.max) else {
                throw HTTPError(.invalidQuery, "events_after is a number of events (0 to 2147483647)")
            }
            seen = value
        }
        let deadline = Date().addingTimeInterval(wait)
        while true {
            let generation = orchestrator.watch.current
            let migration = try api.catalog { try catalog.migration(id) }
            let events = try api.catalog { try catalog.migrationEvents(migration.id) }
            if wait == 0 || events.count > seen || migration.state.isTerminal || Date() >= deadline {
                return .json(Self.view(migration, events: events))
            }
            _ = orchestrator.watch.wait(after: generation, until: deadline)
        }
    }

    /// `POST /api/v1/migrations/{id}/outcome`: the client that created a migration's Pod reports what became of it.
    func outcome(_ request: HTTPRequest, id: String, body: HTTPRequestBody?) throws -> HTTPResponse {
        try api.authorize(request, .write)
        guard let body else { throw HTTPError(.bodyRequired, "send the outcome as JSON") }
        let outcome: KubernetesOutcome
        do {
            outcome = try JSONDecoder().decode(KubernetesOutcome.self, from: Data(body.readAll(maximumBytes: 64 << 10)))
        } catch {
            throw HTTPError(.invalidMigration, "the body must be {succeeded, error: {code, message}, phase, pod_uid}: \(error)")
        }
        // Counted in code points, as JSON Schema's maxLength counts.
        if let error = outcome.error, error.code.isEmpty || error.code.unicodeScalars.count > 64 || error.message.unicodeScalars.count > 4096 {
            throw HTTPError(.invalidMigration, "error.code is 1 to 64 characters, error.message at most 4096")
        }
        let migration = try api.catalog { try catalog.migration(id) }
        guard MigrationMachine.storedOptions(migration).kubernetes != nil else {
            throw HTTPError(.notKubernetesMigration, "only a migration into Kubernetes takes an outcome; the service follows the others itself")
        }
        guard !migration.state.isTerminal else {
            throw HTTPError(.migrationFinished, "the migration has already \(migration.state.rawValue)")
        }
        let updated = orchestrator.handle(migration.id, .kubernetesOutcome(outcome))?.0 ?? migration
        return .json(Self.view(updated, events: nil))
    }

    /// A Kubernetes namespace or pod name as Ferry creates them (RFC 1123 label).
    static func isDNSLabel(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 63 && text.first != "-" && text.last != "-"
            && text.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d }
    }

    func cancel(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        try api.authorize(request, .write)
        let migration = try api.catalog { try catalog.migration(id) }
        guard !migration.state.isTerminal else {
            throw HTTPError(.migrationFinished, "the migration has already \(migration.state.rawValue)")
        }
        let updated = orchestrator.cancel(migration.id) ?? migration
        return .json(Self.view(updated, events: nil))
    }

    /// `POST /api/v1/nodes/{node}/jobs/{id}/report` from the agent on `node`: a ``JobReport`` in, a ``JobVerdict``
    /// out. 404 `MIGRATION_NOT_FOUND` for a job no migration of this service gave that node.
    func report(_ request: HTTPRequest, node: String, jobID: String, body: HTTPRequestBody?) throws -> HTTPResponse {
        let identity = try api.authorize(request, .node)
        if let identity, identity.role == .node, identity.name != node {
            throw HTTPError(.forbidden, "this token belongs to node \(identity.name), not \(node)")
        }
        guard let body else { throw HTTPError(.bodyRequired, "send the job report as JSON") }
        var report: JobReport
        do {
            report = try JSONDecoder().decode(JobReport.self, from: Data(body.readAll(maximumBytes: 1 << 20)))
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(.invalidReport, "the body is not a job report: \(error)")
        }
        // The path names the job (and the node token was checked against it); it wins over the body's `job.id`.
        report.job.id = jobID
        if NodeCheckpoints.isStandalone(jobID) {
            // A checkpoint without a migration: kept for its waiters; nothing to decide.
            api.context.nodeCheckpoints.update(NodeCheckpointView(report.job, node: node))
            return .json(JobVerdict(proceed: true, reason: nil))
        }
        let verdict = try api.catalog { try orchestrator.report(report, from: node) }
        return .json(verdict)
    }

    /// A migration as the API shows it.
    static func view(_ migration: MigrationRecord, events: [MigrationEvent]?) -> MigrationView {
        let options = MigrationMachine.storedOptions(migration)
        let source = migration.sourceNode.map { MigrationRequest.Source(node: $0, container: migration.sourceContainer ?? "") }
        let findings = migration.findings.flatMap { try? JSONDecoder().decode([BlockingFinding].self, from: Data($0.utf8)) }
        let result = migration.result.flatMap { try? JSONDecoder().decode(JobResult.self, from: Data($0.utf8)) }
        // Only a migration that stopped its source has something to roll back.
        let rolledBack = migration.sourceStopped && migration.state.isTerminal && migration.state != .succeeded
            ? (migration.rolledBack ?? false) : migration.rolledBack
        return MigrationView(
            id: migration.id, state: migration.state, checkpoint: migration.checkpointID, source: source,
            target: migration.targetNode, options: options,
            error: migration.errorCode.map { MigrationView.Failure(code: $0, message: migration.errorMessage ?? "") },
            rolledBack: rolledBack,
            runningOn: runningOn(migration),
            progress: MigrationView.Progress(bytesDone: migration.bytesDone, bytesTotal: migration.bytesTotal),
            phases: MigrationMachine.phases(migration), findings: findings, result: result,
            createdAt: migration.createdAt, updatedAt: migration.updatedAt, finishedAt: migration.finishedAt,
            deadlineAt: migration.deadlineAt, events: events)
    }

    /// Where the container runs once the migration has ended, as the record knows it.
    static func runningOn(_ migration: MigrationRecord) -> String? {
        switch migration.state {
        case .succeeded: return migration.targetNode
        case .failed, .cancelled:
            guard let source = migration.sourceNode else { return nil }
            if migration.sourceStopped { return migration.rolledBack == true ? source : nil }
            return source
        default:
            return nil
        }
    }
}
