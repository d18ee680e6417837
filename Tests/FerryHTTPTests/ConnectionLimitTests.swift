import FerryTestSupport
import Foundation
import Glibc
import Testing
@testable import FerryHTTP

/// One client cannot exhaust the server: its idle connections stop at the per-address limit and are closed by the
/// header timeout, while requests from another address are answered at once.
@Suite("connection limits", .serialized)
struct ConnectionLimitTests {
    func router() -> Router {
        var router = Router()
        router.add("GET", "/healthz") { _, _, _ in .json(["status": "ok"]) }
        return router
    }

    /// `curl --interface 127.0.0.2`: a request from another loopback address; its status and seconds.
    func requestFromOtherAddress(_ base: String) throws -> (Int, Double) {
        let result = try Fixtures.run("/usr/bin/curl", ["-sS", "--max-time", "5", "--interface", "127.0.0.2", "-o", "/dev/null",
                                                        "-w", "%{http_code} %{time_total}", base + "/healthz"])
        let parts = result.stdout.split(separator: " ")
        return (Int(parts.first ?? "") ?? 0, Double(parts.last ?? "") ?? 99)
    }

    @Test("300 idle connections from one address leave /healthz from another answering promptly")
    func idleConnectionsFromOneAddress() throws {
        // The defaults (128 per address, 1024 in all), as `ferry serve` uses them.
        let configuration = HTTPServerConfiguration()
        try withServer(router(), configuration: configuration) { server, base in
            var idle: [RawClient] = []
            for _ in 0..<300 {
                if let client = try? RawClient(port: server.port) { idle.append(client) }
            }
            try? idle.first?.send("GET /healthz HTTP/1.1\r\nHost: x")  // a header that never ends
            var times: [Double] = []
            for _ in 0..<40 {
                let (status, seconds) = try requestFromOtherAddress(base)
                #expect(status == 200)
                times.append(seconds)
            }
            times.sort()
            let p99 = times[Int(Double(times.count - 1) * 0.99)]
            print("healthz from 127.0.0.2 beside 300 idle connections: median \(times[times.count / 2] * 1000) ms, p99 \(p99 * 1000) ms")
            #expect(p99 < 0.05, "p99 \(p99) s")
            idle.forEach { $0.close() }
        }
    }

    @Test("an idle connection, and one whose header never ends, are closed after the header timeout")
    func headerTimeoutClosesIdleConnections() throws {
        let configuration = HTTPServerConfiguration(headerTimeoutSeconds: 1, connectionTimeoutSeconds: 30)
        try withServer(router(), configuration: configuration) { server, _ in
            let silent = try RawClient(port: server.port)
            let partial = try RawClient(port: server.port)
            try partial.send("GET /healthz HTTP/1.1\r\nHost: x\r\n")
            let started = Date()
            _ = silent.readToEnd()
            _ = partial.readToEnd()
            let waited = Date().timeIntervalSince(started)
            #expect(waited < 5, "closed after \(waited) s, not the 30 s connection timeout")
        }
    }
}
