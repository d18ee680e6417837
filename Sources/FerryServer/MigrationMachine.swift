import CheckpointArchive
import FerryAPI
import FerryCatalog
import FerryValidation
import Foundation

/// A catalogued checkpoint as the migration logic needs it.
struct CataloguedCheckpoint: Sendable, Equatable {
    var id: String
    var size: Int64
    var facts: CheckpointFacts?
    /// The archive's own error findings (a corrupt archive never moves).
    var archiveErrors: [Finding]
}

/// What happened to a migration: the inputs of ``MigrationMachine``.
enum MigrationInput: Sendable {
    /// Time passes: deadlines, node liveness, and following the job under way.
    case tick
    /// Both nodes' facts as their agents gave them just now (`source` for live migrations).
    case probed(target: TargetFacts, source: ContainerReport?, startedAt: String, endedAt: String)
    case probeFailed(node: String, message: String)
    /// A job's state, pushed by its agent or fetched from it.
    case jobReport(node: String, AgentJobStatus)
    /// The agent does not know a job the migration waits for (it never got it, or lost its work directory).
    case jobLost(node: String, jobID: String)
    /// The agent refused a job (bad options, a driver that cannot do it).
    case jobRefused(node: String, jobID: String, code: String, message: String)
    case cancel
    /// The client that created a migration's Pod says what became of it (migrations into Kubernetes only).
    case kubernetesOutcome(KubernetesOutcome)
}

/// What the driver does for a migration after recording its new state.
enum MigrationAction: Sendable, Equatable {
    /// Fetch the target's facts (and the source container's report) live, then feed `.probed`.
    case probe(target: String, source: MigrationRequest.Source?)
    /// Hand a job to an agent (idempotent: same ID, same job).
    case post(node: String, AgentJobRequest)
    /// Fetch a job's state from its agent (the backstop for a lost push).
    case follow(node: String, jobID: String, repost: AgentJobRequest?)
    /// Tell an agent to stop a job.
    case cancelJob(node: String, jobID: String)
    /// Let the source agent drop what its checkpoint job kept (and, after success, the stopped container).
    case release(node: String, jobID: String, removeContainer: Bool)
    /// Let the target start fetching the source's upload while it arrives (cut-through; idempotent, and only an
    /// optimisation: the restore job downloads whatever the prefetch did not bring, and checks the digest).
    case prefetch(node: String, PrefetchRequest)
}

/// The migration logic as a pure function: a migration record and an input give the new record, the events to
/// log and the actions to perform. No I/O, no clock but `now`; ``MigrationOrchestrator`` performs the actions and
/// feeds their outcomes back.
///
/// The invariant it keeps: when a migration ends, exactly one copy of the container runs, on the target when it
/// `succeeded`, on the source when it `failed` or was `cancelled` (`rolled_back: true`), and the record says
/// which. Preflight runs before anything is stopped, against facts fetched from both agents at that moment; once
/// the source was stopped, every failure goes through `rolling_back` (the source restores its own archive).
struct MigrationMachine {
    struct Environment {
        var now: Date
        var sourceUp: Bool
        var targetUp: Bool
        /// Whether each node has ever registered.
        var sourceKnown = true
        var targetKnown = true
        /// Looks a checkpoint up in the catalog.
        var checkpoint: (String) -> CataloguedCheckpoint?
        /// CRIU's `frozen_time` from a checkpoint's `stats-dump`, in milliseconds.
        var frozenMilliseconds: (String) -> Int64? = { _ in nil }
        /// How long a rollback may take once started.
        var rollbackTimeout: Double = 600
    }

    struct Transition {
        var record: MigrationRecord
        var events: [(at: String?, message: String)] = []
        var actions: [MigrationAction] = []
        /// A terminal migration changed again (a late rollback outcome).
        var changesFinished = false
    }

    static func restoreJobID(_ m: MigrationRecord) -> String { m.id }
    static func checkpointJobID(_ m: MigrationRecord) -> String { m.id + "-checkpoint" }
    static func rollbackJobID(_ m: MigrationRecord) -> String { m.id + "-rollback" }

