import Foundation

/// A real PostgreSQL server for the tests: `FERRY_TEST_POSTGRES_URL` (a role that may create databases), or one
/// started once per test process by `scripts/postgres.sh` (Debian's postgresql, installed when missing) in
/// `.build/test-postgres`, on loopback port 55439. Each test gets a database of its own.
public enum TestPostgres {
    /// The server's URL, or the error that starting it gave (every test that needs it then fails with it).
    public static let server: Result<String, TestPostgresError> = {
        if let url = ProcessInfo.processInfo.environment["FERRY_TEST_POSTGRES_URL"], !url.isEmpty { return .success(url) }
        let script = Fixtures.repositoryRoot.appendingPathComponent("scripts/postgres.sh").path
        let directory = Fixtures.repositoryRoot.appendingPathComponent(".build/test-postgres").path
        guard let result = try? Fixtures.run("/bin/bash", [script, "start", directory, "55439"]), result.status == 0 else {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8))?.suffix(2000) ?? ""
            return .failure(TestPostgresError(message: "scripts/postgres.sh could not start PostgreSQL: \(log)"))
        }
        let url = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init) ?? ""
        return .success(url)
    }()

    /// A new, empty database owned by the server's role; returns its URL.
    public static func freshDatabase() throws -> String {
        let url = try server.get()
        let name = "ferry_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try psql(url, "CREATE DATABASE \(name)")
        guard var components = URLComponents(string: url) else { throw TestPostgresError(message: "bad URL \(url)") }
        components.path = "/" + name
        return components.string!
    }

    /// Runs SQL with psql against `url`; returns its unaligned output.
    @discardableResult
    public static func psql(_ url: String, _ sql: String) throws -> String {
        let result = try Fixtures.run("/usr/bin/env", ["psql", url, "-v", "ON_ERROR_STOP=1", "-qtA", "-c", sql])
        guard result.status == 0 else { throw TestPostgresError(message: "psql: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

public struct TestPostgresError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
