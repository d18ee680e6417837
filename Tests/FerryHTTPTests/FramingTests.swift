import FerryTestSupport
import Foundation
import Testing
@testable import FerryHTTP

/// RFC 9112 message framing: a request whose length two headers could decide differently is a 400 JSON error,
/// and the connection closes, so bytes after its body never run as a second request.
@Suite("request framing")
struct FramingTests {
    func router(seen: Locked<[String]>) -> Router {
        var router = Router()
        router.add("POST", "/upload") { request, _, body in
            seen.withValue { $0.append("POST \(request.path)") }
            _ = try body?.readAll(maximumBytes: 1 << 20)
            return .json(["ok": true])
        }
        router.add("GET", "/smuggled") { _, _, _ in
            seen.withValue { $0.append("GET /smuggled") }
            return .json(["smuggled": true])
        }
        return router
    }

    func exchange(_ raw: String) throws -> (reply: String, seen: [String]) {
        let seen = Locked<[String]>([])
        return try withServer(router(seen: seen)) { server, _ in
            let client = try RawClient(port: server.port)
            defer { client.close() }
            try client.send(raw)
            let reply = String(decoding: client.readToEnd(), as: UTF8.self)
            return (reply, seen.withValue { $0 })
        }
    }

    @Test("two different Content-Length headers: 400 BAD_FRAMING, connection closed, nothing smuggled")
    func conflictingContentLengths() throws {
        let (reply, seen) = try exchange(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 45\r\n\r\nhello"
                + "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 400"), "\(reply.prefix(200))")
        #expect(reply.contains("\"code\":\"BAD_FRAMING\""))
        #expect(reply.lowercased().contains("connection: close"))
        #expect(reply.components(separatedBy: "HTTP/1.1 ").count == 2, "exactly one response: \(reply)")
        #expect(seen.isEmpty, "no handler ran: \(seen)")
    }

    @Test("Content-Length together with chunked: 400 BAD_FRAMING and the connection closed")
    func lengthAndChunked() throws {
        let (reply, seen) = try exchange(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                + "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 400"), "\(reply.prefix(200))")
        #expect(reply.contains("\"code\":\"BAD_FRAMING\""))
        #expect(reply.components(separatedBy: "HTTP/1.1 ").count == 2, "exactly one response: \(reply)")
        #expect(seen.isEmpty)
    }

    @Test("a single Content-Length keeps the connection for the next request")
    func ordinaryRequestsStillPipeline() throws {
        let (reply, seen) = try exchange(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                + "GET /smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(reply.components(separatedBy: "HTTP/1.1 200").count == 3, "\(reply)")
        #expect(seen == ["POST /upload", "GET /smuggled"])
    }

    @Test("the framing rules")
    func rules() {
        #expect(RequestContext.framingProblem(contentLength: "10", transferEncoding: nil) == nil)
        #expect(RequestContext.framingProblem(contentLength: nil, transferEncoding: "chunked") == nil)
        #expect(RequestContext.framingProblem(contentLength: "10, 10", transferEncoding: nil) != nil)
        #expect(RequestContext.framingProblem(contentLength: "-1", transferEncoding: nil) != nil)
        #expect(RequestContext.framingProblem(contentLength: "1e3", transferEncoding: nil) != nil)
        #expect(RequestContext.framingProblem(contentLength: "3", transferEncoding: "chunked") != nil)
    }
}