    /// The migration a job ID belongs to, and the job's kind.
    static func migrationID(ofJob id: String) -> (migration: String, kind: AgentJobKind) {
        if id.hasSuffix("-checkpoint") { return (String(id.dropLast("-checkpoint".count)), .checkpoint) }
        if id.hasSuffix("-rollback") { return (String(id.dropLast("-rollback".count)), .rollback) }
        return (id, .restore)
    }

    /// The node a job of this migration runs on.
    static func node(of kind: AgentJobKind, in m: MigrationRecord) -> String? {
        kind == .restore ? m.targetNode : m.sourceNode
    }

    // MARK: The transition function

    static func next(_ m: MigrationRecord, _ input: MigrationInput, _ env: Environment) -> Transition {
        var t = Transition(record: m)
        if m.state.isTerminal {
            if case .jobReport(_, let job) = input, job.kind == .rollback, job.state.isFinished, m.rolledBack != true {
                lateRollback(&t, job)
            }
            return t
        }
        if let pod = storedOptions(m).kubernetes {
            kubernetes(&t, input, pod: pod, env)
            return t
        }
        switch input {
        case .kubernetesOutcome: return t
        case .tick: tick(&t, env)
        case .probed(let target, let source, let startedAt, let endedAt):
            guard m.state == .pending else { return t }
            preflight(&t, target: target, source: source, startedAt: startedAt, endedAt: endedAt, env)
        case .probeFailed(let node, let message):
            guard m.state == .pending else { return t }
            let up = node == m.targetNode ? env.targetUp : env.sourceUp
            if !up { fail(&t, "NODE_DOWN", "the node \(node) stopped heartbeating; its agent cannot be asked for facts (\(message))", env) }
        case .jobReport(let node, let job): report(&t, node: node, job: job, env)
        case .jobLost(_, let jobID): lost(&t, jobID: jobID, env)
        case .jobRefused(let node, let jobID, let code, let message):
            guard isCurrentJob(jobID, of: t.record) else { return t }
            fail(&t, code, "the agent on \(node) refused job \(jobID): \(message)", env)
        case .cancel:
            if t.record.state == .rollingBack {
                t.record.errorCode = "CANCELLED"
                t.events.append((nil, "cancel requested; the rollback goes on"))
                return t
            }
            fail(&t, "CANCELLED", "cancelled by request", env)
        }
        return t
    }

    /// A migration into Kubernetes: recorded, not driven. Its client reports the Pod's outcome; without one by the
    /// deadline (the client died, lost its connection) it fails, saying the Pod's fate is not known.
    static func kubernetes(_ t: inout Transition, _ input: MigrationInput, pod: KubernetesTarget, _ env: Environment) {
        let m = t.record
        let name = "\(pod.namespace)/\(pod.pod)"
        switch input {
        case .kubernetesOutcome(let outcome):
            if outcome.succeeded {
                t.record.state = .succeeded
                t.events.append((nil, "Pod \(name) runs on \(m.targetNode): restored"))
            } else {
                let failure = outcome.error ?? MigrationView.Failure(code: "POD_FAILED", message: "the Pod failed")
                t.record.state = .failed
                t.record.errorCode = failure.code
                t.record.errorMessage = failure.message
                t.events.append((nil, "\(failure.code): Pod \(name) on \(m.targetNode): \(failure.message)"))
            }
        case .cancel:
            t.record.state = .cancelled
            t.record.errorCode = "CANCELLED"
            t.record.errorMessage = "cancelled by request; the Pod \(name), if created, is left to Kubernetes"
            t.events.append((nil, "CANCELLED: cancelled by request"))
        case .tick:
            guard let deadline = Catalog.date(fromTimestamp: m.deadlineAt), env.now > deadline else { return }
            t.record.state = .failed
            t.record.errorCode = "KUBERNETES_OUTCOME_UNKNOWN"
            t.record.errorMessage = "no outcome for Pod \(name) came by the deadline (\(m.deadlineAt)); look at the Pod itself"
            t.events.append((nil, "KUBERNETES_OUTCOME_UNKNOWN: \(t.record.errorMessage ?? "")"))
        default:
            return
        }
    }

