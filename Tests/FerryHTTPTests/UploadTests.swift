import Foundation
import Glibc
import FerryTestSupport
import Testing
@testable import FerryHTTP

private struct UploadSummary: Codable {
    var bytes: Int64
    var hash: String
    var declaredLength: Int64?
    var largestChunk: Int
}

/// A route that hashes the body chunk by chunk and reports what it saw.
private func hashingRouter() -> Router {
    var router = Router()
    router.add("POST", "/upload") { _, _, body in
        guard let body else { throw HTTPError.badRequest("A body is required.") }
        var hasher = FNV1a()
        var largest = 0
        while true {
            let chunk = try body.nextChunk()
            if chunk.isEmpty { break }
            largest = max(largest, chunk.count)
            hasher.update(chunk)
        }
        return .json(UploadSummary(bytes: body.bytesReceived, hash: String(hasher.value, radix: 16),
                                   declaredLength: body.declaredLength, largestChunk: largest))
    }
    router.add("GET", "/hello") { _, _, _ in .text("hello") }
    return router
}

extension LoopbackTests {
    @Suite("Request bodies")
    struct Uploads {
        @Test("A 200 MiB upload streams through the handler chunk by chunk without growing server memory")
        func largeUpload() throws {
            let directory = try Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let size = 200 << 20
            let file = try makeRandomFile(size: size, in: directory)
            let configuration = HTTPServerConfiguration()
            try withServer(hashingRouter()) { server, base in
                // Resident memory is the whole test process's: tests of other targets running alongside can raise
                // it too. A leak shows in every attempt; noise from elsewhere rarely in three.
                var growths: [Int] = []
                for _ in 0..<3 {
                    let baseline = residentBytes()
                    let peak = Locked((resident: baseline, buffers: Int64(0)))
                    let sampling = Locked(true)
                    let sampler = Thread {
                        while sampling.current {
                            let resident = residentBytes()
                            let buffers = server.statistics.uploadBufferBytes
                            peak.withValue { $0 = (max($0.resident, resident), max($0.buffers, buffers)) }
                            usleep(20_000)
                        }
                    }
                    sampler.start()
                    let result = try curl(["-X", "POST", "-T", file.path, "-H", "Content-Type: application/octet-stream",
                                           base + "/upload"], maxTime: 240)
                    sampling.withValue { $0 = false }
                    #expect(result.status == 200, "\(result.stderr) \(result.text)")
                    let summary = try JSONDecoder().decode(UploadSummary.self, from: Data(result.body))
                    #expect(summary.bytes == Int64(size))
                    #expect(summary.declaredLength == Int64(size))
                    #expect(summary.hash == String(file.hash, radix: 16))
                    #expect(summary.largestChunk <= configuration.uploadChunkBytes)
                    #expect(peak.current.buffers <= Int64(configuration.uploadBufferBytes))
                    growths.append(peak.current.resident - baseline)
                    if growths.last! < 64 << 20 { break }
                }
                #expect(growths.contains { $0 < 64 << 20 },
                        "resident memory grew by \(growths.map { $0 >> 20 }) MiB during the uploads")
                #expect(server.statistics.uploadBufferBytes == 0, "upload buffers are freed after the request")
            }
        }

        @Test("A chunked upload arrives whole, with no declared length")
        func chunkedUpload() throws {
            let directory = try Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try makeRandomFile(size: 3 << 20, in: directory)
            try withServer(hashingRouter()) { _, base in
                let result = try curl(["-X", "POST", "-T", file.path, "-H", "Transfer-Encoding: chunked", base + "/upload"])
                #expect(result.status == 200, "\(result.stderr)")
                let summary = try JSONDecoder().decode(UploadSummary.self, from: Data(result.body))
                #expect(summary.bytes == 3 << 20)
                #expect(summary.declaredLength == nil)
                #expect(summary.hash == String(file.hash, radix: 16))
            }
        }

        @Test("A handler that rejects an upload without reading it still sends its 413, with or without Expect")
        func earlyRejection() throws {
            let directory = try Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try makeRandomFile(size: 8 << 20, in: directory)
            let small = try makeRandomFile(size: 100_000, in: directory, name: "small.bin")
            var router = hashingRouter()
            router.add("PUT", "/limited") { _, _, body in
                if let length = body?.declaredLength, length > 1000 { throw HTTPError.payloadTooLarge() }
                return .text("fine")
            }
            router.add("PUT", "/slowly-limited") { _, _, _ in
                usleep(1_200_000)  // longer than curl waits for "100 Continue" before it sends the body anyway
                throw HTTPError.payloadTooLarge()
            }
            try withServer(router) { server, base in
                // curl sends "Expect: 100-continue" for bodies over 1 MiB: the 413 goes out before the body.
                let expecting = try curl(["-T", file.path, base + "/limited"])
                #expect(expecting.status == 413)
                #expect(expecting.errorCode == "PAYLOAD_TOO_LARGE")
                // Without Expect the body is read and discarded, then the 413 goes out.
                let plain = try curl(["-T", file.path, "-H", "Expect:", base + "/limited"])
                #expect(plain.status == 413)
                #expect(plain.errorCode == "PAYLOAD_TOO_LARGE")
                // A handler that takes its time to refuse: the body flows meanwhile and is discarded.
                let slow = try curl(["-T", file.path, base + "/slowly-limited"])
                #expect(slow.status == 413)
                #expect(slow.errorCode == "PAYLOAD_TOO_LARGE")
                // The connection survives a discarded body: the next request on it works.
                let reused = try curl(["-v", "-T", small.path, "-H", "Expect:", base + "/limited", base + "/hello"])
                #expect(reused.status == 200)
                #expect(reused.text.hasSuffix("hello"))
                #expect(reused.stderr.contains("Re-using existing connection"))
                #expect(server.statistics.bytesIn >= Int64(16 << 20))
            }
        }

