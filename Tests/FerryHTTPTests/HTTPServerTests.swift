import Foundation
import Testing
@testable import FerryHTTP

/// Every test that runs a real server: one at a time, so memory and timing measurements see only themselves
/// (the machine has two cores).
@Suite("FerryHTTP over loopback", .serialized)
struct LoopbackTests {}

private struct Greeting: Codable, Equatable {
    var message: String
    var count: Int
}

private struct SecretFailure: Error, CustomStringConvertible {
    var description: String { "database password is hunter2" }
}

extension LoopbackTests {
    @Suite("Routing and errors")
    struct RoutingOverHTTP {
        private func router(errors: Locked<[String]> = Locked([])) -> Router {
            var router = Router(errorLog: { message in errors.withValue { $0.append(message) } })
            router.add("GET", "/hello") { _, _, _ in .json(Greeting(message: "hi", count: 2)) }
            router.add("GET", "/items/{id}") { request, parameters, _ in
                .json(["id": parameters["id"] ?? "", "path": request.path, "q": request.query["q"] ?? ""])
            }
            router.add("DELETE", "/items/{id}") { _, _, _ in HTTPResponse(status: 204) }
            router.add("GET", "/teapot") { _, _, _ in
                throw HTTPError(status: 418, code: "TEAPOT", message: "I am a teapot.")
            }
            router.add("GET", "/boom") { _, _, _ in throw SecretFailure() }
            return router
        }

        @Test("A JSON GET returns the encoded value with a JSON content type")
        func jsonGet() throws {
            try withServer(router()) { _, base in
                let result = try curl([base + "/hello"])
                #expect(result.status == 200)
                #expect(result.headers["content-type"] == "application/json")
                #expect(try JSONDecoder().decode(Greeting.self, from: Data(result.body)) == Greeting(message: "hi", count: 2))
                #expect(result.headers["content-length"] == String(result.body.count))
            }
        }

        @Test("Path parameters and the query arrive percent-decoded")
        func decoding() throws {
            try withServer(router()) { _, base in
                let result = try curl([base + "/items/a%2Fb%20c?q=x+y%26z&q2=1"])
                #expect(result.status == 200)
                let object = try JSONSerialization.jsonObject(with: Data(result.body)) as? [String: String]
                #expect(object?["id"] == "a/b c")
                #expect(object?["path"] == "/items/a/b c")
                #expect(object?["q"] == "x y&z")
            }
        }

        @Test("An unknown path is a 404 whose JSON code is NOT_FOUND")
        func notFound() throws {
            try withServer(router()) { _, base in
                let result = try curl([base + "/nope"])
                #expect(result.status == 404)
                #expect(result.errorCode == "NOT_FOUND")
                #expect(result.headers["content-type"] == "application/json")
            }
        }

        @Test("A known path with another method is a 405 METHOD_NOT_ALLOWED that lists the allowed methods")
        func methodNotAllowed() throws {
            try withServer(router()) { _, base in
                let result = try curl(["-X", "PUT", base + "/items/7"])
                #expect(result.status == 405)
                #expect(result.errorCode == "METHOD_NOT_ALLOWED")
                #expect(result.headers["allow"] == "DELETE, GET, HEAD")
            }
        }

        @Test("Header fields over the configured limit get a JSON 431 REQUEST_HEADERS_TOO_LARGE")
        func headerLimit() throws {
            try withServer(router(), configuration: .init(maximumHeaderBytes: 1024)) { _, base in
                let result = try curl(["-H", "X-Filler: \(String(repeating: "a", count: 2000))", base + "/hello"])
                #expect(result.status == 431)
                #expect(result.errorCode == "REQUEST_HEADERS_TOO_LARGE")
                #expect(try curl([base + "/hello"]).status == 200)
            }
        }

        @Test("HEAD on a GET route sends the GET headers and no body")
        func headFallsBackToGet() throws {
            try withServer(router()) { server, _ in
                let client = try RawClient(port: server.port)
                try client.send("HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let reply = String(decoding: client.readToEnd(), as: UTF8.self)
                #expect(reply.hasPrefix("HTTP/1.1 200"))
                let expectedLength = try JSONEncoder().encode(Greeting(message: "hi", count: 2)).count
                #expect(reply.contains("Content-Length: \(expectedLength)\r\n"))
                #expect(reply.hasSuffix("\r\n\r\n"))
            }
        }

        @Test("A handler throwing an HTTPError sends that error's status and code")
        func thrownHTTPError() throws {
            try withServer(router()) { _, base in
                let result = try curl([base + "/teapot"])
                #expect(result.status == 418)
                #expect(result.errorCode == "TEAPOT")
                #expect(result.errorMessage == "I am a teapot.")
            }
        }

        @Test("Any other thrown error is a 500 INTERNAL_ERROR that does not leak its text")
        func unexpectedError() throws {
            let errors = Locked<[String]>([])
            try withServer(router(errors: errors)) { _, base in
                let result = try curl([base + "/boom"])
                #expect(result.status == 500)
                #expect(result.errorCode == "INTERNAL_ERROR")
                #expect(!result.text.contains("hunter2"))
                #expect(errors.current.contains { $0.contains("hunter2") }, "the server-side log keeps the detail")
            }
        }
    }