    /// Whether the agent may go on with a job (the ``JobVerdict`` a report gets), judged on the migration as it is
    /// after the report.
    static func verdict(_ m: MigrationRecord, job: AgentJobStatus) -> JobVerdict {
        switch job.kind {
        case .rollback:
            return JobVerdict(proceed: true)
        case .checkpoint:
            if m.state == .checkpointing || (job.state == .succeeded && job.checkpoint != nil && m.checkpointID == job.checkpoint) {
                return JobVerdict(proceed: true)
            }
        case .restore:
            if [.transferring, .restoring, .succeeded].contains(m.state) { return JobVerdict(proceed: true) }
        }
        return JobVerdict(proceed: false, reason: "migration \(m.id) is \(m.state.rawValue)\(m.errorCode.map { " (\($0))" } ?? "")")
    }

    // MARK: Steps

    private static func tick(_ t: inout Transition, _ env: Environment) {
        let m = t.record
        let pastDeadline = Catalog.date(fromTimestamp: m.deadlineAt).map { env.now > $0 } ?? false
        switch m.state {
        case .pending:
            if pastDeadline { return fail(&t, "TIMEOUT", "the migration did not start before its deadline (\(m.deadlineAt))", env) }
            if !env.targetKnown { return fail(&t, "NODE_NOT_FOUND", "the target node \(m.targetNode) has never registered", env) }
            if m.sourceNode != nil, !env.sourceKnown {
                return fail(&t, "NODE_NOT_FOUND", "the source node \(m.sourceNode ?? "") has never registered", env)
            }
            if !env.targetUp { return fail(&t, "NODE_DOWN", "the target node \(m.targetNode) stopped heartbeating", env) }
            if m.sourceNode != nil, !env.sourceUp {
                return fail(&t, "NODE_DOWN", "the source node \(m.sourceNode ?? "") stopped heartbeating", env)
            }
            t.actions.append(.probe(target: m.targetNode, source: source(of: m)))
        case .checkpointing:
            if pastDeadline { return fail(&t, "TIMEOUT", "the checkpoint did not finish before the deadline (\(m.deadlineAt))", env) }
            if !env.targetUp { return fail(&t, "NODE_DOWN", "the target node \(m.targetNode) stopped heartbeating", env) }
            // A source that stops heartbeating may still be checkpointing: its agent reconciles when it returns.
            if let node = m.sourceNode {
                t.actions.append(.follow(node: node, jobID: checkpointJobID(m), repost: checkpointRequest(m)))
            }
        case .transferring:
            if pastDeadline { return fail(&t, "TIMEOUT", "the transfer did not finish before the deadline (\(m.deadlineAt))", env) }
            if !env.targetUp {
                return fail(&t, "NODE_DOWN", "the target node \(m.targetNode) stopped heartbeating before the restore began", env)
            }
            t.actions.append(.follow(node: m.targetNode, jobID: restoreJobID(m), repost: restoreRequest(m, env)))
        case .restoring:
            if pastDeadline { return fail(&t, "TIMEOUT", "the restore did not finish before the deadline (\(m.deadlineAt))", env) }
            // The restore may have run: rolling back now could leave two copies, so a silent target is waited for
            // (until the deadline) and its own report decides.
            t.actions.append(.follow(node: m.targetNode, jobID: restoreJobID(m), repost: nil))
        case .rollingBack:
            if pastDeadline {
                return finish(&t, rolledBack: false, note: "the rollback on \(m.sourceNode ?? "the source") did not finish in time")
            }
            if let node = m.sourceNode {
                t.actions.append(.follow(node: node, jobID: rollbackJobID(m), repost: rollbackRequest(m)))
            }
        case .succeeded, .failed, .cancelled:
            break
        }
    }

