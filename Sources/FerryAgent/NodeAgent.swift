import FerryClient
import FerryHTTP
import FerryValidation
import Foundation

/// The per-node agent: serves the agent API, reports to the service with heartbeats, and runs restore and
/// checkpoint jobs with the configured runtime driver.
///
/// In-process use (tests, embedding): `let agent = try NodeAgent.start(configuration, log: …)`; read
/// `agent.port` / `agent.agentURL`; `agent.stop()` when done. `ferry agent` calls ``run(_:log:)``, which does the
/// same until SIGTERM or SIGINT.
public final class NodeAgent: Sendable {
    public let configuration: AgentConfiguration
    private let server: HTTPServer
    private let store: JobStore
    private let heartbeat: Heartbeat
    private let reporter: JobReporter
    private let facts: FactsCollector
    private let collector: CheckpointCollector?
    private let prefetcher: Prefetcher?
    private let lock: WorkDirectoryLock
    private let log: @Sendable (String) -> Void
    /// The URL the service is told to call the agent at.
    public let agentURL: String

    /// The port the API listens on (the kernel's choice when 0 was asked for).
    public var port: UInt16 { server.port }

    private init(configuration: AgentConfiguration, server: HTTPServer, store: JobStore, heartbeat: Heartbeat,
                 reporter: JobReporter, facts: FactsCollector, collector: CheckpointCollector?, prefetcher: Prefetcher?,
                 lock: WorkDirectoryLock, agentURL: String, log: @escaping @Sendable (String) -> Void) {
        self.prefetcher = prefetcher
        self.facts = facts
        self.collector = collector
        self.configuration = configuration
        self.server = server
        self.store = store
        self.heartbeat = heartbeat
        self.reporter = reporter
        self.lock = lock
        self.agentURL = agentURL
        self.log = log
    }

    /// Checks the configuration, opens the work directory (one agent at a time), starts listening, resumes the
    /// jobs an earlier run left unfinished, and sends the first heartbeat. Returns once the API listens.
    /// - Throws: ``AgentConfigurationError`` for a bad configuration or facts file, `HTTPServerError` when the
    ///   address cannot be bound, ``AgentError`` when the work directory cannot be used.
    public static func start(_ configuration: AgentConfiguration, log: @escaping @Sendable (String) -> Void) throws -> NodeAgent {
        try configuration.validate()
        var declared: TargetFacts?
        if let file = configuration.factsFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw AgentConfigurationError("cannot read the facts file \(file)")
            }
            do {
                declared = try JSONDecoder().decode(TargetFacts.self, from: data)
            } catch {
                throw AgentConfigurationError("the facts file \(file) is not TargetFacts JSON (snake_case keys): \(error)")
            }
        }
        try JobStore.makePrivateDirectory(configuration.workDirectory)
        let lock = try WorkDirectoryLock(configuration.workDirectory)
        let store = try JobStore(directory: configuration.workDirectory + "/jobs", log: log)
        let client = FerryClient(server: configuration.server, token: configuration.token)
        let facts = FactsCollector(driver: configuration.driver, workDirectory: configuration.workDirectory, declared: declared)
        let reporter = JobReporter(client: client, node: configuration.node, log: log)
        // A throttled agent paces its downloads; a prefetch would not be, so it has none.
        let prefetcher = configuration.maximumDownloadRate == nil
            ? try Prefetcher(client: client, directory: configuration.workDirectory + "/prefetch", log: log) : nil
        let provenance = try ProvenanceTrust(client: client, workDirectory: configuration.workDirectory,
                                             keyFile: configuration.provenanceKeyFile, log: log)
        let runner = JobRunner(store: store, driver: configuration.driver, client: client, token: configuration.token,
                               maximumDownloadRate: configuration.maximumDownloadRate, reporter: reporter,
                               node: configuration.node, provenance: provenance, prefetcher: prefetcher, log: log)
        store.setChangeHandler { job in reporter.changed(job.status) }
        reporter.setAbandonHandler { id, reason in runner.abandon(id, reason: reason) }
        reporter.start()
        let api = AgentAPI(token: configuration.token, store: store, runner: runner, driver: configuration.driver,
                           facts: facts, prefetcher: prefetcher, log: log)
        let server = HTTPServer(host: configuration.host, port: configuration.port, handler: api, log: log)
        try server.start()
        let agentURL = configuration.agentURL(port: server.port)
        let heartbeat = Heartbeat(client: client, node: configuration.node, agentURL: agentURL,
                                  driver: configuration.driver.name, interval: configuration.heartbeatInterval,
                                  facts: facts, log: log)
        facts.startWatching()
        let unfinished = store.unfinished()
        for job in unfinished { runner.start(job.id, resumed: true) }
        heartbeat.start()
        let collector = configuration.collectDirectory.map { directory in
            CheckpointCollector(directory: directory, workDirectory: configuration.workDirectory, client: client,
                                node: configuration.node, afterUpload: CheckpointCollector.AfterUpload(rawValue: configuration.afterUpload) ?? .keep,
                                log: log)
        }
        collector?.start()
        log("ferry agent \(configuration.node) serving on \(configuration.host):\(server.port) as \(agentURL), "
            + "driver \(configuration.driver.name), work directory \(configuration.workDirectory), "
            + "\(unfinished.count) job(s) resumed, reporting to \(configuration.server.absoluteString)"
            + (configuration.token == nil ? ", no token (loopback only)" : ""))
        return NodeAgent(configuration: configuration, server: server, store: store, heartbeat: heartbeat,
                         reporter: reporter, facts: facts, collector: collector, prefetcher: prefetcher, lock: lock,
                         agentURL: agentURL, log: log)
    }

    /// Stops accepting requests and heartbeating, interrupts downloads (they resume at the next start), gives a
    /// running driver up to `timeout` seconds to finish, and stops writing job files. Jobs whose driver is still
    /// running then are resumed by the next start as ``JobRunner`` describes. Idempotent.
    public func stop(timeout: Double = 10) {
        heartbeat.stop()
        collector?.stop()
        facts.stopWatching()
        server.shutdown(timeout: min(timeout, 5))
        prefetcher?.stopAll()
        let jobs = store.unfinished().compactMap { store.control($0.id) }
        jobs.forEach { $0.stop() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        let finished = jobs.filter { $0.waitUntilFinished(deadline: deadline) }.count
        if finished < jobs.count {
            log("\(jobs.count - finished) job(s) still running a driver; they are resumed at the next start")
        }
        store.close()
        reporter.stop()
        lock.release()
    }

    /// Runs the agent until SIGTERM or SIGINT, then stops it (see ``stop(timeout:)``).
    public static func run(_ configuration: AgentConfiguration, log: @escaping @Sendable (String) -> Void) throws {
        let signals = TerminationSignals()
        let agent = try start(configuration, log: log)
        signals.wait()
        log("ferry agent stopping")
        agent.stop(timeout: 30)
        log("ferry agent stopped")
    }
}

/// An exclusive `flock` on `WORK_DIR/agent.lock`, so two agents never run the same jobs. Held until `release()`
/// or the process ends (the kernel drops it with the descriptor, also on SIGKILL).
final class WorkDirectoryLock: @unchecked Sendable {
    // @unchecked Sendable invariant: `fd` is only touched with `lock` held.
    private let lock = NSLock()
    private var fd: Int32

    init(_ directory: String) throws(AgentError) {
        let path = directory + "/agent.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError(.fileError, "cannot open \(path)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw AgentError(.fileError, "another agent is using the work directory \(directory)")
        }
    }

    deinit {
        release()
    }

    func release() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }
}
