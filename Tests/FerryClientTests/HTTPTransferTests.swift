import FerryClient
import FerryHTTP
import FerryTestSupport
import Foundation
import Testing

/// FerryClient's transport against a real libmicrohttpd server on loopback (FerryHTTP, as `ferry serve` and the
/// agents run it): what a waiting client costs, cancelling, the memory bound on answers, streamed uploads.
@Suite("HTTP transfers")
struct HTTPTransferTests {
    func withServer<T>(_ router: Router, _ body: (String) throws -> T) throws -> T {
        let server = HTTPServer(host: "127.0.0.1", port: 0, configuration: HTTPServerConfiguration(), handler: router, log: nil)
        try server.start()
        defer { server.shutdown(timeout: 5) }
        return try body("http://127.0.0.1:\(server.port)")
    }

    /// A catalog list that takes `seconds` to answer.
    func slowCatalog(_ seconds: Double) -> Router {
        var router = Router()
        router.add("GET", "/api/v1/checkpoints") { _, _, _ in
            Thread.sleep(forTimeInterval: seconds)
            return HTTPResponse(headers: [("Content-Type", "application/json")], body: .bytes(Array(#"{"items":[],"next":null}"#.utf8)))
        }
        return router
    }

    @Test("a client waiting 2 s for an answer uses almost no CPU (the ferry CLI, measured by the kernel)")
    func waitingCostsNoCPU() throws {
        try withServer(slowCatalog(2)) { base in
            // /usr/bin/time reads the child's rusage: user and system seconds of the whole ferry process.
            let result = try Fixtures.run("/usr/bin/time", ["-f", "cpu %U %S wall %e", Fixtures.ferryBinary, "ls", "--server", base])
            #expect(result.status == 0, "\(result.stderr)")
            let line = result.stderr.split(separator: "\n").last { $0.hasPrefix("cpu ") } ?? ""
            let numbers = line.split(separator: " ").compactMap { Double($0) }
            try #require(numbers.count == 3, "time printed: \(result.stderr)")
            print("ferry ls against a 2 s answer: \(numbers[0]) s user, \(numbers[1]) s system, \(numbers[2]) s wall")
            #expect(numbers[2] >= 2)
            // URLSession on Linux spent 1.6 s of CPU on the same wait.
            #expect(numbers[0] + numbers[1] < 0.3, "CPU while waiting: \(line)")
        }
    }

    @Test("a cancel from another thread ends a transfer within about a second")
    func cancelEndsTheTransfer() throws {
        try withServer(slowCatalog(4)) { base in
            let cancellation = TransferCancellation()
            let canceller = Thread {
                Thread.sleep(forTimeInterval: 0.3)
                cancellation.cancel()
            }
            canceller.start()
            let started = Date()
            var caught: TransferError?
            do {
                _ = try HTTPTransfer.perform(TransferRequest(method: "GET", url: URL(string: base + "/api/v1/checkpoints")!, timeout: 30),
                                             cancellation: cancellation)
            } catch let error as TransferError {
                caught = error
            }
            let waited = Date().timeIntervalSince(started)
            #expect(caught?.cancelled == true)
            #expect(waited < 2, "cancelled after \(waited) s")
        }
    }

    @Test("an answer larger than the request's bound fails instead of filling memory")
    func answersAreBounded() throws {
        var router = Router()
        router.add("GET", "/big") { _, _, _ in HTTPResponse(body: .bytes([UInt8](repeating: 0x61, count: 3 << 20))) }
        try withServer(router) { base in
            var request = TransferRequest(method: "GET", url: URL(string: base + "/big")!)
            request.maximumBodyBytes = 1 << 20
            #expect(throws: TransferError.self) { try HTTPTransfer.perform(request) }
            request.maximumBodyBytes = 4 << 20
            let answer = try HTTPTransfer.perform(request)
            #expect(answer.body.count == 3 << 20)
        }
    }

    @Test("a file upload streams every byte with its length; JSON bodies and repeated headers arrive as sent")
    func uploadsAndHeaders() throws {
        var router = Router()
        router.add("POST", "/upload") { request, _, body in
            var count: Int64 = 0
            var sum: UInt64 = 0
            while let chunk = try body?.nextChunk(), !chunk.isEmpty {
                count += Int64(chunk.count)
                for byte in chunk { sum &+= UInt64(byte) }
            }
            return .json(["bytes": "\(count)", "sum": "\(sum)", "declared": "\(body?.declaredLength ?? -1)",
                          "expect": request.header("Expect") ?? ""])
        }
        router.add("PUT", "/echo") { request, _, body in
            let bytes = try body?.readAll(maximumBytes: 1 << 20) ?? []
            return HTTPResponse(status: 201, headers: [("X-One", "1"), ("X-One", "2"), ("Content-Type", request.header("Content-Type") ?? "")],
                                body: .bytes(bytes))
        }
        try withServer(router) { base in
            let directory = try Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = directory.appendingPathComponent("upload.bin")
            let bytes = (0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try Data(bytes).write(to: file)
            var request = TransferRequest(method: "POST", url: URL(string: base + "/upload")!, body: .file(file.path))
            let sent = Locked<Int64>(0)
            let answer = try HTTPTransfer.perform(request, onUpload: { done, _ in sent.set(done) })
            let fields = try JSONDecoder().decode([String: String].self, from: answer.body)
            #expect(answer.status == 200)
            #expect(fields["bytes"] == "\(bytes.count)")
            #expect(fields["declared"] == "\(bytes.count)")
            #expect(fields["sum"] == "\(bytes.reduce(UInt64(0)) { $0 &+ UInt64($1) })")
            #expect(fields["expect"]?.lowercased() == "100-continue")
            #expect(sent.get() == Int64(bytes.count))

            request = TransferRequest(method: "PUT", url: URL(string: base + "/echo")!, body: .data(Data(#"{"a":1}"#.utf8)))
            request.setHeader("Content-Type", "application/json")
            let echoed = try HTTPTransfer.perform(request)
            #expect(echoed.status == 201)
            #expect(String(decoding: echoed.body, as: UTF8.self) == #"{"a":1}"#)
            #expect(echoed.header("content-type") == "application/json")
            #expect(echoed.header("X-One") == "2")
        }
    }

    @Test("an unreachable server is a transport error naming the failure")
    func unreachable() throws {
        // Port 1 on loopback: nothing listens there (tcpmux is long dead), so the connection is refused.
        var caught: TransferError?
        do {
            _ = try HTTPTransfer.perform(TransferRequest(method: "GET", url: URL(string: "http://127.0.0.1:1/")!, timeout: 5))
        } catch {
            caught = error
        }
        #expect(caught?.cancelled == false)
        #expect(caught?.message.contains("onnect") == true, "\(caught?.message ?? "no error")")
    }
}

/// A value shared with a callback.
final class Locked<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable invariant: `value` is only touched with `lock` held.
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func set(_ new: Value) { lock.lock(); value = new; lock.unlock() }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
}