    private static func preflight(_ t: inout Transition, target: TargetFacts, source: ContainerReport?,
                                  startedAt: String, endedAt: String, _ env: Environment) {
        let m = t.record
        let options = storedOptions(m)
        var blocking: [Finding] = []
        var checkpoint: CataloguedCheckpoint?
        if let id = m.checkpointID {
            guard let found = env.checkpoint(id) else {
                return fail(&t, "CHECKPOINT_NOT_FOUND", "the checkpoint to migrate is no longer in the catalog", env)
            }
            checkpoint = found
            if let facts = found.facts {
                blocking += Preflight.findings(checkpoint: facts, target: target, options: restoreOptions(options))
            }
            blocking += found.archiveErrors
        } else if let container = m.sourceContainer {
            if let source {
                blocking += Preflight.sourceFindings(container: container, exists: source.exists, running: source.running, status: source.status)
                if source.running, let facts = source.facts {
                    blocking += Preflight.findings(checkpoint: facts, target: target, options: restoreOptions(options))
                }
            } else {
                // A driver that cannot describe containers: the target rules still apply to the restore options.
                blocking += Preflight.findings(
                    checkpoint: CheckpointFacts(engine: .podman, containerID: "", containerName: container),
                    target: target, options: restoreOptions(options)).filter { $0.code == FindingCode.nameWithTCPEstablished.rawValue }
            }
        }
        blocking = blocking.filter { $0.severity == .error && !options.waive.contains($0.code) }
        addPhase(&t, MigrationPhase(name: "preflight", node: nil, startedAt: startedAt, endedAt: endedAt,
                                    durationMs: WireTime.milliseconds(from: startedAt, to: endedAt)))
        if !blocking.isEmpty {
            let list = blocking.map { finding in finding.waiver.map { "\(finding.code) (waive with \($0))" } ?? finding.code }
            let found = blocking.map { BlockingFinding(code: $0.code, message: $0.message, waiver: $0.waiver) }
            t.record.findings = String(decoding: (try? JSONEncoder.wire.encode(found)) ?? Data("[]".utf8), as: UTF8.self)
            let nothing = m.sourceNode != nil ? "; nothing was stopped, \(m.sourceContainer ?? "the container") runs on \(m.sourceNode ?? "")" : ""
            return fail(&t, "PREFLIGHT_FAILED", "preflight found errors on \(m.targetNode): \(list.joined(separator: ", "))\(nothing)", env)
        }
        if let checkpoint {
            t.record.state = .transferring
            t.record.bytesTotal = checkpoint.size
            t.events.append((endedAt, "preflight passed; transferring \(checkpoint.id.prefix(12)) (\(checkpoint.size) bytes) to \(m.targetNode)"))
            t.actions.append(.post(node: m.targetNode, restoreRequest(t.record, env)))
        } else if let node = m.sourceNode {
            t.record.state = .checkpointing
            t.events.append((endedAt, "preflight passed on \(node) and \(m.targetNode); checkpointing \(m.sourceContainer ?? "") on \(node)"))
            t.actions.append(.post(node: node, checkpointRequest(t.record)))
        }
    }

    private static func report(_ t: inout Transition, node: String, job: AgentJobStatus, _ env: Environment) {
        let m = t.record
        mergePhases(&t, job.phases, node: node)
        switch (job.kind, m.state) {
        case (.checkpoint, .checkpointing):
            checkpointReport(&t, node: node, job: job, env)
        case (.restore, .transferring), (.restore, .restoring):
            restoreReport(&t, node: node, job: job, env)
        case (.rollback, .rollingBack):
            guard job.state.isFinished else { return }
            if job.state == .succeeded {
                finish(&t, rolledBack: true, note: "rolled back: \(m.sourceContainer ?? "the container") runs on \(node) again", at: job.updatedAt)
            } else {
                finish(&t, rolledBack: false, note: "the rollback on \(node) failed: \(job.error?.message ?? "no reason given") [\(job.error?.code ?? "ROLLBACK_FAILED")]", at: job.updatedAt)
            }
        case (.restore, .rollingBack) where job.state == .succeeded:
            t.events.append((job.updatedAt, "\(node) finished a restore after the migration was given up; its agent removes that container"))
        default:
            break
        }
    }

