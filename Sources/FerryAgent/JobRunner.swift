import FerryValidation
import CheckpointArchive
import FerryAPI
import FerryClient
import FerryProvenance
import Foundation

/// Runs jobs, each on a thread of its own (the drivers and transfers block): a restore downloads the archive and
/// runs the driver's restore; a checkpoint runs the driver's checkpoint and uploads the archive to the service; a
/// rollback restores the container on its source node from the archive its checkpoint job kept. Every state change
/// goes through the ``JobStore`` (and so to disk) first, and on to the service through the ``JobReporter``.
///
/// The service is asked (``JobReporter/ask(_:control:)``) before each irreversible step: before a restore runs,
/// before a restore's success is recorded, and before any job found unfinished at start-up is resumed. A job the
/// service has given up on is never started or resumed; a restore it gave up on is undone.
///
/// Resuming at start-up, by the state the job was left in (after waiting for a runtime process the previous agent
/// left running):
/// - `downloading`: the download goes on from the partial file (`Range`).
/// - `restoring`: a container with the expected identity that runs is the restore this job completed (success);
///   one that does not run is what an interrupted restore left (removed, and the restore runs again). Drivers
///   that cannot inspect containers run the restore again if ``RuntimeDriver/rerunsInterruptedRestore``.
/// - `checkpointing`: reconciled with the container's real state: a complete archive of a stopped container is
///   uploaded; otherwise the job fails saying whether the container runs. The archive is never deleted.
/// - `uploading`: the upload starts again (the catalog is content-addressed, so a repeat is harmless).
final class JobRunner: Sendable {
    let store: JobStore
    let driver: any RuntimeDriver
    let client: FerryClient
    let download: ArchiveDownload
    let prefetcher: Prefetcher?
    let provenance: ProvenanceTrust
    let reporter: JobReporter
    let node: String
    let log: @Sendable (String) -> Void

    /// The end of the driver's output kept in a job's `output_tail`.
    static let outputTailBytes = 4096

    init(store: JobStore, driver: any RuntimeDriver, client: FerryClient, token: String?, maximumDownloadRate: Int64?,
         reporter: JobReporter, node: String, provenance: ProvenanceTrust, prefetcher: Prefetcher? = nil,
         log: @escaping @Sendable (String) -> Void) {
        self.prefetcher = prefetcher
        self.provenance = provenance
        self.store = store
        self.driver = driver
        self.client = client
        self.download = ArchiveDownload(client: client, token: token, maximumRate: maximumDownloadRate)
        self.reporter = reporter
        self.node = node
        self.log = log
    }

    /// Starts the job's thread. `resumed` says the job was found on disk at start-up rather than just posted.
    func start(_ id: String, resumed: Bool) {
        guard let control = store.control(id) else { return }
        let thread = Thread { [self] in
            run(id, resumed: resumed, control: control)
            control.markFinished()
        }
        thread.name = "ferry-agent-job"
        thread.start()
    }

    /// The service gave the job up: transfers stop at once, a running runtime is let finish (killing CRIU half-way
    /// leaves a frozen or half-restored container), and the job then undoes what it did.
    func abandon(_ id: String, reason: String?) {
        guard let control = store.control(id), store.job(id)?.state.isFinished == false else { return }
        log("job \(id): the service gave it up\(reason.map { " (\($0))" } ?? "")")
        control.abandon()
    }

    func run(_ id: String, resumed: Bool, control: JobControl) {
        guard let job = store.job(id), !job.state.isFinished else { return }
        log("job \(id): \(resumed ? "resuming" : "starting") \(job.kind.rawValue) (\(job.state.rawValue))")
        if resumed && job.kind != .rollback {
            // Learn what the service decided while this agent was away before touching anything.
            waitForLeftoverDriver(job)
            guard let verdict = reporter.ask(job.status, control: control) else { return }
            if !verdict.proceed {
                undoAbandoned(job, reason: verdict.reason)
                return
            }
        }
        switch job.kind {
        case .restore: restore(job, resumed: resumed, control: control)
        case .checkpoint: checkpoint(job, resumed: resumed, control: control)
        case .rollback: rollback(job, control: control)
        }
        if control.isCancelled {
            log("job \(id): cancelled")
        } else if let final = store.job(id), final.state.isFinished {
            log("job \(id): \(final.state.rawValue)\(final.error.map { " \($0.code)" } ?? "")")
        } else {
            log("job \(id): left \(store.job(id)?.state.rawValue ?? "?") for the next start")
        }
    }

