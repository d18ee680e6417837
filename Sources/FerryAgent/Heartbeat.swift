import FerryAPI
import FerryClient
import FerryValidation
import Foundation

/// Sends `POST /api/v1/nodes/{node}/heartbeat` at once and then every interval, on a thread of its own, until
/// stopped. A failure is logged (once per run of failures) and the next beat tried on schedule: the agent keeps
/// working while the service is down.
final class Heartbeat: @unchecked Sendable {
    // @unchecked Sendable invariant: `running` is only touched with `condition` locked; the rest is immutable.
    private let client: FerryClient
    private let node: String
    private let agentURL: String
    private let driver: String
    private let interval: Double
    private let facts: FactsCollector
    private let log: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var running = true

    init(client: FerryClient, node: String, agentURL: String, driver: String, interval: Double, facts: FactsCollector,
         log: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.node = node
        self.agentURL = agentURL
        self.driver = driver
        self.interval = interval
        self.facts = facts
        self.log = log
    }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "ferry-agent-heartbeat"
        thread.start()
    }

    /// Ends the loop; a beat in flight finishes on its own.
    func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        var failing = false
        while isRunning {
            let outcome = beat()
            if let outcome, !failing {
                log("heartbeat to \(client.server.absoluteString) failed: \(outcome); retrying every \(interval) s")
            } else if outcome == nil && failing {
                log("heartbeat to \(client.server.absoluteString) works again")
            }
            failing = outcome != nil
            condition.lock()
            let deadline = Date(timeIntervalSinceNow: interval)
            while running && condition.wait(until: deadline) {}
            condition.unlock()
        }
    }

    private var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    /// One heartbeat; nil when the service took it, else what went wrong.
    private func beat() -> String? {
        let report = facts.current(live: false)
        let body = HeartbeatRequest(name: node, agentURL: agentURL, driver: driver, facts: report.facts,
                                    runtimeVersion: report.runtimeVersion, freeDiskBytes: report.freeDiskBytes,
                                    version: AgentConfiguration.version)
        do {
            let (status, data) = try client.call("POST", "/api/v1/nodes/\(node)/heartbeat",
                                                 json: try JSONEncoder().encode(body), timeout: 10)
            if (200..<300).contains(status) { return nil }
            return FerryClient.error(status: status, body: data).description
        } catch let error as FerryClientError {
            return error.description
        } catch {
            return "\(error)"
        }
    }
}