    private static func checkpointReport(_ t: inout Transition, node: String, job: AgentJobStatus, _ env: Environment) {
        let m = t.record
        switch job.state {
        case .uploading:
            if !m.sourceStopped && job.containerRunning == false {
                t.record.sourceStopped = true
                t.events.append((job.updatedAt, "checkpointed \(m.sourceContainer ?? "") on \(node); uploading the archive"))
            }
            if let prefetch = prefetchRequest(m) { t.actions.append(.prefetch(node: m.targetNode, prefetch)) }
        case .succeeded:
            guard let id = job.checkpoint, let checkpoint = env.checkpoint(id) else {
                t.record.sourceStopped = t.record.sourceStopped || job.containerRunning == false
                return fail(&t, "CHECKPOINT_FAILED", "the source agent reported no catalogued checkpoint", env)
            }
            t.record.checkpointID = id
            t.record.sourceStopped = t.record.sourceStopped || job.containerRunning == false || !leaveRunning(m)
            t.record.bytesTotal = checkpoint.size
            if let frozen = env.frozenMilliseconds(id) {
                addPhase(&t, MigrationPhase(name: "frozen", node: node, startedAt: nil, endedAt: nil, durationMs: frozen))
            }
            t.events.append((job.updatedAt, "checkpointed as \(id.prefix(12)) (\(checkpoint.size) bytes) and catalogued"))
            // The archive itself is judged before the target touches it; its facts may differ from the live ones.
            let options = storedOptions(m)
            var blocking = checkpoint.archiveErrors
            if let facts = checkpoint.facts {
                let target = TargetFacts()  // live target facts were judged at preflight; only archive-side rules here
                blocking += Preflight.findings(checkpoint: facts, target: target, options: restoreOptions(options))
            }
            blocking = blocking.filter { $0.severity == .error && !options.waive.contains($0.code) }
            if !blocking.isEmpty {
                return fail(&t, "PREFLIGHT_FAILED", "the checkpoint archive fails preflight: \(blocking.map(\.code).joined(separator: ", "))", env)
            }
            t.record.state = .transferring
            t.events.append((nil, "transferring \(id.prefix(12)) to \(m.targetNode)"))
            t.actions.append(.post(node: m.targetNode, restoreRequest(t.record, env)))
        case .failed:
            if job.containerRunning == false { t.record.sourceStopped = true }
            let unknown = job.containerRunning == nil && !leaveRunning(m)
            let code = job.error?.code ?? "CHECKPOINT_FAILED"
            var message = "checkpoint on \(node) failed: \(job.error?.message ?? "no reason given")"
            if unknown { message += "; whether \(m.sourceContainer ?? "the container") still runs there is unknown" }
            fail(&t, code, message, env, at: job.updatedAt, sourceMayBeStopped: job.containerRunning != true)
        default:
            break
        }
    }

    private static func restoreReport(_ t: inout Transition, node: String, job: AgentJobStatus, _ env: Environment) {
        let m = t.record
        switch job.state {
        case .downloading:
            t.record.bytesDone = job.bytesDone
            if job.bytesTotal > 0 { t.record.bytesTotal = job.bytesTotal }
        case .restoring:
            if m.state == .transferring {
                t.record.state = .restoring
                t.record.bytesDone = t.record.bytesTotal
                t.events.append((job.updatedAt, "archive verified on \(node)\(job.prefetched == true ? " (fetched while it was uploaded)" : ""); restoring"))
            }
        case .succeeded:
            if m.state == .transferring {
                t.events.append((nil, "archive verified on \(node); restoring"))
            }
            t.record.state = .succeeded
            t.record.bytesDone = t.record.bytesTotal
            t.record.result = encode(job.result)
            t.events.append((job.updatedAt, "restored on \(node)\(job.result?.containerID.map { " as \($0.prefix(12))" } ?? "")"))
            if let source = m.sourceNode, m.sourceContainer != nil {
                t.actions.append(.release(node: source, jobID: checkpointJobID(m), removeContainer: !leaveRunning(m)))
            }
        case .failed:
            t.record.result = encode(job.result)
            var message = "restore on \(node) failed: \(job.error?.message ?? "no reason given")"
            if let removed = job.result?.removedContainer { message += "; the container it left (\(removed.prefix(12))) was removed" }
            fail(&t, job.error?.code ?? "RESTORE_FAILED", message, env, at: job.updatedAt)
        default:
            break
        }
    }