    // MARK: Restore

    func restore(_ job: Job, resumed: Bool, control: JobControl) {
        let context = JobContext(id: job.id, directory: store.directory(of: job.id), checkpoint: job.checkpoint)
        let archive = URL(fileURLWithPath: context.directory).appendingPathComponent("archive.tar")
        defer {
            if store.job(job.id)?.state.isFinished == true {
                try? FileManager.default.removeItem(at: archive)
                try? FileManager.default.removeItem(at: archive.appendingPathExtension("partial"))
                try? FileManager.default.removeItem(atPath: CRIUDriver.imagesDirectory(of: context))
            }
        }
        var state = job.state
        if state == .restoring && job.hasBegun("restore") {
            // The runtime ran (or was running) when the agent stopped: find out what it left.
            if let report = inspectExpected(job) {
                if report.running {
                    finishRestore(job.id, containerID: report.id, outcome: nil, control: control,
                                  note: "the restore had completed before the agent restarted")
                    return
                }
                if report.exists, let removed = remove(report.id ?? report.name, job: job.id), !removed {
                    store.fail(job.id, AgentError(.restoreFailed, "an interrupted restore left container \(report.name), and it cannot be removed"))
                    return
                }
            } else if !driver.rerunsInterruptedRestore {
                store.fail(job.id, AgentError(.interrupted, "the agent stopped while the restore ran, and the \(driver.name) driver does not run it twice"))
                return
            }
        }
        // Downloads are not fsynced (the catalog's copy is the durable one): after a crash of the machine the
        // archive may be torn, so a resumed job checks it again before the runtime sees it.
        if resumed, let checkpoint = job.checkpoint, FileManager.default.fileExists(atPath: archive.path),
           (try? DownloadDigest.sha256(ofFile: archive.path)) != checkpoint {
            log("job \(job.id): the archive left on disk is not \(checkpoint.prefix(12)) any more; downloading it again")
            try? FileManager.default.removeItem(at: archive)
        }
        if state == .restoring && !FileManager.default.fileExists(atPath: archive.path) {
            store.update(job.id) { $0.state = .downloading }
            state = .downloading
        }
        // Nothing the pinned key does not vouch for is downloaded, let alone restored.
        var statement: ProvenanceStatement?
        if !job.hasBegun("restore"), let checkpoint = job.checkpoint {
            do throws(AgentError) {
                statement = try provenance.check(checkpoint)
            } catch {
                store.fail(job.id, error)
                return
            }
        }
        // Whether the restore's container would collide with one already here, asked while the archive downloads.
        let collision = job.hasBegun("restore") ? nil : BackgroundValue { self.inspectExpected(job) }
        if state == .downloading {
            guard let checkpoint = job.checkpoint else { return }
            store.update(job.id, report: false) { $0.begin("transfer") }
            var prefetched = false
            if let prefetch = job.prefetch, let prefetcher {
                prefetched = prefetcher.adopt(prefetch, checkpoint: checkpoint, to: archive, control: control) { done in
                    store.update(job.id, persist: false) { $0.bytesDone = done }
                }
                if prefetched { store.update(job.id, report: false) { $0.prefetched = true } }
            }
            do throws(AgentError) {
                if !prefetched {
                    _ = try download.run(checkpoint, to: archive, control: control) { done, total in
                        store.update(job.id, persist: false) { job in
                            job.bytesDone = done
                            job.bytesTotal = total
                        }
                    }
                }
            } catch {
                // The statement signs this digest: other bytes twice over are an altered archive, not a bad line.
                let failure = error.code.rawValue == "DIGEST_MISMATCH"
                    ? AgentError(.signatureInvalid, "checkpoint \(checkpoint.prefix(12)) is not restored: the service sends bytes other than the ones its statement signs (\(error.message))")
                    : error
                if !control.isInterrupted { store.fail(job.id, failure) }
                markIfInterruptedForGood(job.id, control)
                return
            }
            guard !control.isInterrupted else {
                markIfInterruptedForGood(job.id, control)
                return
            }
            // Not reported on its own: the gate just below tells the service, and waits for its answer.
            store.update(job.id, report: false) { job in
                job.state = .restoring
                job.bytesDone = job.bytesTotal
                job.end("transfer")
            }
        }
        guard !markIfInterruptedForGood(job.id, control), let ready = store.job(job.id) else { return }
        if let statement, let checkpoint = job.checkpoint {
            do throws(AgentError) {
                try ProvenanceTrust.checkArchive(statement, id: checkpoint, path: archive.path)
            } catch {
                store.fail(job.id, error)
                return
            }
        }
        // The irreversible step: only with the service's word that the migration still wants it.
        guard let verdict = reporter.ask(ready.status, control: control) else { return }
        guard verdict.proceed else {
            store.fail(job.id, AgentError(.abandoned, "the service gave the migration up before the restore: \(verdict.reason ?? "no reason given")"))
            return
        }
        if !ready.hasBegun("restore"), let report = collision?.value ?? nil, report.exists {
            // Not this job's container: leave it alone. Preflight checks this too; the node may have changed since.
            store.fail(job.id, AgentError(.containerExists, "a container \(report.name) (\(report.status ?? "state unknown")) already exists on \(node); the restore would collide with it"))
            return
        }
        do throws(AgentError) {
            let options = try RuntimeRestoreOptions(parsing: job.options)
            try driver.prepareRestore(archive: archive.path, job: context)
            let argv = try driver.restoreCommand(archive: archive.path, options: options, job: context)
            store.update(job.id, report: false) { $0.begin("restore") }
            let outcome = try runDriver(argv, step: "restore", job: job.id, context: context, failureCode: .restoreFailed, control: control)
            if outcome.status == 0 {
                finishRestore(job.id, containerID: driver.restorePrintsContainerID ? outcome.lastStdoutLine : nil,
                              outcome: outcome, control: control, note: nil)
            } else {
                let removed = removeLeftover(store.job(job.id) ?? job)
                let result = Job.Result(exitStatus: outcome.status, outputTail: outcome.tail, removedContainer: removed)
                if control.isCancelled || control.isAbandoned {
                    markIfInterruptedForGood(job.id, control, result: result)
                } else {
                    store.fail(job.id, AgentError(.restoreFailed, runtimeFailure("restore", outcome)), result: result)
                }
            }
        } catch {
            store.fail(job.id, error)
        }
    }

