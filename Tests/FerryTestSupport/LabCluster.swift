public import Foundation

/// Two Podman "nodes" on this machine, with the real `ferry serve` and one real `ferry agent --driver podman` per
/// node, for tests that move real containers with real CRIU.
///
/// Each node has a Podman store of its own (see `LabStore`) with `localhost/busybox:test` loaded, and its agent is
/// spawned with `PATH=<node>/bin:$PATH`, so the `podman` it runs is that node's wrapper. The service listens on a free
/// loopback port with a tokens file (an admin token, one node token per node) and its own data directory. Everything
/// the cluster creates is removed by `tearDown()` (also run by `deinit`), and recorded in a `LabRun` manifest first,
/// so a cluster whose test process died is cleaned up by the next one.
///
/// Containers keep the default CNI network: both stores share the `podman` bridge and its host-local address pool,
/// so a checkpoint releases the container's IP on the source and the restore takes the same IP back on the target,
/// just as on two real nodes (no `--network none` needed; `runCounter(extraArguments: ["--network", "none"])` is
/// there for tests that want no network).
///
/// Needs the runtime lab (`bash ../shared/lab/setup.sh`) and root. Skip tests loudly when it is absent:
///
/// ```swift
/// @Suite("real-runtime migrations", .serialized,
///        .enabled(if: LabCluster.isAvailable(suite: "real-runtime migrations"), "the runtime lab is not set up"))
/// ```
///
/// Not thread-safe: one test uses one cluster (suites using it should be `.serialized`).
public final class LabCluster {
    /// The two emulated nodes.
    public enum Node: String, CaseIterable, Sendable, CustomStringConvertible {
        case nodeA = "node-a"
        case nodeB = "node-b"
        public var description: String { rawValue }
    }

    /// The image every store has.
    public static let image = "localhost/busybox:test"
    /// The admin token of the tokens file (what `ferry(_:)` and `api(_:_:body:)` send).
    public static let adminToken = "lab-admin-token-0123456789abcdef"

    /// The node token of a node (`node TOKEN NAME` in the tokens file).
    public static func nodeToken(_ node: Node) -> String { "lab-\(node.rawValue)-token-0123456789abcdef" }

    /// The run: its name is part of every store path; its manifest lists what to clean up.
    public let run: LabRun
    /// Temporary files: the tokens file, the service's data directory, logs, and `scratch` for the tests.
    public let directory: URL
    /// A directory for the test's own files (exported checkpoints), removed with the cluster.
    public var scratch: URL { directory.appendingPathComponent("scratch") }
    /// Seconds without a heartbeat after which the service calls a node down (`ferry serve --node-timeout`).
    public let nodeTimeout: Double
    /// The service's loopback port (the same after `stopService` and `startService`).
    public private(set) var servicePort: UInt16 = 0
    /// `http://127.0.0.1:PORT`.
    public var serviceURL: String { "http://127.0.0.1:\(servicePort)" }

    /// Several replicas instead of one service, when given: `serviceURL` is then HAProxy in front of them.
    public let replication: LabReplication?
    private let stores: [Node: LabStore]
    private var service: pid_t?
    private var replicas: [Int: pid_t] = [:]
    private var replicaPorts: [Int: UInt16] = [:]
    private var agents: [Node: pid_t] = [:]
    private var agentPorts: [Node: UInt16] = [:]
    private var tornDown = false
    /// One cluster at a time in a test process. Every cluster's stores draw on the one host-local pool of the
    /// `podman` network, and a restore asks for its container's old address back; host-local then hands out the
    /// addresses after that one, so another cluster's new container could take an address a checkpoint had just
    /// released for its restore, which then fails ("requested IP address … is not available", seen when the three
    /// real-runtime suites ran side by side). A semaphore, not a lock: `tearDown` may run on another thread.
    private static let exclusive = DispatchSemaphore(value: 1)
    private var holdsExclusive = false

