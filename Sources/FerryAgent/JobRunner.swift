import FerryClient
import Foundation

/// Runs jobs, each on a thread of its own (the drivers and transfers block): a restore downloads the archive
/// and runs the driver's restore; a checkpoint runs the driver's checkpoint and uploads the archive to the
/// service. Every state change goes through the ``JobStore`` (and so to disk) first.
///
/// Resuming at start-up, by the state the job was left in:
/// - `downloading`: the download goes on from the partial file (`Range`).
/// - `restoring`: the restore runs again if the driver allows it (``RuntimeDriver/rerunsInterruptedRestore``;
///   all built-in drivers do, as the runtime refuses a second copy of the same container), else `INTERRUPTED`.
/// - `checkpointing`: the checkpoint runs again only if the driver allows it (none of the built-in ones do: the
///   first run may have stopped the container), else `INTERRUPTED`.
/// - `uploading`: the upload starts again (the catalog is content-addressed, so a repeat is harmless).
final class JobRunner: Sendable {
    private let store: JobStore
    private let driver: any RuntimeDriver
    private let client: FerryClient
    private let download: ArchiveDownload
    private let node: String
    private let log: @Sendable (String) -> Void

    /// The end of the driver's output kept in a job's `output_tail`.
    static let outputTailBytes = 4096

