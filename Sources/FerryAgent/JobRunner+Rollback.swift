import CheckpointArchive
import FerryAPI
import FerryClient
import FerryValidation
import Foundation

/// Rollback jobs, releasing what checkpoint jobs kept, and undoing what a job the service gave up on did.
extension JobRunner {
    // MARK: Rollback

    /// Brings the container back on this (its source) node: nothing to do if it runs; else the stopped copy is
    /// removed and the archive its checkpoint job kept (or, if that is gone, the catalogued one) is restored.
    func rollback(_ job: Job, control: JobControl) {
        guard let container = job.container else { return }
        let context = JobContext(id: job.id, directory: store.directory(of: job.id), checkpoint: job.checkpoint)
        let downloaded = URL(fileURLWithPath: context.directory).appendingPathComponent("archive.tar")
        defer {
            if store.job(job.id)?.state.isFinished == true {
                try? FileManager.default.removeItem(at: downloaded)
                try? FileManager.default.removeItem(at: downloaded.appendingPathExtension("partial"))
            }
        }
        store.update(job.id, report: false) { $0.begin("rollback") }
        let before = driver.inspect(container: container)
        if let before, before.running {
            succeedRollback(job.id, Job.Result(containerID: before.id, outputTail: "the container already runs on this node"))
            return
        }
        // A checkpoint job of this migration still running here must end first: its outcome decides what to undo.
        if let sourceJob = job.sourceJob, let sourceControl = store.control(sourceJob), store.job(sourceJob)?.state.isFinished == false {
            log("job \(job.id): waiting for \(sourceJob) to end")
            while store.job(sourceJob)?.state.isFinished == false,
                  !sourceControl.waitUntilFinished(deadline: Date(timeIntervalSinceNow: 0.2)) {
                if control.isInterrupted { return }
            }
            if let after = driver.inspect(container: container), after.running {
                succeedRollback(job.id, Job.Result(containerID: after.id, outputTail: "the container runs on this node: the checkpoint did not stop it"))
                return
            }
        }
        let options: RuntimeRestoreOptions
        do throws(AgentError) {
            options = try RuntimeRestoreOptions(parsing: job.options)
        } catch {
            store.fail(job.id, error)
            return
        }
        // First choice: restore the stopped container where it stands, from the checkpoint the runtime kept.
        let current = driver.inspect(container: container) ?? before
        if let current, current.exists, let argv = driver.restoreInPlaceCommand(container: current.id ?? container, options: options) {
            do throws(AgentError) {
                let outcome = try runDriver(argv, step: "rollback-in-place", job: job.id, context: context, failureCode: .rollbackFailed, control: control)
                if outcome.status == 0 {
                    succeedRollback(job.id, Job.Result(containerID: current.id, exitStatus: 0, outputTail: outcome.tail))
                    return
                }
                log("job \(job.id): restoring in place failed (\(runtimeFailure("restore", outcome))); restoring the archive instead")
            } catch {
                log("job \(job.id): restoring in place could not start: \(error)")
            }
        }
        var archive = job.sourceJob.flatMap(keptArchive(of:))
        if archive == nil, let checkpoint = job.checkpoint {
            do throws(AgentError) {
                _ = try download.run(checkpoint, to: downloaded, control: control) { _, _ in }
                archive = downloaded.path
            } catch {
                if control.isInterrupted { return }
                store.fail(job.id, AgentError(.rollbackFailed, "the checkpoint job's archive is gone and the catalogued one cannot be downloaded: \(error.message)"))
                return
            }
        }
        guard let archive else {
            store.fail(job.id, AgentError(.rollbackFailed, "no archive to restore \(container) from: the checkpoint wrote none"))
            return
        }
        guard !control.isInterrupted else { return }
        let stale = driver.inspect(container: container)
        if let stale, stale.exists, remove(stale.id ?? container, job: job.id) == false {
            store.fail(job.id, AgentError(.rollbackFailed, "the stopped container \(container) cannot be removed to restore it"))
            return
        }
        do throws(AgentError) {
            try driver.prepareRestore(archive: archive, job: context)
            let argv = try driver.restoreCommand(archive: archive, options: options, job: context)
            let outcome = try runDriver(argv, step: "rollback", job: job.id, context: context, failureCode: .rollbackFailed, control: control)
            if outcome.status == 0 {
                succeedRollback(job.id, Job.Result(containerID: self.driver.restorePrintsContainerID ? outcome.lastStdoutLine : nil,
                                            exitStatus: 0, outputTail: outcome.tail))
            } else {
                let removed = removeLeftover(store.job(job.id) ?? job)
                store.fail(job.id, AgentError(.rollbackFailed, runtimeFailure("restore", outcome)),
                           result: Job.Result(exitStatus: outcome.status, outputTail: outcome.tail, removedContainer: removed))
            }
        } catch {
            store.fail(job.id, AgentError(.rollbackFailed, error.message))
        }
    }

