import FerryServer
import FerryTestSupport
import Foundation
import Testing

/// A real Ferry service on a loopback port with its own data directory, driven over HTTP with curl.
final class TestServer: @unchecked Sendable {
    let running: FerryServerMain.Running
    let dataDirectory: URL
    let base: String
    private let logLock = NSLock()
    private var logLines: [String] = []

    static let readToken = "read-token-0123456789abcdef"
    static let writeToken = "write-token-0123456789abcdef"
    static let adminToken = "admin-token-0123456789abcdef"
    static let nodeToken = "node-a-token-0123456789abcdef"

    /// Starts a service. `tokens` writes a tokens file with a read, a write and an admin token.
    /// `reusing` starts it on an earlier server's directory (a restart).
    /// `retention` is a policy file; its timer then waits `retentionInterval` seconds.
    /// `encryptionKey` is a key file (`ferry keygen`): blobs are then sealed, in `encryptionChunkSize`-byte chunks.
    init(tokens: Bool = false, maximumUploadSize: Int64 = 1 << 30, reusing: URL? = nil, minimumFreeBytes: Int64? = nil,
         retention: String? = nil, retentionInterval: Double = 3600, encryptionKey: String? = nil,
         encryptionChunkSize: Int? = nil) throws {
        dataDirectory = try reusing ?? Fixtures.temporaryDirectory()
        var configuration = ServerConfiguration()
        try configuration.setListen("127.0.0.1:0")
        configuration.dataDirectory = dataDirectory.appendingPathComponent("data").path
        configuration.maximumUploadSize = maximumUploadSize
        if let minimumFreeBytes { configuration.minimumFreeBytes = minimumFreeBytes }
        configuration.retentionFile = retention
        configuration.retentionInterval = retentionInterval
        configuration.encryptionKeyFile = encryptionKey
        if let encryptionChunkSize { configuration.encryptionChunkSize = encryptionChunkSize }
        configuration.migrationsDirectory = Fixtures.repositoryRoot.appendingPathComponent("migrations").path
        configuration.webRoot = Fixtures.repositoryRoot.appendingPathComponent("web").path
        if tokens {
            let file = dataDirectory.appendingPathComponent("tokens")
            try """
                # role token name
                read \(Self.readToken) viewer
                write \(Self.writeToken) ci
                admin \(Self.adminToken) operator
                node \(Self.nodeToken) node-a
                """.write(to: file, atomically: true, encoding: .utf8)
            chmod(file.path, 0o600)
            configuration.tokensFile = file.path
        }
        let lines = LogSink()
        running = try FerryServerMain.start(configuration) { line in lines.append(line) }
        base = "http://127.0.0.1:\(running.port)"
        logSink = lines
    }

    private let logSink: LogSink
    var log: [String] { logSink.lines }

    deinit { running.stop(timeout: 5) }

    var blobsDirectory: URL { dataDirectory.appendingPathComponent("data/blobs/sha256") }
    var temporaryDirectory: URL { dataDirectory.appendingPathComponent("data/tmp") }

    /// Every stored blob file.
    func blobFiles() throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: blobsDirectory.path) else { return [] }
        return enumerator.compactMap { $0 as? String }.filter { $0.count > 3 }
    }

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    /// One request with curl. `upload` sends a file as the body.
    func request(_ method: String, _ path: String, token: String? = nil, upload: String? = nil,
                 headers: [String] = [], extra: [String] = [], output: String? = nil) throws -> Response {
        let scratch = try Fixtures.temporaryDirectory()
        let bodyFile = output ?? scratch.appendingPathComponent("body").path
        let headerFile = scratch.appendingPathComponent("headers").path
        var arguments = ["-sS", "--max-time", "60", "-X", method, "-o", bodyFile, "-D", headerFile, "-w", "%{http_code}"]
        // curl -I writes the headers where the body would go; they are read from the -D file instead.
        if method == "HEAD" { arguments = ["-sS", "--max-time", "60", "-I", "-o", "/dev/null", "-D", headerFile, "-w", "%{http_code}"] }
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        if let upload {
            arguments += ["--data-binary", "@\(upload)"]
            if !headers.contains(where: { $0.lowercased().hasPrefix("content-type:") }) {
                arguments += ["-H", "Content-Type: application/octet-stream"]
            }
        }
        for header in headers { arguments += ["-H", header] }
        arguments += extra
        arguments.append(base + path)
        let result = try Fixtures.run("/usr/bin/curl", arguments)
        defer { try? FileManager.default.removeItem(at: scratch) }
        guard result.status == 0, let status = Int(result.stdout) else {
            throw FixtureError("curl \(method) \(path) failed: \(result.stderr)")
        }
        var parsed: [String: String] = [:]
        let headerText = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        for line in headerText.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            parsed[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = output == nil ? (try? Data(contentsOf: URL(fileURLWithPath: bodyFile))) ?? Data() : Data()
        return Response(status: status, headers: parsed, body: body)
    }

    /// Signs in on the web page with `token`; returns the `Cookie:` header the browser would send.
    func signIn(_ token: String) throws -> String {
        let login = try request("POST", "/login", extra: ["--data", "token=\(token)"])
        guard login.status == 303, let cookie = login.headers["set-cookie"]?.split(separator: ";").first else {
            throw FixtureError("sign-in failed: \(login.status)")
        }
        return "Cookie: \(cookie)"
    }

    /// Uploads an archive file; returns the response.
    func upload(_ path: String, token: String? = nil, query: String = "") throws -> Response {
        try request("POST", "/api/v1/checkpoints" + query, token: token, upload: path)
    }
}

/// Collects log lines from the service's threads.
final class LogSink: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) {
        lock.lock()
        stored.append(line)
        lock.unlock()
    }
    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

/// SHA-256 of a file as lowercase hex, with the openssl command.
func sha256(ofFile path: String) throws -> String {
    let result = try Fixtures.run("/usr/bin/openssl", ["dgst", "-sha256", "-r", path])
    return String(result.stdout.prefix(64))
}

extension TestServer {
    /// Opens a raw TCP connection, sends a POST that announces `announced` bytes, sends `bytes`, and hangs up:
    /// a client that disconnects half-way through an upload.
    func abortedUpload(announced: Int, sending bytes: [UInt8]) throws {
        let upload = try PacedUpload(port: running.port, total: announced, headers: [])
        try upload.send(bytes[...])
        usleep(200_000)  // let the server take the bytes in before the connection drops
    }

    /// Waits up to `seconds` for `condition`.
    func eventually(_ seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }
}