    /// A restore that worked: recorded as succeeded once the service agrees; undone (the container removed) when
    /// the service has given the migration up meanwhile.
    func finishRestore(_ id: String, containerID: String?, outcome: Outcome?, control: JobControl, note: String?) {
        guard var final = store.job(id) else { return }
        final.updatedAt = Job.timestamp()
        final.state = .succeeded
        final.bytesDone = final.bytesTotal
        final.end("restore")
        final.result = Job.Result(containerID: containerID, exitStatus: outcome?.status ?? 0,
                                  outputTail: outcome?.tail ?? note)
        let verdict = control.isAbandoned || control.isCancelled
            ? JobVerdict(proceed: false, reason: "the job was stopped while the runtime restored")
            : reporter.ask(final.status, control: control)
        guard let verdict else { return }  // The agent is stopping: the next start finds the container running.
        if verdict.proceed {
            store.update(id) { job in
                job.state = .succeeded
                job.bytesDone = job.bytesTotal
                job.end("restore")
                job.result = final.result
            }
            return
        }
        let removed = containerID.flatMap { remove($0, job: id) } == true ? containerID : removeLeftover(final)
        var result = final.result ?? Job.Result()
        result.removedContainer = removed
        let code: AgentErrorCode = control.isCancelled ? .cancelled : .abandoned
        store.fail(id, AgentError(code, "the migration was given up while the runtime restored (\(verdict.reason ?? "no reason given")); "
            + (removed != nil ? "the restored container was removed" : "no restored container was found to remove")), result: result)
    }

    // MARK: Helpers

