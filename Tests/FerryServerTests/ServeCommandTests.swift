import FerryServer
import FerryTestSupport
import Foundation
import Testing

/// `ferry serve` as a process: configuration from flags and environment, the loopback rule, SIGTERM.
@Suite("ferry serve")
struct ServeCommandTests {
    /// A free loopback port: bind port 0, read it back, close.
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    @Test("starts from environment variables, serves, and stops cleanly on SIGTERM")
    func sigterm() throws {
        let directory = try Fixtures.temporaryDirectory()
        let port = try Self.freePort()
        var environment = ProcessInfo.processInfo.environment
        environment["FERRY_LISTEN"] = "127.0.0.1:\(port)"
        environment["FERRY_DATA_DIR"] = directory.appendingPathComponent("data").path
        environment["FERRY_MIGRATIONS_DIR"] = Fixtures.repositoryRoot.appendingPathComponent("migrations").path
        environment["FERRY_WEB_ROOT"] = Fixtures.repositoryRoot.appendingPathComponent("web").path
        let log = directory.appendingPathComponent("log").path
        let child = try Fixtures.spawn(Fixtures.ferryBinary, ["serve"], stdout: directory.appendingPathComponent("out").path,
                                       stderr: log, environment: environment)
        var healthy = false
        for _ in 0..<100 {
            let health = try Fixtures.run("/usr/bin/curl", ["-sf", "--max-time", "2", "http://127.0.0.1:\(port)/healthz"])
            if health.status == 0 { healthy = true; break }
            usleep(100_000)
        }
        #expect(healthy, "serving on the FERRY_LISTEN port")
        let upload = try Fixtures.run("/usr/bin/curl", [
            "-sf", "--max-time", "30", "-X", "POST", "-T", Fixtures.archive("podman-counter-none.tar"),
            "http://127.0.0.1:\(port)/api/v1/checkpoints",
        ])
        #expect(upload.status == 0)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("data/catalog.sqlite").path))
        kill(child, SIGTERM)
        #expect(Fixtures.wait(child) == 0)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("ferry shutting down"))
        #expect(text.contains("ferry stopped"))
    }

