import FerryAPI
import FerryClient
import Foundation

/// Tells the service about job changes as they happen (`POST /api/v1/nodes/{node}/jobs/{id}/report`), so a
/// migration moves on without polling, and asks it, before each irreversible step, whether the migration still
/// wants the job.
///
/// Changes are sent by one thread of its own, newest state per job only, retried until the service takes them
/// (a job thread never waits for a slow service). ``ask(_:control:)`` is synchronous: it returns the service's
/// verdict, retrying while the service is unreachable, so an agent never acts on a job the service has given up.
final class JobReporter: @unchecked Sendable {
    // @unchecked Sendable invariant: `pending`, `running` and `onAbandon` are only touched with `condition` locked.
    private let client: FerryClient
    private let node: String
    private let log: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var pending: [String: AgentJobStatus] = [:]
    private var order: [String] = []
    private var running = true
    private var onAbandon: (@Sendable (String, String?) -> Void)?

    init(client: FerryClient, node: String, log: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.node = node
        self.log = log
    }

    /// What to do when the service answers a change with `proceed: false` (job ID, reason).
    func setAbandonHandler(_ handler: @escaping @Sendable (String, String?) -> Void) {
        condition.lock()
        onAbandon = handler
        condition.unlock()
    }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "ferry-agent-reporter"
        thread.start()
    }

    func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    /// Queues a change; the newest state of a job replaces an unsent older one.
    func changed(_ status: AgentJobStatus) {
        condition.lock()
        if pending[status.id] == nil { order.append(status.id) }
        pending[status.id] = status
        condition.broadcast()
        condition.unlock()
    }

    /// The service's verdict on `status`, asked at once and retried (0.2 s, doubling to 5 s) while the service
    /// cannot be reached; nil when the job was interrupted meanwhile. A service that does not know the job (it was
    /// posted by someone else) does not object.
    func ask(_ status: AgentJobStatus, control: JobControl) -> JobVerdict? {
        var delay = 0.2
        var logged = false
        while !control.isInterrupted {
            switch send(status) {
            case .verdict(let verdict):
                if logged { log("job \(status.id): the service answers again") }
                return verdict
            case .unknownJob:
                return JobVerdict(proceed: true, reason: "the service does not know this job")
            case .failed(let message):
                if !logged {
                    log("job \(status.id): waiting for the service's word before going on: \(message)")
                    logged = true
                }
                guard control.sleep(delay) else { return nil }
                delay = min(delay * 2, 5)
            }
        }
        return nil
    }

    private enum Outcome {
        case verdict(JobVerdict)
        case unknownJob
        case failed(String)
    }

    private func send(_ status: AgentJobStatus) -> Outcome {
        do {
            let body = try JSONEncoder.wire.encode(JobReport(job: status, sentAt: WireTime.string()))
            let (code, data) = try client.call("POST", "/api/v1/nodes/\(node)/jobs/\(status.id)/report", json: body, timeout: 10)
            if code == 404 { return .unknownJob }
            guard (200..<300).contains(code) else { return .failed(FerryClient.error(status: code, body: data).description) }
            guard let verdict = try? JSONDecoder().decode(JobVerdict.self, from: data) else {
                return .failed("the service's answer is not a verdict")
            }
            return .verdict(verdict)
        } catch {
            return .failed("\(error)")
        }
    }

    private func loop() {
        var delay = 0.2
        while true {
            condition.lock()
            while running && order.isEmpty { condition.wait() }
            guard running else {
                condition.unlock()
                return
            }
            let id = order.removeFirst()
            let status = pending.removeValue(forKey: id)
            let abandon = onAbandon
            condition.unlock()
            guard let status else { continue }
            switch send(status) {
            case .verdict(let verdict):
                delay = 0.2
                if !verdict.proceed { abandon?(status.id, verdict.reason) }
            case .unknownJob:
                delay = 0.2
            case .failed:
                // Put it back unless a newer state came meanwhile, and wait before the next try.
                condition.lock()
                if pending[id] == nil {
                    pending[id] = status
                    order.append(id)
                }
                _ = condition.wait(until: Date(timeIntervalSinceNow: delay))
                condition.unlock()
                delay = min(delay * 2, 5)
            }
        }
    }
}
