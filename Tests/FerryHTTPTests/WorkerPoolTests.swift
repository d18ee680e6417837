import FerryTestSupport
import Foundation
import Glibc
import Testing
@testable import FerryHTTP

/// The connection model: libmicrohttpd's epoll worker pool reads every connection, handlers that may block run on
/// threads of their own while their connection is suspended, and only handlers marked inline run on a worker.
@Suite("worker pool", .serialized)
struct WorkerPoolTests {
    /// Threads of this (the test) process now.
    func threadCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }

    @Test("1000 open connections cost no thread each: the process's thread count stays flat")
    func idleConnectionsCostNoThreads() throws {
        var router = Router()
        router.add("GET", "/healthz", inline: true) { _, _, _ in .json(["status": "ok"]) }
        let configuration = HTTPServerConfiguration(maximumConnections: 2048, maximumConnectionsPerIP: 0, workerThreads: 2)
        try withServer(router, configuration: configuration) { server, base in
            let before = threadCount()
            var idle: [RawClient] = []
            for index in 0..<1000 {
                let client = try RawClient(port: server.port)
                // Half of them slowloris: a header that never ends.
                if index % 2 == 0 { try client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n") }
                idle.append(client)
            }
            // Every connection is accepted and read (a request on top of them is answered).
            let answer = try curl([base + "/healthz"], maxTime: 5)
            #expect(answer.status == 200)
            let during = threadCount()
            print("threads: \(before) before, \(during) with 1000 connections open")
            // Thread-per-connection would add 1000; the pool adds none per connection.
            #expect(during - before < 20, "\(during - before) threads more with 1000 connections open")
            idle.forEach { $0.close() }
        }
    }

    @Test("A handler that blocks runs on a thread of its own: 40 slow requests on one worker finish together, and inline ones answer meanwhile")
    func blockingHandlersDoNotHoldTheWorker() throws {
        let handlerThreads = Locked<Set<String>>([])
        var router = Router()
        router.add("GET", "/slow") { _, _, _ in
            handlerThreads.withValue { _ = $0.insert(currentThreadName()) }
            Thread.sleep(forTimeInterval: 1)
            return .json(["slept": "1"])
        }
        router.add("GET", "/healthz", inline: true) { _, _, _ in .json(["status": "ok"]) }
        // One worker thread: if the slow handler ran on it, 40 requests would take 40 s and /healthz would wait.
        let configuration = HTTPServerConfiguration(workerThreads: 1)
        try withServer(router, configuration: configuration) { _, base in
            let started = Date()
            let slow = try (0..<40).map { _ in try CurlProcess([base + "/slow"], maxTime: 20) }
            Thread.sleep(forTimeInterval: 0.3)
            var healthTimes: [Double] = []
            for _ in 0..<10 {
                let before = Date()
                let answer = try curl([base + "/healthz"], maxTime: 5)
                #expect(answer.status == 200)
                healthTimes.append(Date().timeIntervalSince(before))
            }
            let results = try slow.map { try $0.wait() }
            let elapsed = Date().timeIntervalSince(started)
            #expect(results.allSatisfy { $0.status == 200 }, "\(results.map(\.status))")
            #expect(elapsed < 6, "40 one-second handlers took \(elapsed) s on one worker")
            // curl's own start-up is most of this; a /healthz queued behind a slow handler would take ≥ 1 s.
            #expect(healthTimes.max() ?? 99 < 0.5, "/healthz beside 40 slow handlers: \(healthTimes)")
            #expect(handlerThreads.current == ["ferry-handler"], "\(handlerThreads.current)")
        }
    }

    @Test("An inline handler runs on libmicrohttpd's worker, a blocking one (and a body's) on its own thread")
    func placementFollowsTheRoute() throws {
        let names = Locked<[String: String]>([:])
        var router = Router()
        router.add("GET", "/inline", inline: true) { _, _, _ in
            names.withValue { $0["inline"] = currentThreadName() }
            return .json(["ok": "1"])
        }
        router.add("GET", "/blocking") { _, _, _ in
            names.withValue { $0["blocking"] = currentThreadName() }
            return .json(["ok": "1"])
        }
        router.add("POST", "/body", inline: true) { _, _, body in
            _ = try body?.readAll(maximumBytes: 1024)
            names.withValue { $0["body"] = currentThreadName() }
            return .json(["ok": "1"])
        }
        try withServer(router) { _, base throws in
            let statuses = try [curl([base + "/inline"]), curl([base + "/blocking"]),
                                curl(["--data-binary", "hello", base + "/body"])].map(\.status)
            #expect(statuses == [200, 200, 200])
        }
        let seen = names.current
        #expect(seen["blocking"] == "ferry-handler")
        // A body is never read on a worker, whatever the route says.
        #expect(seen["body"] == "ferry-upload")
        #expect(seen["inline"] != "ferry-handler" && seen["inline"] != "ferry-upload" && seen["inline"] != nil,
                "inline ran on \(seen["inline"] ?? "nothing")")
    }

    @Test("Shutdown waits for a handler still working on a suspended connection, then stops cleanly")
    func shutdownWaitsForSuspendedConnections() throws {
        let entered = Locked(false)
        var router = Router()
        router.add("GET", "/slow") { _, _, _ in
            entered.withValue { $0 = true }
            Thread.sleep(forTimeInterval: 1.5)
            return .json(["done": "1"])
        }
        let server = HTTPServer(host: "127.0.0.1", port: 0, handler: router)
        try server.start()
        let request = try CurlProcess(["http://127.0.0.1:\(server.port)/slow"], maxTime: 10)
        #expect(entered.wait(seconds: 5) { $0 })
        let started = Date()
        // 0.2 s is less than the handler needs: its request is failed, but libmicrohttpd may not stop while the
        // connection is suspended (it would panic), so shutdown waits for the handler to return.
        server.shutdown(timeout: 0.2)
        let waited = Date().timeIntervalSince(started)
        #expect(waited > 1.0 && waited < 5, "shutdown returned after \(waited) s")
        let result = try request.wait()
        // Failed by the shutdown: the connection is closed without a response.
        #expect(result.status == 0 || result.status == 503, "status \(result.status)")
    }

    @Test("Once stopping, a request on a kept-alive connection gets 503 at once and suspends nothing, while shutdown waits for a handler still working")
    func requestsAfterTheDrainAreRefused() throws {
        let entered = Locked(0)
        var router = Router()
        router.add("GET", "/slow") { _, _, _ in
            entered.withValue { $0 += 1 }
            Thread.sleep(forTimeInterval: 1.5)
            return .json(["done": "1"])
        }
        router.add("GET", "/healthz", inline: true) { _, _, _ in .json(["status": "ok"]) }
        let server = HTTPServer(host: "127.0.0.1", port: 0, handler: router)
        try server.start()
        // A kept-alive connection, opened (and used once) before the shutdown.
        let kept = try RawClient(port: server.port)
        try kept.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(String(decoding: kept.readAvailable(seconds: 2), as: UTF8.self).contains("200 OK"))
        let slow = try CurlProcess(["http://127.0.0.1:\(server.port)/slow"], maxTime: 10)
        #expect(entered.wait(seconds: 5) { $0 == 1 } == 1)
        let stopper = Thread { server.shutdown(timeout: 0.1) }
        stopper.start()
        Thread.sleep(forTimeInterval: 0.4)
        // The drain (0.1 s) is over and the slow handler still works: a new request is refused, not suspended.
        let started = Date()
        try kept.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        let answer = String(decoding: kept.readAvailable(seconds: 2), as: UTF8.self)
        #expect(answer.contains("503") && answer.contains("SERVER_SHUTTING_DOWN"), "\(answer)")
        #expect(Date().timeIntervalSince(started) < 0.5)
        #expect(entered.current == 1, "no handler started for the refused request")
        _ = try slow.wait()
        kept.close()
    }
}