    @Test("refuses a non-loopback address without tokens, and a bad tokens file")
    func refusals() throws {
        let open = try Fixtures.ferry(["serve", "--listen", "0.0.0.0:0", "--data-dir", try Fixtures.temporaryDirectory().path])
        #expect(open.status == 1)
        #expect(open.stderr.contains("refusing to listen on 0.0.0.0 without tokens"))
        let tokens = try Fixtures.write(Array("superuser short\n".utf8), name: "tokens")
        chmod(tokens, 0o600)
        let bad = try Fixtures.ferry(["serve", "--tokens", tokens, "--data-dir", try Fixtures.temporaryDirectory().path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("tokens file line 1"))

        // A tokens file others can read, and one token under two roles, are refused with a clear line.
        let readable = try Fixtures.write(Array("admin admin-token-0123456789abcdef ops\n".utf8), name: "tokens")
        chmod(readable, 0o644)
        let exposed = try Fixtures.ferry(["serve", "--tokens", readable, "--data-dir", try Fixtures.temporaryDirectory().path])
        #expect(exposed.status == 1)
        #expect(exposed.stderr.contains("readable by group or others (mode 644)"), "\(exposed.stderr)")
        let twice = try Fixtures.write(Array("read shared-token-0123456789abcdef viewer\nadmin shared-token-0123456789abcdef ops\n".utf8), name: "tokens")
        chmod(twice, 0o600)
        let duplicate = try Fixtures.ferry(["serve", "--tokens", twice, "--data-dir", try Fixtures.temporaryDirectory().path])
        #expect(duplicate.status == 1)
        #expect(duplicate.stderr.contains("tokens file line 2: the same token as line 1"), "\(duplicate.stderr)")

        // A data directory others could enter is tightened to 0700 at start-up.
        let loose = try Fixtures.temporaryDirectory().appendingPathComponent("data")
        try FileManager.default.createDirectory(at: loose, withIntermediateDirectories: true)
        chmod(loose.path, 0o777)
        let check = try Fixtures.ferry(["fsck", "--data-dir", loose.path])
        #expect(check.status == 2, "no catalog yet: \(check.stderr)")
        var configuration = ServerConfiguration()
        try configuration.setListen("127.0.0.1:0")
        configuration.dataDirectory = loose.path
        configuration.migrationsDirectory = Fixtures.repositoryRoot.appendingPathComponent("migrations").path
        configuration.webRoot = Fixtures.repositoryRoot.appendingPathComponent("web").path
        let running = try FerryServerMain.start(configuration) { _ in }
        running.stop(timeout: 2)
        let mode = (try FileManager.default.attributesOfItem(atPath: loose.path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o700, "mode \(String(mode ?? 0, radix: 8))")
        let listen = try Fixtures.ferry(["serve", "--listen", "nonsense"])
        #expect(listen.status == 1)
        #expect(listen.stderr.contains("--listen takes HOST:PORT"))
    }

    @Test("--max-connections-per-address bounds one client's connections, others still get in; bad limits are refused")
    func connectionLimits() throws {
        let directory = try Fixtures.temporaryDirectory()
        let port = try Self.freePort()
        let child = try Fixtures.spawn(Fixtures.ferryBinary, [
            "serve", "--listen", "127.0.0.1:\(port)", "--data-dir", directory.appendingPathComponent("data").path,
            "--max-connections-per-address", "3",
            "--migrations-dir", Fixtures.repositoryRoot.appendingPathComponent("migrations").path,
            "--web-root", Fixtures.repositoryRoot.appendingPathComponent("web").path,
        ], stdout: directory.appendingPathComponent("out").path, stderr: directory.appendingPathComponent("log").path)
        defer { kill(child, SIGTERM); _ = Fixtures.wait(child) }
        var healthy = false
        for _ in 0..<100 where !healthy {
            healthy = try Fixtures.run("/usr/bin/curl", ["-sf", "--max-time", "2", "http://127.0.0.1:\(port)/healthz"]).status == 0
            if !healthy { usleep(100_000) }
        }
        #expect(healthy)
        // Three idle connections from 127.0.0.1 take its share; a fourth from there, opened right after, is closed
        // unanswered (a raw socket, so no process start sits between them and the header timeout cannot interfere);
        // a request from 127.0.0.2 is answered.
        func connectLoopback() -> Int32 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            return fd
        }
        let idle = (0..<3).map { _ in connectLoopback() }
        defer { idle.forEach { close($0) } }
        let fourth = connectLoopback()
        defer { close(fourth) }
        let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fourth, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply = pollfd(fd: fourth, events: Int16(POLLIN), revents: 0)
        var answer = [UInt8](repeating: 0, count: 512)
        let ready = poll(&reply, 1, 5000)
        let got = ready > 0 ? answer.withUnsafeMutableBytes { recv(fourth, $0.baseAddress, $0.count, 0) } : -2
        #expect(got <= 0, "the fourth connection from 127.0.0.1 is closed unanswered, not answered: \(String(decoding: answer.prefix(max(got, 0)), as: UTF8.self))")
        let other = try Fixtures.run("/usr/bin/curl", ["-s", "--max-time", "3", "--interface", "127.0.0.2", "-o", "/dev/null", "-w", "%{http_code}",
                                                       "http://127.0.0.1:\(port)/healthz"])
        #expect(other.stdout == "200")

        let zero = try Fixtures.ferry(["serve", "--max-connections", "0", "--data-dir", try Fixtures.temporaryDirectory().path])
        #expect(zero.status == 1 && zero.stderr.contains("--max-connections must be positive"), "\(zero.stderr)")
        let negative = try Fixtures.ferry(["serve", "--max-connections-per-address", "-1", "--data-dir", try Fixtures.temporaryDirectory().path])
        #expect(negative.status != 0, "\(negative.stderr)")
    }
}