    init(store: JobStore, driver: any RuntimeDriver, client: FerryClient, token: String?, maximumDownloadRate: Int64?,
         node: String, log: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.driver = driver
        self.client = client
        self.download = ArchiveDownload(client: client, token: token, maximumRate: maximumDownloadRate)
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

    private func run(_ id: String, resumed: Bool, control: JobControl) {
        guard let job = store.job(id), !job.state.isFinished else { return }
        log("job \(id): \(resumed ? "resuming" : "starting") \(job.kind.rawValue) (\(job.state.rawValue))")
        switch job.kind {
        case .restore: restore(job, resumed: resumed, control: control)
        case .checkpoint: checkpoint(job, resumed: resumed, control: control)
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

    private func restore(_ job: Job, resumed: Bool, control: JobControl) {
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
        if state == .restoring {
            guard driver.rerunsInterruptedRestore else {
                store.fail(job.id, AgentError(.interrupted, "the agent stopped while the restore ran, and the \(driver.name) driver does not run it twice"))
                return
            }
            if !FileManager.default.fileExists(atPath: archive.path) {
                store.update(job.id) { $0.state = .downloading }
                state = .downloading
            }
        }
        if state == .downloading {
            guard let checkpoint = job.checkpoint else { return }
            do throws(AgentError) {
                _ = try download.run(checkpoint, to: archive, control: control) { done, total in
                    store.update(job.id) { job in
                        job.bytesDone = done
                        job.bytesTotal = total
                    }
                }
            } catch {
                if !control.isInterrupted { store.fail(job.id, error) }
                markIfCancelled(job.id, control)
                return
            }
            guard !control.isInterrupted else {
                markIfCancelled(job.id, control)
                return
            }
            store.update(job.id) { job in
                job.state = .restoring
                job.bytesDone = job.bytesTotal
            }
        }
        guard !markIfCancelled(job.id, control) else { return }
        do throws(AgentError) {
            let options = try RuntimeRestoreOptions(parsing: job.options)
            try driver.prepareRestore(archive: archive.path, job: context)
            let argv = try driver.restoreCommand(archive: archive.path, options: options, job: context)
            let outcome = try runDriver(argv, step: "restore", job: context, failureCode: .restoreFailed, control: control)
            if markIfCancelled(job.id, control) {
                return
            } else if outcome.status == 0 {
                store.update(job.id) { job in
                    job.state = .succeeded
                    job.result = Job.Result(containerID: driver.restorePrintsContainerID ? outcome.lastStdoutLine : nil,
                                            exitStatus: 0, outputTail: outcome.tail)
                }
            } else {
                store.fail(job.id, AgentError(.restoreFailed, "the \(driver.name) restore exited with status \(outcome.status)"),
                           result: Job.Result(exitStatus: outcome.status, outputTail: outcome.tail))
            }
        } catch {
            store.fail(job.id, error)
        }
    }

    // MARK: Checkpoint

    private func checkpoint(_ job: Job, resumed: Bool, control: JobControl) {
        let context = JobContext(id: job.id, directory: store.directory(of: job.id))
        let options: CheckpointOptions
        do throws(AgentError) {
            options = try CheckpointOptions(parsing: job.options)
        } catch {
            store.fail(job.id, error)
            return
        }
        let output = context.directory + "/" + options.compress.fileName
        defer {
            if store.job(job.id)?.state.isFinished == true { try? FileManager.default.removeItem(atPath: output) }
        }
        if job.state == .checkpointing {
            if resumed && !driver.rerunsInterruptedCheckpoint {
                store.fail(job.id, AgentError(.interrupted, "the agent stopped while the checkpoint ran; whether the container still runs is unknown, so it is not checkpointed twice"))
                return
            }
            guard let container = job.container else { return }
            do throws(AgentError) {
                try? FileManager.default.removeItem(atPath: output)
                let argv = try driver.checkpointCommand(container: container, output: output, options: options, job: context)
                let outcome = try runDriver(argv, step: "checkpoint", job: context, failureCode: .checkpointFailed, control: control)
                if markIfCancelled(job.id, control) { return }
                let result = Job.Result(exitStatus: outcome.status, outputTail: outcome.tail)
                guard outcome.status == 0 else {
                    store.fail(job.id, AgentError(.checkpointFailed, "the \(driver.name) checkpoint exited with status \(outcome.status)"), result: result)
                    return
                }
                let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.int64Value ?? 0
                guard size > 0 else {
                    store.fail(job.id, AgentError(.checkpointFailed, "the checkpoint command exited 0 but wrote no archive"), result: result)
                    return
                }
                store.update(job.id) { job in
                    job.state = .uploading
                    job.bytesTotal = size
                    job.result = result
                }
            } catch {
                store.fail(job.id, error)
                return
            }
        }
        guard !control.isInterrupted else {
            markIfCancelled(job.id, control)
            return
        }
        upload(job.id, file: output, control: control)
        markIfCancelled(job.id, control)
    }

    /// Whether the job was cancelled; if so it is finished as `CANCELLED` (unless it finished before), so that a
    /// driver killed by the cancel is not reported as a driver failure.
    @discardableResult
    private func markIfCancelled(_ id: String, _ control: JobControl) -> Bool {
        guard control.isCancelled else { return false }
        store.fail(id, Self.cancelled)
        return true
    }

    static let cancelled = AgentError(.cancelled, "the job was cancelled")

    private func upload(_ id: String, file: String, control: JobControl) {
        guard FileManager.default.fileExists(atPath: file) else {
            store.fail(id, AgentError(.checkpointFailed, "the checkpoint archive is gone from the job directory"))
            return
        }
        let store = store
        var attempt = 0
        while true {
            do {
                let answer = try client.push(file: URL(fileURLWithPath: file), node: node, labels: [:]) { sent, _ in
                    store.update(id, persist: false) { $0.bytesDone = sent }
                }
                guard let checkpoint = (answer["checkpoint"] as? [String: Any])?["id"] as? String,
                      Job.isCheckpointID(checkpoint) else {
                    store.fail(id, AgentError(.uploadFailed, "the service's answer to the upload has no checkpoint ID"))
                    return
                }
                store.update(id) { job in
                    job.state = .succeeded
                    job.checkpoint = checkpoint
                    job.bytesDone = job.bytesTotal
                }
                return
            } catch let error as FerryClientError where (error.status ?? 500) >= 500 && attempt < 5 {
                attempt += 1
                guard control.sleep(Double(1 << attempt)) else { return }
            } catch let error as FerryClientError {
                let code = error.isServerAnswer ? AgentErrorCode(error.code) : .uploadFailed
                store.fail(id, AgentError(code, "the upload failed: \(error.message)"))
                return
            } catch {
                store.fail(id, AgentError(.uploadFailed, "the upload failed"))
                return
            }
        }
    }

    // MARK: Running the driver

    /// What a driver command left behind.
    struct Outcome {
        var status: Int32
        /// The last 4 KiB of stdout followed by stderr.
        var tail: String
        var lastStdoutLine: String?
    }

    /// Runs one driver command with stdout and stderr into `STEP.out` and `STEP.err` in the job directory, and
    /// waits for it (a cancel terminates it meanwhile).
    private func runDriver(_ argv: [String], step: String, job: JobContext, failureCode: AgentErrorCode,
                           control: JobControl) throws(AgentError) -> Outcome {
        let stdout = "\(job.directory)/\(step).out"
        let stderr = "\(job.directory)/\(step).err"
        log("job \(job.id): running \(argv.first ?? "") \(step)")
        let child = try ChildProcess.spawn(argv, stdout: stdout, stderr: stderr, failureCode: failureCode)
        control.attach(child)
        let status = child.wait()
        control.attach(nil as ChildProcess?)
        log("job \(job.id): \(step) exited with status \(status)")
        let out = FileIO.tail(of: stdout, maximum: Self.outputTailBytes)
        let err = FileIO.tail(of: stderr, maximum: Self.outputTailBytes)
        let tail = String(decoding: (out + err).suffix(Self.outputTailBytes), as: UTF8.self)
        let lastLine = String(decoding: out, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty }
        return Outcome(status: status, tail: tail, lastStdoutLine: lastLine)
    }
}
