import Foundation

/// moto's S3 server on a free loopback port, started by a test and stopped by `stop()`: a real S3-compatible
/// server for the object-store tests. Without moto (`python3 -c 'import moto'` fails) `start` returns nil and
/// prints `S3 SKIPPED: SUITE: …` on stderr, unless `CI=true`, where a missing moto is an error.
public final class MotoServer {
    public let port: UInt16
    public let endpoint: String
    private let pid: pid_t
    private let directory: URL

    /// The credentials and region a test hands to the client or to `ferry serve` (moto accepts any).
    public static let environment = ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "ferrytestkey",
                                     "AWS_SECRET_ACCESS_KEY": "ferrytestsecret"]

    private init(port: UInt16, pid: pid_t, directory: URL) {
        self.port = port
        self.pid = pid
        self.directory = directory
        self.endpoint = "http://127.0.0.1:\(port)"
    }

    public static func start(suite: String) throws -> MotoServer? {
        let probe = try Fixtures.run("/usr/bin/env", ["python3", "-c", "import moto.server"])
        guard probe.status == 0 else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw FixtureError("moto is not installed (pip install 'moto[server]'); CI needs it for \(suite)")
            }
            FileHandle.standardError.write(Data("S3 SKIPPED: \(suite): moto is not installed (pip install 'moto[server]')\n".utf8))
            return nil
        }
        let directory = try Fixtures.temporaryDirectory()
        let port = try Fixtures.freeLoopbackPort()
        let python = try Fixtures.run("/usr/bin/env", ["sh", "-c", "command -v python3"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let pid = try Fixtures.spawn(python, ["-m", "moto.server", "-H", "127.0.0.1", "-p", "\(port)"],
                                     stdout: directory.appendingPathComponent("moto.out").path,
                                     stderr: directory.appendingPathComponent("moto.err").path)
        let server = MotoServer(port: port, pid: pid, directory: directory)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let result = try? Fixtures.run("/usr/bin/env", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                                               "\(server.endpoint)/"]),
               result.stdout.hasPrefix("200") { return server }
            usleep(100_000)
        }
        server.stop()
        throw FixtureError("moto did not answer on port \(port) within 30 s")
    }

    /// Makes a bucket (moto keeps everything in memory, so each server starts empty).
    public func createBucket(_ name: String) throws {
        let result = try Fixtures.run("/usr/bin/env", ["curl", "-sf", "-X", "PUT", "\(endpoint)/\(name)"])
        guard result.status == 0 else { throw FixtureError("cannot create bucket \(name) in moto") }
    }

    public func stop() {
        // SIGKILL: the test process may pass SIGTERM on blocked to its children, and moto keeps nothing on disk.
        kill(pid, SIGKILL)
        _ = Fixtures.wait(pid)
        try? FileManager.default.removeItem(at: directory)
    }
}