    /// The archive a checkpoint job wrote and still keeps.
    func keptArchive(of checkpointJob: String) -> String? {
        let directory = store.directory(of: checkpointJob)
        return CheckpointOptions.Compression.allCases.map { "\(directory)/\($0.fileName)" }
            .first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Frees what a finished checkpoint job kept for a rollback: the archive, and (after a successful migration)
    /// the stopped container itself. A running container is never removed. Returns what was done.
    func release(_ id: String, removeContainer: Bool) -> String {
        guard let job = store.job(id) else { return "no such job" }
        var done: [String] = []
        if let archive = keptArchive(of: id) {
            try? FileManager.default.removeItem(atPath: archive)
            done.append("archive deleted")
        }
        store.updateBookkeeping(id) { $0.archiveReleased = true }
        if removeContainer, job.kind == .checkpoint, let container = job.container,
           let report = driver.inspect(container: container), report.exists, !report.running {
            done.append(remove(report.id ?? container, job: id) == true ? "stopped container removed" : "stopped container could not be removed")
        }
        return done.isEmpty ? "nothing kept" : done.joined(separator: ", ")
    }

    // MARK: Undoing

    /// A job found unfinished at start-up that the service has given up on: stopped, and a container its restore
    /// created removed; a checkpoint's archive is kept for the rollback.
    func undoAbandoned(_ job: Job, reason: String?) {
        var result = job.result ?? Job.Result()
        var running: Bool?
        switch job.kind {
        case .restore where job.hasBegun("restore"):
            if let report = inspectExpected(job), report.exists {
                result.removedContainer = remove(report.id ?? report.name, job: job.id) == true ? (report.id ?? report.name) : nil
            }
        case .checkpoint:
            running = job.container.flatMap { driver.inspect(container: $0) }?.running
        default:
            break
        }
        store.update(job.id) { $0.containerRunning = running ?? $0.containerRunning }
        store.fail(job.id, AgentError(.abandoned, "the service gave the migration up while this agent was away (\(reason ?? "no reason given"))"
            + (result.removedContainer != nil ? "; the restored container was removed" : "")), result: result)
    }

    /// The container a restore job creates, as the runtime sees it now; nil when the driver cannot tell.
    func inspectExpected(_ job: Job) -> ContainerReport? {
        let options = try? RuntimeRestoreOptions(parsing: job.options)
        let name = options?.restore.name.flatMap { $0.isEmpty ? nil : $0 }
        guard let reference = name ?? job.expected?.id ?? job.expected?.name ?? job.container else { return nil }
        return driver.inspect(container: reference)
    }

    /// After a failed restore: removes the container it left (the restore created it: the job checked the name was
    /// free first). Returns the removed container's name or ID.
    func removeLeftover(_ job: Job) -> String? {
        guard let report = inspectExpected(job), report.exists, !report.running else { return nil }
        let reference = report.id ?? report.name
        return remove(reference, job: job.id) == true ? reference : nil
    }

    /// Runs the driver's remove command; nil when the driver cannot remove containers.
    func remove(_ container: String, job: String) -> Bool? {
        guard let argv = driver.removeCommand(container: container) else { return nil }
        let outcome = FactCommand.run(argv, timeout: 60)
        log("job \(job): removing container \(container): \(outcome.map { "exit \($0.status)" } ?? "could not run")")
        return outcome?.status == 0
    }

    private func succeedRollback(_ id: String, _ result: Job.Result) {
        store.update(id) { job in
            job.state = .succeeded
            job.end("rollback")
            job.result = result
        }
    }
}