    private static func lost(_ t: inout Transition, jobID: String, _ env: Environment) {
        let m = t.record
        guard isCurrentJob(jobID, of: m) else { return }
        if m.state == .restoring {
            // The agent lost a job that had begun its restore: what it left is unknown, so nothing is re-run.
            return fail(&t, "JOB_LOST", "the agent on \(m.targetNode) no longer knows job \(jobID), which had begun restoring", env)
        }
        switch m.state {
        case .checkpointing: if let node = m.sourceNode { t.actions.append(.post(node: node, checkpointRequest(m))) }
        case .transferring: t.actions.append(.post(node: m.targetNode, restoreRequest(m, env)))
        case .rollingBack: if let node = m.sourceNode { t.actions.append(.post(node: node, rollbackRequest(m))) }
        default: break
        }
    }

    private static func lateRollback(_ t: inout Transition, _ job: AgentJobStatus) {
        t.changesFinished = true
        if job.state == .succeeded {
            t.record.rolledBack = true
            t.events.append((job.updatedAt, "late rollback: \(t.record.sourceContainer ?? "the container") runs on \(t.record.sourceNode ?? "the source") again"))
        } else {
            t.events.append((job.updatedAt, "late rollback failed: \(job.error?.message ?? "no reason given")"))
        }
    }

    // MARK: Failing and finishing

    /// A failure: with the source stopped by this migration, a rollback there first; else the end.
    static func fail(_ t: inout Transition, _ code: String, _ message: String, _ env: Environment, at: String? = nil,
                             sourceMayBeStopped: Bool = true) {
        let m = t.record
        t.record.errorCode = code
        t.record.errorMessage = message
        // The target may hold a job under way: it must stop and undo (it also learns so from its next report).
        if [.transferring, .restoring].contains(m.state) {
            t.actions.append(.cancelJob(node: m.targetNode, jobID: restoreJobID(m)))
        }
        let checkpointMayHaveStopped = m.state == .checkpointing && !leaveRunning(m) && sourceMayBeStopped
        if let node = m.sourceNode, m.sourceContainer != nil, m.sourceStopped || checkpointMayHaveStopped {
            t.record.state = .rollingBack
            t.record.sourceStopped = true
            t.record.deadlineAt = Catalog.timestamp(env.now.addingTimeInterval(env.rollbackTimeout))
            t.events.append((at, "\(code): \(message); rolling back on \(node)"))
            t.actions.append(.post(node: node, rollbackRequest(t.record)))
            return
        }
        t.record.state = code == "CANCELLED" ? .cancelled : .failed
        t.events.append((at, "\(code): \(message)"))
        if let node = m.sourceNode, m.checkpointID != nil {
            t.actions.append(.release(node: node, jobID: checkpointJobID(m), removeContainer: false))
        }
    }

    /// The end of a rollback: failed (or cancelled) with the original error, and whether the source runs again.
    static func finish(_ t: inout Transition, rolledBack: Bool, note: String, at: String? = nil) {
        let m = t.record
        t.record.rolledBack = rolledBack
        t.record.state = m.errorCode == "CANCELLED" ? .cancelled : .failed
        if !rolledBack { t.record.errorMessage = (m.errorMessage ?? "") + "; " + note }
        t.events.append((at, note))
        if rolledBack, let node = m.sourceNode {
            t.actions.append(.release(node: node, jobID: checkpointJobID(m), removeContainer: false))
        }
    }
}