    @Suite("Connections and lifecycle")
    struct Lifecycle {
        @Test("Two requests in one curl invocation reuse the keep-alive connection")
        func keepAlive() throws {
            var router = Router()
            router.add("GET", "/a") { _, _, _ in .text("first") }
            router.add("GET", "/b") { _, _, _ in .text("second") }
            try withServer(router) { _, base in
                let result = try curl(["-v", base + "/a", base + "/b"])
                #expect(result.exitStatus == 0)
                #expect(result.status == 200)
                #expect(result.text == "firstsecond")
                #expect(result.stderr.contains("Re-using existing connection"), "curl -v said: \(result.stderr)")
            }
        }

        @Test("Sixteen parallel slow requests all succeed, and they overlap")
        func concurrency() throws {
            let active = Locked((now: 0, peak: 0))
            var router = Router()
            router.add("GET", "/slow") { _, _, _ in
                active.withValue { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                usleep(300_000)
                active.withValue { $0.now -= 1 }
                return .text("ok")
            }
            try withServer(router) { server, base in
                let started = Date()
                let processes = try (0..<16).map { _ in try CurlProcess([base + "/slow"]) }
                let results = try processes.map { try $0.wait() }
                let elapsed = Date().timeIntervalSince(started)
                #expect(results.allSatisfy { $0.status == 200 && $0.text == "ok" })
                #expect(active.current.peak > 4, "peak concurrency \(active.current.peak)")
                #expect(elapsed < 16 * 0.3, "took \(elapsed)s")
                #expect(server.statistics.successful == 16)
            }
        }

        @Test("Graceful shutdown lets an in-flight slow request finish before returning")
        func gracefulShutdown() throws {
            var router = Router()
            router.add("GET", "/slow") { _, _, _ in
                usleep(1_500_000)
                return .text("finished")
            }
            let server = HTTPServer(host: "127.0.0.1", port: 0, handler: router)
            try server.start()
            let base = "http://127.0.0.1:\(server.port)"
            let slow = try CurlProcess([base + "/slow"])
            let deadline = Date(timeIntervalSinceNow: 10)
            while server.statistics.inFlight == 0 && Date() < deadline { usleep(10_000) }
            #expect(server.statistics.inFlight == 1)
            let started = Date()
            server.shutdown(timeout: 10)
            let waited = Date().timeIntervalSince(started)
            let result = try slow.wait()
            #expect(result.status == 200)
            #expect(result.text == "finished")
            #expect(waited > 0.5 && waited < 9, "shutdown took \(waited)s")
            let after = try curl([base + "/slow"], maxTime: 5)
            #expect(after.exitStatus == 7, "new connections are refused after shutdown")
            server.shutdown(timeout: 1)  // idempotent
        }

        @Test("Shutdown that runs out of time fails a stalled upload and still returns")
        func shutdownTimeout() throws {
            let outcome = Locked<String?>(nil)
            var router = Router()
            router.add("POST", "/upload") { _, _, body in
                do {
                    while try !(body?.nextChunk().isEmpty ?? true) {}
                    outcome.withValue { $0 = "completed" }
                } catch let error as HTTPError {
                    outcome.withValue { $0 = error.code }
                }
                return .text("done")
            }
            let server = HTTPServer(host: "127.0.0.1", port: 0, handler: router)
            try server.start()
            let client = try RawClient(port: server.port)
            try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            try client.send([UInt8](repeating: 1, count: 1000))
            let deadline = Date(timeIntervalSinceNow: 10)
            while server.statistics.inFlight == 0 && Date() < deadline { usleep(10_000) }
            let started = Date()
            server.shutdown(timeout: 0.5)
            #expect(Date().timeIntervalSince(started) < 5)
            let code = outcome.wait(seconds: 5) { $0 != nil }
            #expect(code == "SERVER_SHUTTING_DOWN" || code == "CLIENT_DISCONNECTED")
        }

        @Test("A handler slower than the connection timeout still gets its response out")
        func slowHandlerOutlivesTimeout() throws {
            var router = Router()
            router.add("GET", "/slow") { _, _, _ in
                usleep(2_500_000)
                return .text("late")
            }
            router.add("POST", "/slow") { _, _, body in
                _ = try body?.readAll(maximumBytes: 1 << 20)
                usleep(2_500_000)
                return .text("late upload")
            }
            try withServer(router, configuration: .init(connectionTimeoutSeconds: 1)) { _, base in
                let get = try curl([base + "/slow"])
                #expect(get.status == 200)
                #expect(get.text == "late")
                let post = try curl(["--data-binary", "hello", base + "/slow"])
                #expect(post.status == 200)
                #expect(post.text == "late upload")
            }
        }

        @Test("Binding a port in use fails with ADDRESS_IN_USE; an unresolvable host with INVALID_ADDRESS")
        func bindFailures() throws {
            let first = HTTPServer(host: "127.0.0.1", port: 0, handler: Router())
            try first.start()
            defer { first.shutdown(timeout: 1) }
            let second = HTTPServer(host: "127.0.0.1", port: first.port, handler: Router())
            #expect(throws: HTTPServerError.self) { try second.start() }
            do {
                try second.start()
            } catch {
                #expect(error.code == .addressInUse)
            }
            let bad = HTTPServer(host: "no-such-host.invalid", port: 0, handler: Router())
            do {
                try bad.start()
                Issue.record("binding an unresolvable host succeeded")
            } catch {
                #expect(error.code == .invalidAddress)
            }
            #expect(throws: HTTPServerError.self) { try first.start() }
        }

        @Test("The server listens on an IPv6 literal and on localhost")
        func addressFamilies() throws {
            var router = Router()
            router.add("GET", "/hello") { request, _, _ in .text(request.remoteAddress ?? "?") }
            let six = HTTPServer(host: "::1", port: 0, handler: router)
            do {
                try six.start()
                defer { six.shutdown(timeout: 1) }
                let result = try curl(["-g", "http://[::1]:\(six.port)/hello"])
                #expect(result.status == 200)
                #expect(result.text == "::1")
            } catch let error as HTTPServerError where error.code == .addressNotAvailable {
                // No IPv6 loopback in this sandbox: nothing to test.
            }
            let local = HTTPServer(host: "localhost", port: 0, handler: router)
            try local.start()
            defer { local.shutdown(timeout: 1) }
            let result = try curl(["http://localhost:\(local.port)/hello"])
            #expect(result.status == 200)
        }

        @Test("The access log has method, path, status, bytes and duration, and hides tokens and Authorization")
        func accessLog() throws {
            let lines = Locked<[String]>([])
            var router = Router()
            router.add("GET", "/hello") { _, _, _ in .text("hello") }
            try withServer(router, log: { line in lines.withValue { $0.append(line) } }) { _, base in
                let result = try curl(["-H", "Authorization: Bearer sekrit-header", base + "/hello?token=sekrit-query&x=1"])
                #expect(result.status == 200)
                let logged = lines.wait(seconds: 5) { !$0.isEmpty }
                let line = try #require(logged.first)
                #expect(line.contains("GET /hello?token=REDACTED&x=1 200 5B"), "\(line)")
                #expect(line.hasSuffix("ms"))
                #expect(!line.contains("sekrit"))
            }
        }

        @Test("Statistics count requests by status class, bytes in and bytes out")
        func statistics() throws {
            var router = Router()
            router.add("GET", "/hello") { _, _, _ in .text("hello") }
            router.add("POST", "/sink") { _, _, body in
                _ = try body?.readAll(maximumBytes: 1 << 20)
                return .text("ok")
            }
            try withServer(router) { server, base in
                _ = try curl([base + "/hello"])
                _ = try curl([base + "/missing"])
                _ = try curl(["--data-binary", "0123456789", base + "/sink"])
                let deadline = Date(timeIntervalSinceNow: 5)
                while server.statistics.requests < 3 && Date() < deadline { usleep(10_000) }
                let statistics = server.statistics
                #expect(statistics.requests == 3)
                #expect(statistics.successful == 2)
                #expect(statistics.clientErrors == 1)
                #expect(statistics.bytesIn == 10)
                #expect(statistics.bytesOut >= 7)
                #expect(statistics.inFlight == 0)
            }
        }
    }
}
