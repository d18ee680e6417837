import CheckpointArchive
import FerryAPI
import FerryClient
import FerryValidation
import Foundation

/// Checkpoint jobs: the runtime's checkpoint, the reconciliation of one a stopped agent left, and the upload.
extension JobRunner {
    // MARK: Checkpoint

    func checkpoint(_ job: Job, resumed: Bool, control: JobControl) {
        let context = JobContext(id: job.id, directory: store.directory(of: job.id))
        let options: CheckpointOptions
        do throws(AgentError) {
            options = try CheckpointOptions(parsing: job.options)
        } catch {
            store.fail(job.id, error)
            return
        }
        let output = context.directory + "/" + options.compress.fileName
        guard let container = job.container else { return }
        if job.state == .checkpointing {
            if resumed {
                guard reconcileInterruptedCheckpoint(job, container: container, output: output, options: options) else { return }
            } else {
                do throws(AgentError) {
                    try? FileManager.default.removeItem(atPath: output)
                    let argv = try driver.checkpointCommand(container: container, output: output, options: options, job: context)
                    store.update(job.id, report: false) { $0.begin("checkpoint") }
                    let outcome = try runDriver(argv, step: "checkpoint", job: job.id, context: context, failureCode: .checkpointFailed, control: control)
                    let result = Job.Result(exitStatus: outcome.status, outputTail: outcome.tail)
                    guard outcome.status == 0, fileSize(output) > 0 else {
                        let running = driver.inspect(container: container)?.running
                        let message = outcome.status == 0 ? "the checkpoint command exited 0 but wrote no archive"
                            : runtimeFailure("checkpoint", outcome)
                        store.update(job.id) { $0.containerRunning = running }
                        if !markIfInterruptedForGood(job.id, control, result: result) {
                            let code = driver.checkpointFailureCode(exitStatus: outcome.status) ?? .checkpointFailed
                            store.fail(job.id, AgentError(code, message), result: result)
                        }
                        return
                    }
                    store.update(job.id) { job in
                        job.state = .uploading
                        job.bytesTotal = self.fileSize(output)
                        job.result = result
                        job.containerRunning = options.leaveRunning || self.driver.checkpointLeavesContainerRunning
                        job.end("checkpoint")
                    }
                } catch {
                    store.fail(job.id, error)
                    return
                }
            }
        }
        guard !markIfInterruptedForGood(job.id, control) else { return }
        guard !control.isInterrupted else { return }
        upload(job.id, file: output, labels: options.labels, control: control)
        markIfInterruptedForGood(job.id, control)
    }

    /// A checkpoint the previous agent left running (its runtime process has ended by now): a complete archive of a
    /// stopped container (or a running one with `--leave-running`) goes on to the upload; anything else fails,
    /// saying whether the container runs, so the service knows whether to roll back. True to go on.
    func reconcileInterruptedCheckpoint(_ job: Job, container: String, output: String, options: CheckpointOptions) -> Bool {
        guard let report = driver.inspect(container: container) else {
            guard driver.rerunsInterruptedCheckpoint else {
                store.fail(job.id, AgentError(.interrupted, "the agent stopped while the checkpoint ran; whether the container still runs is unknown, so it is not checkpointed twice"))
                return false
            }
            try? FileManager.default.removeItem(atPath: output)
            return true
        }
        let complete = Self.isCompleteArchive(output)
        if complete && (!report.running || options.leaveRunning) {
            log("job \(job.id): the interrupted checkpoint wrote a complete archive; uploading it")
            store.update(job.id) { job in
                job.state = .uploading
                job.bytesTotal = self.fileSize(output)
                job.containerRunning = report.running
                job.end("checkpoint")
            }
            return true
        }
        store.update(job.id) { $0.containerRunning = report.running }
        store.fail(job.id, AgentError(.interrupted, "the agent stopped while the checkpoint ran; container \(container) "
            + (report.running ? "still runs" : "is \(report.status ?? "stopped")") + " and the archive is "
            + (complete ? "complete" : "incomplete")))
        return false
    }

    /// Whether a file is a whole checkpoint archive (every byte readable, with `config.dump` and `checkpoint/`).
    static func isCompleteArchive(_ path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        return (try? CheckpointReader.read(path: path)) != nil
    }

    func upload(_ id: String, file: String, labels: [String: String], control: JobControl) {
        guard FileManager.default.fileExists(atPath: file) else {
            store.fail(id, AgentError(.checkpointFailed, "the checkpoint archive is gone from the job directory"))
            return
        }
        let store = store
        store.update(id, report: false) { $0.begin("upload") }
        var attempt = 0
        while true {
            do {
                // Named by the job, so the migration's target can fetch it while it arrives (cut-through).
                let answer = try client.push(file: URL(fileURLWithPath: file), node: node, labels: labels, uploadID: id) { sent, _ in
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
                    job.end("upload")
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
}