        @Test("A client that declares a body over the limit and sends none of it gets its 413 at once, not at the timeout")
        func declaredButNeverSent() throws {
            var router = hashingRouter()
            router.add("POST", "/limited") { _, _, body in
                if let length = body?.declaredLength, length > 1000 { throw HTTPError.payloadTooLarge() }
                return .text("fine")
            }
            let configuration = HTTPServerConfiguration(headerTimeoutSeconds: 10, connectionTimeoutSeconds: 30)
            try withServer(router, configuration: configuration) { _, base in
                let port = UInt16(base.split(separator: ":").last!)!
                let client = try RawClient(port: port)
                let started = Date()
                try client.send("POST /limited HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
                let answer = String(decoding: client.readToEnd(), as: UTF8.self)
                let waited = Date().timeIntervalSince(started)
                #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(200))")
                #expect(answer.contains("PAYLOAD_TOO_LARGE"))
                #expect(answer.lowercased().contains("connection: close"))
                #expect(waited < 2, "answered after \(waited) s")
            }
        }

        @Test("Past the discard limit an answered upload gets its connection reset, and serving goes on")
        func discardLimit() throws {
            let directory = try Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try makeRandomFile(size: 8 << 20, in: directory)
            var router = hashingRouter()
            router.add("PUT", "/limited") { _, _, _ in throw HTTPError.payloadTooLarge() }
            let configuration = HTTPServerConfiguration(maximumDiscardedBodyBytes: 1 << 20)
            try withServer(router, configuration: configuration) { server, base in
                let result = try curl(["-T", file.path, "-H", "Expect:", base + "/limited"])
                #expect(result.exitStatus != 0, "curl got \(result.status) \(result.text)")
                #expect(server.statistics.bytesIn < Int64(8 << 20))
                #expect(try curl([base + "/hello"]).status == 200)
            }
        }

        @Test("A client that hangs up mid-upload makes nextChunk throw CLIENT_DISCONNECTED, and serving goes on")
        func clientDisconnect() throws {
            let outcome = Locked<(code: String?, received: Int64)>((nil, 0))
            var router = Router()
            router.add("POST", "/upload") { _, _, body in
                guard let body else { return .text("no body") }
                do {
                    while try !body.nextChunk().isEmpty {}
                    outcome.withValue { $0 = ("completed", body.bytesReceived) }
                } catch let error as HTTPError {
                    outcome.withValue { $0 = (error.code, body.bytesReceived) }
                    throw error
                }
                return .text("done")
            }
            router.add("GET", "/hello") { _, _, _ in .text("hello") }
            try withServer(router) { server, base in
                let client = try RawClient(port: server.port)
                try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(10 << 20)\r\n\r\n")
                try client.send([UInt8](repeating: 7, count: 1 << 20))
                // Let the handler see some bytes before hanging up.
                _ = outcome.wait(seconds: 1) { _ in false }
                client.close()
                let seen = outcome.wait(seconds: 10) { $0.code != nil }
                #expect(seen.code == "CLIENT_DISCONNECTED")
                #expect(seen.received <= 1 << 20)
                let after = try curl([base + "/hello"])
                #expect(after.status == 200)
                let deadline = Date(timeIntervalSinceNow: 5)
                while server.statistics.inFlight > 0 && Date() < deadline { usleep(10_000) }
                #expect(server.statistics.inFlight == 0)
                #expect(server.statistics.aborted == 1)
            }
        }

        @Test("readAll collects a small body and refuses one over its limit with PAYLOAD_TOO_LARGE")
        func readAll() throws {
            var router = Router()
            router.add("POST", "/echo") { _, _, body in
                let bytes = try body?.readAll(maximumBytes: 16) ?? []
                return HTTPResponse(status: 200, body: .bytes(bytes))
            }
            try withServer(router) { _, base in
                let fits = try curl(["--data-binary", "0123456789", base + "/echo"])
                #expect(fits.text == "0123456789")
                let tooBig = try curl(["--data-binary", String(repeating: "x", count: 100), base + "/echo"])
                #expect(tooBig.status == 413)
                #expect(tooBig.errorCode == "PAYLOAD_TOO_LARGE")
            }
        }
    }
}
