@testable import FerryServer
import CheckpointArchive
import FerryAPI
import FerryCatalog
import FerryValidation
import Foundation
import Testing

/// The migration logic without I/O: a record and an input give the next record, its events and its actions. Each
/// test checks the invariant's side of a step: what is stopped, what is rolled back, what agents are told.
@Suite("migration state machine")
struct MigrationMachineTests {
    static let checkpointID = String(repeating: "ab", count: 32)
    static let containerID = String(repeating: "c", count: 64)
    static let facts = CheckpointFacts(engine: .podman, containerID: containerID, containerName: "counter",
                                       image: "localhost/busybox:test", imageID: "sha256:" + String(repeating: "1", count: 64))

    func environment(targetUp: Bool = true, sourceUp: Bool = true, now: Date = Date()) -> MigrationMachine.Environment {
        MigrationMachine.Environment(now: now, sourceUp: sourceUp, targetUp: targetUp, checkpoint: { id in
            id == Self.checkpointID ? CataloguedCheckpoint(id: id, size: 4096, facts: Self.facts, archiveErrors: []) : nil
        }, frozenMilliseconds: { id in id == Self.checkpointID ? 42 : nil })
    }

    func live(leaveRunning: Bool = false, restore: [String: JSONScalar] = [:], cutThrough: Bool? = nil) -> MigrationRecord {
        let options = MigrationOptions(restore: restore, checkpoint: ["leave_running": .bool(leaveRunning)], cutThrough: cutThrough)
        return MigrationRecord(
            id: "mig-1", requestKey: "k", explicitKey: false, checkpointID: nil, sourceNode: "node-a", sourceContainer: "counter",
            targetNode: "node-b", options: String(decoding: try! JSONEncoder.wire.encode(options), as: UTF8.self),
            deadlineAt: Catalog.timestamp(Date().addingTimeInterval(600)))
    }

    func job(_ kind: AgentJobKind, _ state: AgentJobState, checkpoint: String? = nil, running: Bool? = nil,
             error: JobFailure? = nil, removed: String? = nil) -> AgentJobStatus {
        let id = kind == .restore ? "mig-1" : kind == .checkpoint ? "mig-1-checkpoint" : "mig-1-rollback"
        return AgentJobStatus(id: id, kind: kind, state: state, checkpoint: checkpoint,
                              result: removed.map { JobResult(removedContainer: $0) }, error: error,
                              phases: [JobPhase(name: kind == .restore ? "restore" : kind.rawValue, startedAt: "2026-12-01T10:00:00.000Z",
                                                endedAt: "2026-12-01T10:00:00.400Z")],
                              containerRunning: running, createdAt: "2026-12-01T10:00:00.000Z", updatedAt: "2026-12-01T10:00:00.500Z")
    }

    func running(_ state: Bool, facts: CheckpointFacts? = MigrationMachineTests.facts) -> ContainerReport {
        ContainerReport(name: "counter", exists: true, running: state, status: state ? "running" : "exited", id: Self.containerID, facts: facts)
    }

    /// Runs the machine through a live migration up to `state`.
    func advanced(to state: MigrationState, _ base: MigrationRecord? = nil) -> MigrationRecord {
        var m = base ?? live()
        let env = environment()
        m = MigrationMachine.next(m, .probed(target: TargetFacts(), source: running(true), startedAt: "2026-12-01T10:00:00.000Z",
                                             endedAt: "2026-12-01T10:00:00.090Z"), env).record
        if state == .checkpointing { return m }
        m = MigrationMachine.next(m, .jobReport(node: "node-a", job(.checkpoint, .succeeded, checkpoint: Self.checkpointID, running: false)), env).record
        if state == .transferring { return m }
        m = MigrationMachine.next(m, .jobReport(node: "node-b", job(.restore, .restoring)), env).record
        return m
    }

    @Test("preflight runs before anything stops: a stopped source container fails the migration, nothing is posted")
    func preflightBeforeStopping() {
        let t = MigrationMachine.next(live(), .probed(target: TargetFacts(), source: running(false), startedAt: "a", endedAt: "b"), environment())
        #expect(t.record.state == .failed)
        #expect(t.record.errorCode == "PREFLIGHT_FAILED")
        #expect(t.record.findings?.contains("SOURCE_CONTAINER_NOT_RUNNING") == true)
        #expect(!t.actions.contains { if case .post = $0 { true } else { false } })
        #expect(MigrationAPI.runningOn(t.record) == "node-a")
        #expect(MigrationAPI.view(t.record, events: nil).rolledBack == nil, "nothing was stopped, so nothing is rolled back")
    }

    @Test("live facts decide: a name taken on the target right now blocks before the checkpoint")
    func liveTargetFacts() {
        var target = TargetFacts()
        target.containerNames = ["counter"]
        let t = MigrationMachine.next(live(), .probed(target: target, source: running(true), startedAt: "a", endedAt: "b"), environment())
        #expect(t.record.state == .failed)
        #expect(t.record.errorMessage?.contains("CONTAINER_NAME_IN_USE") == true)
        let free = MigrationMachine.next(live(), .probed(target: TargetFacts(), source: running(true), startedAt: "a", endedAt: "b"), environment())
        #expect(free.record.state == .checkpointing)
        #expect(free.actions == [.post(node: "node-a", MigrationMachine.checkpointRequest(free.record))])
    }

