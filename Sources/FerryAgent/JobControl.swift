import FerryClient
import Foundation

/// How the outside reaches a running job: cancel it (`DELETE`), or stop it because the agent is stopping, and
/// wait for its thread to end. The job's thread registers the process or transfer it is waiting for, so that a
/// cancel can end it at once.
final class JobControl: @unchecked Sendable {
    // @unchecked Sendable invariant: every stored property is only touched with `condition` locked.
    private let condition = NSCondition()
    private var cancelled = false
    private var abandoned = false
    private var stopping = false
    private var finished = false
    private var child: ChildProcess?
    private var transfer: TransferCancellation?

    /// Seconds between SIGTERM and SIGKILL when a cancelled job's driver does not end.
    static let killGrace: Double = 5

    var isCancelled: Bool { locked { cancelled } }
    /// The service gave the job's migration up.
    var isAbandoned: Bool { locked { abandoned } }
    /// Cancelled, abandoned, or the agent is stopping: the job's thread should return as soon as it can.
    var isInterrupted: Bool { locked { cancelled || abandoned || stopping } }

    /// The service gave the job up: ends the transfer in flight, but lets a running driver finish (a runtime
    /// killed half-way leaves a frozen or half-restored container); the job then undoes its work.
    func abandon() {
        let transfer = locked { () -> TransferCancellation? in
            abandoned = true
            condition.broadcast()
            return self.transfer
        }
        transfer?.cancel()
    }

    /// Cancels the job: ends the download in flight, and terminates the driver's process group.
    func cancel() {
        let (child, transfer) = locked { () -> (ChildProcess?, TransferCancellation?) in
            cancelled = true
            condition.broadcast()
            return (self.child, self.transfer)
        }
        transfer?.cancel()
        child?.terminate(grace: Self.killGrace)
    }

    /// The agent is stopping: ends the download in flight (it resumes at the next start) but lets a running
    /// driver finish, since killing a runtime half-way through a restore leaves a mess.
    func stop() {
        let transfer = locked { () -> TransferCancellation? in
            stopping = true
            condition.broadcast()
            return self.transfer
        }
        transfer?.cancel()
    }

    /// Registers the driver process the job waits for; false (and the process terminated) if already cancelled.
    @discardableResult
    func attach(_ process: ChildProcess?) -> Bool {
        let alreadyCancelled = locked { () -> Bool in
            child = process
            return cancelled
        }
        if alreadyCancelled, let process { process.terminate(grace: Self.killGrace) }
        return !alreadyCancelled
    }

    /// Registers the transfer the job waits for; false if the job was interrupted already (then do not start it).
    func attach(_ task: TransferCancellation?) -> Bool {
        locked {
            transfer = task
            return !(cancelled || abandoned || stopping)
        }
    }

    /// Sleeps up to `seconds`; false when interrupted meanwhile.
    func sleep(_ seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && !abandoned && !stopping {
            if !condition.wait(until: deadline) { break }
        }
        return !(cancelled || abandoned || stopping)
    }

    /// Called by the job's thread as it returns.
    func markFinished() {
        locked {
            finished = true
            condition.broadcast()
        }
    }

    /// Waits until the job's thread has returned, up to `deadline`; true if it has.
    func waitUntilFinished(deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !finished {
            if !condition.wait(until: deadline) { return finished }
        }
        return true
    }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }
}
