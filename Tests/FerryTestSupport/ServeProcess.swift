public import Foundation

/// One real `ferry serve` process on a free loopback port, for tests of the service as it runs in production
/// (several replicas, object-store blobs, a PostgreSQL catalog). Killed by `kill()` or when released.
public final class ServeProcess {
    public let port: UInt16
    public let dataDirectory: URL
    public let log: URL
    public private(set) var pid: pid_t?
    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts `ferry serve --listen 127.0.0.1:PORT --data-dir DATA` with `arguments` and `environment` added, and
    /// waits until `/healthz` answers. Before the start, `prepare` may put files into the data directory (a
    /// provenance key shared by replicas).
    public init(arguments: [String] = [], environment extra: [String: String] = [:], dataDirectory: URL? = nil,
                port: UInt16? = nil, prepare: (URL) throws -> Void = { _ in }) throws {
        let directory = try Fixtures.temporaryDirectory()
        self.port = try port ?? Fixtures.freeLoopbackPort()
        self.dataDirectory = dataDirectory ?? directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: self.dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try prepare(self.dataDirectory)
        log = directory.appendingPathComponent("serve.log")
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        pid = try Fixtures.spawn(Fixtures.ferryBinary, [
            "serve", "--listen", "127.0.0.1:\(self.port)", "--data-dir", self.dataDirectory.path,
            "--migrations-dir", Fixtures.repositoryRoot.appendingPathComponent("migrations").path,
            "--web-root", Fixtures.repositoryRoot.appendingPathComponent("web").path,
        ] + arguments, stdout: directory.appendingPathComponent("serve.out").path, stderr: log.path, environment: environment)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            var status: Int32 = 0
            if let pid, waitpid(pid, &status, WNOHANG) == pid {
                self.pid = nil
                throw FixtureError("ferry serve exited at start:\n\(logText)")
            }
            if let health = try? Fixtures.run("/usr/bin/curl", ["-sf", "--max-time", "2", "\(url)/healthz"]), health.status == 0 {
                return
            }
            usleep(100_000)
        }
        kill()
        throw FixtureError("ferry serve did not answer /healthz within 60 s:\n\(logText)")
    }

    deinit { kill() }

    public var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Stops the process with `signal` (SIGKILL: a crash) and waits for it; returns its exit status.
    @discardableResult
    public func kill(_ signal: Int32 = SIGKILL) -> Int32? {
        guard let pid else { return nil }
        self.pid = nil
        Glibc.kill(pid, signal)
        return Fixtures.wait(pid)
    }

    /// `curl` against the process: the status and the body.
    public func curl(_ arguments: [String]) throws -> (status: Int, body: Data) {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let body = directory.appendingPathComponent("body")
        let result = try Fixtures.run("/usr/bin/curl", ["-s", "--max-time", "120", "-o", body.path, "-w", "%{http_code}"] + arguments)
        return (Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, (try? Data(contentsOf: body)) ?? Data())
    }
}