    @Test("cut-through: the source's upload starts the target's prefetch, and the restore job is told of it")
    func cutThrough() {
        let expected = PrefetchRequest(node: "node-a", upload: "mig-1-checkpoint")
        let checkpointing = advanced(to: .checkpointing)
        let uploading = MigrationMachine.next(checkpointing, .jobReport(node: "node-a", job(.checkpoint, .uploading, running: false)), environment())
        #expect(uploading.actions == [.prefetch(node: "node-b", expected)], "\(uploading.actions)")
        #expect(uploading.record.state == .checkpointing, "a prefetch changes nothing the record says")
        let transferring = advanced(to: .transferring)
        #expect(MigrationMachine.restoreRequest(transferring, environment()).prefetch == expected)

        // Not with cut_through false, and not for a catalogued checkpoint (nothing is arriving).
        let plain = advanced(to: .checkpointing, live(cutThrough: false))
        let plainUploading = MigrationMachine.next(plain, .jobReport(node: "node-a", job(.checkpoint, .uploading, running: false)), environment())
        #expect(!plainUploading.actions.contains { if case .prefetch = $0 { true } else { false } })
        #expect(MigrationMachine.restoreRequest(advanced(to: .transferring, live(cutThrough: false)), environment()).prefetch == nil)
        var catalogued = live()
        catalogued.sourceNode = nil
        catalogued.sourceContainer = nil
        catalogued.checkpointID = Self.checkpointID
        #expect(MigrationMachine.restoreRequest(catalogued, environment()).prefetch == nil)
    }

    @Test("--name with --tcp-established is refused at preflight, before the source is touched")
    func nameWithTCPEstablished() {
        let m = live(restore: ["name": .string("copy"), "tcp_established": .bool(true)])
        let t = MigrationMachine.next(m, .probed(target: TargetFacts(), source: running(true), startedAt: "a", endedAt: "b"), environment())
        #expect(t.record.state == .failed)
        #expect(t.record.errorMessage?.contains("NAME_WITH_TCP_ESTABLISHED") == true)
    }

    @Test("a checkpoint that succeeded hands the restore, with the expected container, to the target")
    func checkpointThenRestore() throws {
        let m = advanced(to: .transferring)
        #expect(m.state == .transferring)
        #expect(m.sourceStopped)
        #expect(m.checkpointID == Self.checkpointID)
        #expect(MigrationMachine.phases(m).contains { $0.name == "frozen" && $0.durationMs == 42 })
        let request = MigrationMachine.restoreRequest(m, environment())
        #expect(request.expected == ExpectedContainer(id: Self.containerID, name: "counter"))
    }