    /// Whether the job was cancelled or abandoned; if so it is finished as `CANCELLED` or `ABANDONED` (unless it
    /// finished before), so that a driver stopped on purpose is not reported as a driver failure.
    @discardableResult
    func markIfInterruptedForGood(_ id: String, _ control: JobControl, result: Job.Result? = nil) -> Bool {
        if control.isCancelled {
            store.fail(id, Self.cancelled, result: result)
            return true
        }
        if control.isAbandoned {
            store.fail(id, AgentError(.abandoned, "the service gave the migration up"), result: result)
            return true
        }
        return false
    }

    static let cancelled = AgentError(.cancelled, "the job was cancelled")

    func fileSize(_ path: String) -> Int64 {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// "the podman restore exited with status 125: Error: …": the runtime's own last word, from its stderr.
    func runtimeFailure(_ step: String, _ outcome: Outcome) -> String {
        let base = "the \(driver.name) \(step) exited with status \(outcome.status)"
        guard let line = outcome.lastStderrLine else { return base }
        return "\(base): \(line.prefix(500))"
    }

    /// Waits for a runtime process an earlier agent started and left running (it was SIGKILLed, say), so that
    /// what it leaves is judged only once it has finished.
    func waitForLeftoverDriver(_ job: Job) {
        guard let pid = job.driverPID, pid > 0, job.driverProgram.map({ Self.process(pid, runs: $0) }) == true else { return }
        log("job \(job.id): waiting for the \(job.driverProgram ?? "runtime") process \(pid) the previous agent left running")
        while Self.process(pid, runs: job.driverProgram ?? "") { usleep(50_000) }
        log("job \(job.id): process \(pid) has ended")
    }

    /// Whether process `pid` exists and runs `program` (so a reused PID is not waited for).
    static func process(_ pid: Int32, runs program: String) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM,
              let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return false }
        let first = data.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" {
            return false
        }
        return (first as NSString).lastPathComponent == (program as NSString).lastPathComponent
    }

    /// What a driver command left behind.
    struct Outcome {
        var status: Int32
        /// The last 4 KiB of stdout followed by stderr.
        var tail: String
        var lastStdoutLine: String?
        var lastStderrLine: String?
    }

    /// Runs one driver command with stdout and stderr into `STEP.out` and `STEP.err` in the job directory, and
    /// waits for it (a cancel terminates it meanwhile). Its PID is recorded in the job first, so a restarted agent
    /// can wait for it.
    func runDriver(_ argv: [String], step: String, job id: String, context: JobContext, failureCode: AgentErrorCode,
                           control: JobControl) throws(AgentError) -> Outcome {
        let stdout = "\(context.directory)/\(step).out"
        let stderr = "\(context.directory)/\(step).err"
        log("job \(id): running \(argv.first ?? "") \(step)")
        let child = try ChildProcess.spawn(argv, stdout: stdout, stderr: stderr, failureCode: failureCode)
        store.updateBookkeeping(id) { job in
            job.driverPID = child.pid
            job.driverProgram = argv.first
        }
        control.attach(child)
        let status = child.wait()
        control.attach(nil as ChildProcess?)
        store.updateBookkeeping(id) { $0.driverPID = nil }
        log("job \(id): \(step) exited with status \(status)")
        let out = FileIO.tail(of: stdout, maximum: Self.outputTailBytes)
        let err = FileIO.tail(of: stderr, maximum: Self.outputTailBytes)
        let tail = String(decoding: (out + err).suffix(Self.outputTailBytes), as: UTF8.self)
        func lastLine(_ bytes: [UInt8]) -> String? {
            String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty }
        }
        return Outcome(status: status, tail: tail, lastStdoutLine: lastLine(Array(out)), lastStderrLine: lastLine(Array(err)))
    }
}

/// A value computed on a thread of its own, waited for when needed.
final class BackgroundValue<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable invariant: `result` is only touched with `condition` locked.
    let condition = NSCondition()
    var result: Value??

    init(_ compute: @escaping @Sendable () -> Value) {
        let thread = Thread { [self] in
            let value = compute()
            condition.lock()
            result = .some(value)
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "ferry-agent-background"
        thread.start()
    }

    var value: Value {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        return result!!
    }
}