    /// Creates both stores and, unless `startProcesses` is false, starts the service and both agents and waits until
    /// both nodes are up.
    /// - Parameters:
    ///   - nodeTimeout: `--node-timeout` of the service. Heartbeats come every second, but each one first collects
    ///     the node's facts with several `podman` commands, which slow down when the machine is busy (a full
    ///     `swift test` runs the other suites alongside): the default leaves room for that.
    ///   - startProcesses: false to start the service and agents yourself (`startService()`, `startAgent(_:)`).
    ///   - replication: several `ferry serve` replicas on a shared catalog and bucket behind a load balancer.
    public init(nodeTimeout: Double = 10, startProcesses: Bool = true, replication: LabReplication? = nil) throws {
        Self.sweepOnce()
        self.nodeTimeout = nodeTimeout
        self.replication = replication
        run = try LabRun()
        directory = try Fixtures.temporaryDirectory()
        run.record("temp \(directory.path)")
        var stores: [Node: LabStore] = [:]
        for node in Node.allCases {
            let store = LabStore(run: run.name, node: node.rawValue)
            run.record("store \(node.rawValue) \(store.directory.path) \(store.runRoot.path)")
            stores[node] = store
        }
        self.stores = stores
        Self.exclusive.wait()
        holdsExclusive = true
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
            try writeTokens()
            for store in stores.values { try store.create(image: Self.image) }
            if startProcesses {
                try startService()
                for node in Node.allCases { try startAgent(node) }
                try waitForNodes()
            }
        } catch {
            tearDown()
            throw error
        }
    }

    deinit { tearDown() }

    /// The process IDs of the service and agents running now.
    public var processIDs: [pid_t] {
        [service].compactMap { $0 } + replicas.keys.sorted().compactMap { replicas[$0] } + Node.allCases.compactMap { agents[$0] }
    }

    /// A node's store (its wrapper, graph root, run root, agent work directory).
    public func store(_ node: Node) -> LabStore { stores[node]! }

    // MARK: Processes

    /// Starts `ferry serve` on the cluster's port and waits until `/healthz` answers. With `replication`: every
    /// replica, then HAProxy on the cluster's port in front of them.
    public func startService() throws {
        if servicePort == 0 { servicePort = try Fixtures.freeLoopbackPort() }
        if let replication {
            for index in 0..<replication.count { try startReplica(index) }
            let pid = try Fixtures.spawn("/usr/sbin/haproxy", ["-db", "-f", try writeHAProxyConfiguration(replication).path],
                                         stdout: logDirectory.appendingPathComponent("haproxy.out").path, stderr: nextLog("haproxy"))
            service = pid
            run.record("process \(pid)")
            try Self.waitUntil("the replicas answer /healthz through HAProxy", timeout: 30) {
                guard LabProcesses.isAlive(pid) else { throw LabGaveUp("haproxy exited:\n\(logTail("haproxy"))") }
                return try api("GET", "/healthz").status == 200
            }
            return
        }
        let pid = try Fixtures.spawn(Fixtures.ferryBinary, [
            "serve", "--listen", "127.0.0.1:\(servicePort)", "--data-dir", directory.appendingPathComponent("service").path,
            "--tokens", tokensFile.path, "--node-timeout", String(nodeTimeout),
            "--migrations-dir", Fixtures.repositoryRoot.appendingPathComponent("migrations").path,
            "--web-root", Fixtures.repositoryRoot.appendingPathComponent("web").path,
        ], stdout: logDirectory.appendingPathComponent("service.out").path, stderr: nextLog("service"))
        service = pid
        run.record("process \(pid)")
        try Self.waitUntil("the service answers /healthz", timeout: 30) {
            guard LabProcesses.isAlive(pid) else { throw LabGaveUp("ferry serve exited:\n\(logTail("service"))") }
            return try api("GET", "/healthz").status == 200
        }
    }

    /// Starts replica `index` (its own data directory and port, the same after a restart) and waits until it answers.
    /// Replicas after the first get the first one's provenance key, as an operator copies it to every replica.
    public func startReplica(_ index: Int) throws {
        guard let replication else { throw FixtureError("the cluster has no replicas") }
        let port = try replicaPorts[index] ?? Fixtures.freeLoopbackPort()
        replicaPorts[index] = port
        let data = directory.appendingPathComponent("service-\(index)")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = directory.appendingPathComponent("service-0/provenance-key")
        if index > 0, !FileManager.default.fileExists(atPath: data.appendingPathComponent("provenance-key").path) {
            try FileManager.default.copyItem(at: key, to: data.appendingPathComponent("provenance-key"))
        }
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in replication.environment { environment[name] = value }
        let pid = try Fixtures.spawn(Fixtures.ferryBinary, [
            "serve", "--listen", "127.0.0.1:\(port)", "--data-dir", data.path, "--catalog", replication.catalogURL,
            "--tokens", tokensFile.path, "--node-timeout", String(nodeTimeout), "--registry-host", "127.0.0.1:\(servicePort)",
            "--migrations-dir", Fixtures.repositoryRoot.appendingPathComponent("migrations").path,
            "--web-root", Fixtures.repositoryRoot.appendingPathComponent("web").path,
        ] + replication.arguments, stdout: logDirectory.appendingPathComponent("replica-\(index).out").path,
           stderr: nextLog("replica-\(index)"), environment: environment)
        replicas[index] = pid
        run.record("process \(pid)")
        try Self.waitUntil("replica \(index) answers /healthz", timeout: 30) {
            guard LabProcesses.isAlive(pid) else { throw LabGaveUp("replica \(index) exited:\n\(logTail("replica-\(index)"))") }
            return (try? Fixtures.run("/usr/bin/curl", ["-sf", "--max-time", "2", "\(replicaURL(index))/healthz"]))?.status == 0
        }
    }

    /// Stops replica `index`; SIGKILL (a crash) unless told otherwise. Returns its exit status.
    @discardableResult
    public func stopReplica(_ index: Int, signal: Int32 = SIGKILL) -> Int32? {
        guard let pid = replicas.removeValue(forKey: index) else { return nil }
        return LabProcesses.stop(pid, signal: signal)
    }

    /// `http://127.0.0.1:PORT` of replica `index`, bypassing the load balancer.
    public func replicaURL(_ index: Int) -> String { "http://127.0.0.1:\(replicaPorts[index] ?? 0)" }

    /// The process ID of replica `index`, while it runs.
    public func replicaPID(_ index: Int) -> pid_t? { replicas[index] }

    /// Sends `signal` to a node's agent (SIGSTOP and SIGCONT: a node cut off for a while, and back).
    public func signalAgent(_ node: Node, _ signal: Int32) {
        if let pid = agents[node] { kill(pid, signal) }
    }

    /// Stops the service; SIGKILL (a crash) unless told otherwise. Returns its exit status (nil if it was not running).
    @discardableResult
    public func stopService(signal: Int32 = SIGKILL) -> Int32? {
        guard let pid = service else { return nil }
        service = nil
        return LabProcesses.stop(pid, signal: signal)
    }

    /// Starts `ferry agent --driver podman` for a node, with the node's wrapper first on `PATH`, its own work
    /// directory and a heartbeat every second. Does not wait for it to register: see `waitForNodes`.
    public func startAgent(_ node: Node, extraArguments: [String] = []) throws {
        let port = try agentPorts[node] ?? Fixtures.freeLoopbackPort()
        agentPorts[node] = port
        let store = store(node)
        var environment = ProcessInfo.processInfo.environment
        // The wrapper first; criu and runc are in the sbin directories, which a test runner's PATH may lack.
        let path = environment["PATH"] ?? "/usr/bin:/bin"
        environment["PATH"] = ([store.binDirectory.path, path] + ["/usr/local/sbin", "/usr/sbin", "/sbin"]).joined(separator: ":")
        let pid = try Fixtures.spawn(Fixtures.ferryBinary, [
            "agent", "--server", serviceURL, "--node", node.rawValue, "--token", Self.nodeToken(node),
            "--listen", "127.0.0.1:\(port)", "--driver", "podman", "--work-dir", store.agentWorkDirectory.path,
            "--heartbeat", "1",
        ] + extraArguments, stdout: logDirectory.appendingPathComponent("\(node).out").path,
           stderr: nextLog(node.rawValue), environment: environment)
        agents[node] = pid
        run.record("process \(pid)")
    }

    /// Stops a node's agent; SIGKILL (a crash) unless told otherwise. Returns its exit status (nil if not running).
    @discardableResult
    public func stopAgent(_ node: Node, signal: Int32 = SIGKILL) -> Int32? {
        guard let pid = agents.removeValue(forKey: node) else { return nil }
        return LabProcesses.stop(pid, signal: signal)
    }

    /// Waits until the service reports each node as up (or, with `up: false`, as down).
    public func waitForNodes(_ nodes: [Node] = Node.allCases, up: Bool = true, timeout: Double = 60) throws {
        try Self.waitUntil("\(nodes) \(up ? "up" : "down")", timeout: timeout) {
            for (node, pid) in agents where nodes.contains(node) && up && !LabProcesses.isAlive(pid) {
                throw LabGaveUp("the agent of \(node) exited:\n\(logTail(node.rawValue))")
            }
            let items = (try api("GET", "/api/v1/nodes").json["items"] as? [[String: Any]]) ?? []
            return nodes.allSatisfy { node in
                items.contains { $0["name"] as? String == node.rawValue && ($0["up"] as? Bool) == up }
            }
        }
    }

    // MARK: The CLI and the API

    /// Runs `ferry SUBCOMMAND --server URL --token ADMIN ARGUMENTS…` (the subcommand must be a client command:
    /// `push`, `ls`, `get`, `rm`, `migrate`, `nodes`).
    public func ferry(_ arguments: String...) throws -> ProcessResult {
        try ferry(arguments: arguments)
    }

    /// `ferry(_:)` with an array.
    public func ferry(arguments: [String]) throws -> ProcessResult {
        guard let subcommand = arguments.first else { throw FixtureError("ferry needs a subcommand") }
        return try Fixtures.ferry([subcommand, "--server", serviceURL, "--token", Self.adminToken] + arguments.dropFirst())
    }

    /// One request to the service with the admin token (curl, body through a file).
    /// - Parameter body: JSON text, sent with `Content-Type: application/json`.
    ///   - base: another address than `serviceURL` (one replica's).
    public func api(_ method: String, _ path: String, body: String? = nil, base: String? = nil) throws -> LabResponse {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("body")
        var arguments = ["-sS", "--max-time", "20", "-X", method, "-o", out.path, "-w", "%{http_code}",
                         "-H", "Authorization: Bearer \(Self.adminToken)"]
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let result = try Fixtures.run("/usr/bin/curl", arguments + [(base ?? serviceURL) + path])
        guard result.status == 0, let status = Int(result.stdout) else {
            throw FixtureError("curl \(method) \(path) failed: \(result.stderr)")
        }
        return LabResponse(status: status, body: (try? Data(contentsOf: out)) ?? Data())
    }

    /// One request to a node's agent API with that node's token.
    public func agentAPI(_ node: Node, _ method: String, _ path: String) throws -> LabResponse {
        guard let port = agentPorts[node] else { throw FixtureError("\(node) has no agent") }
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("body")
        let result = try Fixtures.run("/usr/bin/curl", ["-sS", "--max-time", "20", "-X", method, "-o", out.path, "-w", "%{http_code}",
                                                        "-H", "Authorization: Bearer \(Self.nodeToken(node))", "http://127.0.0.1:\(port)\(path)"])
        guard result.status == 0, let status = Int(result.stdout) else {
            throw FixtureError("curl \(method) \(path) on \(node)'s agent failed: \(result.stderr)")
        }
        return LabResponse(status: status, body: (try? Data(contentsOf: out)) ?? Data())
    }

    /// `GET /api/v1/migrations/ID` (with its events).
    public func migration(_ id: String) throws -> [String: Any] {
        let response = try api("GET", "/api/v1/migrations/\(id)")
        guard response.status == 200 else { throw FixtureError("GET migration \(id): \(response.status) \(response.text)") }
        return response.json
    }

    /// Waits until a migration is `succeeded`, `failed` or `cancelled`, and returns it.
    public func waitForMigration(_ id: String, timeout: Double = 120) throws -> [String: Any] {
        try Self.waitFor("migration \(id) to finish", timeout: timeout) {
            let migration = try migration(id)
            return ["succeeded", "failed", "cancelled"].contains(migration["state"] as? String ?? "") ? migration : nil
        }
    }

    // MARK: Diagnostics

    /// What to attach to a failed expectation: each node's containers and the end of every log.
    public func diagnostics() -> String {
        var text = ""
        for node in Node.allCases {
            let containers = allContainers(node: node).map { "\($0.name) \($0.state)" }
            text += "\(node) containers: \(containers)\n"
        }
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: logDirectory.path)) ?? []).sorted()
        for log in logs where log.hasSuffix(".log") {
            text += "--- \(log)\n" + Self.tail(of: logDirectory.appendingPathComponent(log).path) + "\n"
        }
        return text
    }

    // MARK: Teardown

    /// Kills the agents and the service, destroys both stores (containers, images, mounts, directories) and removes
    /// the temporary and run directories. Idempotent. Returns what could not be removed, after printing it.
    /// `FERRY_LAB_KEEP_LOGS=1` keeps the logs (their path is printed).
    @discardableResult
    public func tearDown() -> [String] {
        guard !tornDown else { return [] }
        tornDown = true
        for node in Node.allCases {
            signalAgent(node, SIGCONT)
            stopAgent(node)
        }
        stopService()
        for index in replicas.keys.sorted() { stopReplica(index) }
        var leftovers: [String] = []
        for store in stores.values { leftovers += store.destroy() }
        if ProcessInfo.processInfo.environment["FERRY_LAB_KEEP_LOGS"] == "1" {
            FileHandle.standardError.write(Data("LAB: logs kept in \(logDirectory.path)\n".utf8))
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("service"))
        } else {
            try? FileManager.default.removeItem(at: directory)
        }
        run.remove()
        for problem in leftovers { FileHandle.standardError.write(Data("LAB TEARDOWN: \(problem)\n".utf8)) }
        if holdsExclusive {
            holdsExclusive = false
            Self.exclusive.signal()
        }
        return leftovers
    }

    // MARK: Private

    private var tokensFile: URL { directory.appendingPathComponent("tokens") }
    private var logDirectory: URL { directory.appendingPathComponent("logs") }

    private func writeTokens() throws {
        var lines = ["admin \(Self.adminToken) lab-operator"]
        for node in Node.allCases { lines.append("node \(Self.nodeToken(node)) \(node.rawValue)") }
        try (lines.joined(separator: "\n") + "\n").write(to: tokensFile, atomically: true, encoding: .utf8)
        chmod(tokensFile.path, 0o600)  // ferry serve refuses a tokens file others can read
    }

    /// HAProxy in HTTP mode: round robin over the replicas that pass `/healthz` (checked every 250 ms), a request
    /// whose connection is refused retried on another, as production load balancers are set up.
    private func writeHAProxyConfiguration(_ replication: LabReplication) throws -> URL {
        var lines = [
            "global", "  maxconn 2000",
            "defaults", "  mode http", "  timeout connect 500ms", "  timeout client 10m", "  timeout server 10m",
            "  timeout http-keep-alive 5s", "  retries 3", "  option redispatch",
            "frontend ferry", "  bind 127.0.0.1:\(servicePort)", "  default_backend replicas",
            "backend replicas", "  balance roundrobin", "  option httpchk GET /healthz", "  http-check expect status 200",
        ]
        for index in 0..<replication.count {
            lines.append("  server replica-\(index) 127.0.0.1:\(replicaPorts[index] ?? 0) check inter 250ms fall 1 rise 2")
        }
        let file = directory.appendingPathComponent("haproxy.cfg")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// A new log file per start (`service-1.log`, `service-2.log`, …), so a restart keeps the earlier log.
    private func nextLog(_ name: String) -> String {
        var number = 1
        while FileManager.default.fileExists(atPath: logDirectory.appendingPathComponent("\(name)-\(number).log").path) {
            number += 1
        }
        return logDirectory.appendingPathComponent("\(name)-\(number).log").path
    }

    private func logTail(_ name: String) -> String {
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: logDirectory.path)) ?? [])
            .filter { $0.hasPrefix(name + "-") && $0.hasSuffix(".log") }.sorted()
        return logs.last.map { Self.tail(of: logDirectory.appendingPathComponent($0).path) } ?? "(no log)"
    }

    private static func tail(of path: String, lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Abandoned runs are swept once per test process, before its first cluster.
    private static let sweep: Void = LabRun.sweepAbandoned()
    private static func sweepOnce() { _ = sweep }
}

/// Several `ferry serve` replicas on one catalog and one object store, behind HAProxy (`LabCluster(replication:)`).
public struct LabReplication: Sendable {
    public var count: Int
    /// `postgres://…` shared by the replicas.
    public var catalogURL: String
    /// More `ferry serve` arguments for every replica: `--blobs s3://…`, `--s3-endpoint`, `--migration-lease`.
    public var arguments: [String]
    /// Added to every replica's environment (the object store's credentials).
    public var environment: [String: String]

    public init(count: Int, catalogURL: String, arguments: [String], environment: [String: String]) {
        self.count = count
        self.catalogURL = catalogURL
        self.arguments = arguments
        self.environment = environment
    }
}

/// What the service answered.
public struct LabResponse: Sendable {
    public let status: Int
    public let body: Data
    /// The body as a JSON object (empty when it is not one).
    public var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
    public var text: String { String(decoding: body, as: UTF8.self) }
}