    @Test("a failed restore after the source stopped rolls back on the source, then fails with rolled_back true")
    func restoreFailureRollsBack() {
        let m = advanced(to: .restoring)
        #expect(m.state == .restoring)
        let failed = MigrationMachine.next(m, .jobReport(node: "node-b", job(.restore, .failed, error: JobFailure(code: "RESTORE_FAILED", message: "Error: boom"), removed: "c")), environment())
        #expect(failed.record.state == .rollingBack)
        #expect(failed.actions.contains(.post(node: "node-a", MigrationMachine.rollbackRequest(failed.record))))
        #expect(MigrationMachine.verdict(failed.record, job: job(.restore, .succeeded)).proceed == false,
                "a late restore on the target is undone")
        let done = MigrationMachine.next(failed.record, .jobReport(node: "node-a", job(.rollback, .succeeded)), environment())
        #expect(done.record.state == .failed)
        #expect(done.record.errorCode == "RESTORE_FAILED")
        #expect(done.record.errorMessage?.contains("Error: boom") == true)
        #expect(done.record.rolledBack == true)
        #expect(MigrationAPI.runningOn(done.record) == "node-a")
    }

    @Test("a rollback that fails says so: failed, rolled_back false, running nowhere known")
    func rollbackFailure() {
        let m = advanced(to: .restoring)
        let failed = MigrationMachine.next(m, .jobReport(node: "node-b", job(.restore, .failed, error: JobFailure(code: "RESTORE_FAILED", message: "x"))), environment()).record
        let done = MigrationMachine.next(failed, .jobReport(node: "node-a", job(.rollback, .failed, error: JobFailure(code: "ROLLBACK_FAILED", message: "no archive"))), environment())
        #expect(done.record.state == .failed)
        #expect(done.record.rolledBack == false)
        #expect(done.record.errorMessage?.contains("no archive") == true)
        #expect(MigrationAPI.runningOn(done.record) == nil)
    }

    @Test("a target that goes silent before the restore began fails NODE_DOWN and rolls back; its job is abandoned")
    func targetDownBeforeRestore() {
        let m = advanced(to: .transferring)
        let t = MigrationMachine.next(m, .tick, environment(targetUp: false))
        #expect(t.record.state == .rollingBack)
        #expect(t.record.errorCode == "NODE_DOWN")
        #expect(t.actions.contains(.cancelJob(node: "node-b", jobID: "mig-1")))
        #expect(MigrationMachine.verdict(t.record, job: job(.restore, .restoring)).proceed == false, "the returning agent must not restore")
    }

    @Test("a target that goes silent while restoring is waited for, never rolled back under it, until the deadline")
    func targetDownWhileRestoring() {
        let m = advanced(to: .restoring)
        let waiting = MigrationMachine.next(m, .tick, environment(targetUp: false))
        #expect(waiting.record.state == .restoring)
        let late = MigrationMachine.next(m, .tick, environment(targetUp: false, now: Date().addingTimeInterval(3600)))
        #expect(late.record.state == .rollingBack)
        #expect(late.record.errorCode == "TIMEOUT")
    }

    @Test("the restore's gate: the target asks before restoring and the migration moves to restoring")
    func restoreGate() {
        let m = advanced(to: .transferring)
        let t = MigrationMachine.next(m, .jobReport(node: "node-b", job(.restore, .restoring)), environment())
        #expect(t.record.state == .restoring)
        #expect(MigrationMachine.verdict(t.record, job: job(.restore, .restoring)).proceed)
        let done = MigrationMachine.next(t.record, .jobReport(node: "node-b", job(.restore, .succeeded)), environment())
        #expect(done.record.state == .succeeded)
        #expect(done.actions.contains(.release(node: "node-a", jobID: "mig-1-checkpoint", removeContainer: true)))
        #expect(MigrationMachine.verdict(done.record, job: job(.restore, .restoring)).proceed,
                "a target agent restarted after its restore is told to keep it")
        #expect(MigrationAPI.runningOn(done.record) == "node-b")
    }

    @Test("a checkpoint that failed with the container still running needs no rollback")
    func checkpointFailedContainerRuns() {
        let m = advanced(to: .checkpointing)
        let t = MigrationMachine.next(m, .jobReport(node: "node-a", job(.checkpoint, .failed, running: true, error: JobFailure(code: "CHECKPOINT_FAILED", message: "criu"))), environment())
        #expect(t.record.state == .failed)
        #expect(!t.record.sourceStopped)
        #expect(MigrationAPI.runningOn(t.record) == "node-a")
    }

    @Test("a checkpoint that failed with the container stopped rolls back")
    func checkpointFailedContainerStopped() {
        let m = advanced(to: .checkpointing)
        let t = MigrationMachine.next(m, .jobReport(node: "node-a", job(.checkpoint, .failed, running: false, error: JobFailure(code: "INTERRUPTED", message: "agent stopped"))), environment())
        #expect(t.record.state == .rollingBack)
        #expect(t.record.errorCode == "INTERRUPTED")
    }

    @Test("a cancel during the checkpoint rolls back (the dump may have stopped the container) and ends cancelled")
    func cancelDuringCheckpoint() {
        let m = advanced(to: .checkpointing)
        let t = MigrationMachine.next(m, .cancel, environment())
        #expect(t.record.state == .rollingBack)
        #expect(MigrationMachine.verdict(t.record, job: job(.checkpoint, .uploading)).proceed == false)
        let done = MigrationMachine.next(t.record, .jobReport(node: "node-a", job(.rollback, .succeeded)), environment())
        #expect(done.record.state == .cancelled)
        #expect(done.record.rolledBack == true)
    }

    @Test("a late rollback outcome is still recorded on a finished migration")
    func lateRollback() {
        var m = advanced(to: .restoring)
        m = MigrationMachine.next(m, .jobReport(node: "node-b", job(.restore, .failed, error: JobFailure(code: "RESTORE_FAILED", message: "x"))), environment()).record
        m = MigrationMachine.next(m, .tick, environment(now: Date().addingTimeInterval(7200))).record
        #expect(m.state == .failed)
        #expect(m.rolledBack == false)
        let late = MigrationMachine.next(m, .jobReport(node: "node-a", job(.rollback, .succeeded)), environment())
        #expect(late.changesFinished)
        #expect(late.record.rolledBack == true)
    }

    @Test("a migration of a catalogued checkpoint stops nothing: a failure ends it with no rollback")
    func catalogMigrationFailure() {
        let m = MigrationRecord(id: "mig-1", requestKey: "k", explicitKey: false, checkpointID: Self.checkpointID, sourceNode: nil,
                                sourceContainer: nil, targetNode: "node-b", options: "{}", deadlineAt: Catalog.timestamp(Date().addingTimeInterval(600)))
        let started = MigrationMachine.next(m, .probed(target: TargetFacts(), source: nil, startedAt: "a", endedAt: "b"), environment())
        #expect(started.record.state == .transferring)
        let failed = MigrationMachine.next(started.record, .jobReport(node: "node-b", job(.restore, .failed, error: JobFailure(code: "RESTORE_FAILED", message: "x"))), environment())
        #expect(failed.record.state == .failed)
        #expect(failed.record.rolledBack == nil)
        #expect(!failed.actions.contains { if case .post = $0 { true } else { false } })
    }
}
