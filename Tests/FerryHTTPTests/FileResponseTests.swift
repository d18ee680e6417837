import Foundation
import FerryTestSupport
import Testing
@testable import FerryHTTP

extension LoopbackTests {
    @Suite("File responses")
    final class FileDownloads {
        let directory: URL
        let path: String
        let content: [UInt8]

        init() throws {
            directory = try Fixtures.temporaryDirectory()
            content = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            path = directory.appendingPathComponent("archive.tar").path
            try Data(content).write(to: URL(fileURLWithPath: path))
        }

        deinit {
            try? FileManager.default.removeItem(at: directory)
        }

        private var router: Router {
            var router = Router()
            let path = path
            router.add("GET", "/archive") { request, _, _ in
                .file(path: path, request: request, etag: "sha256-abc", contentType: "application/x-tar",
                      extraHeaders: [("Content-Disposition", "attachment; filename=\"archive.tar\"")])
            }
            router.add("GET", "/missing") { request, _, _ in
                .file(path: path + ".gone", request: request, etag: nil, contentType: "application/x-tar")
            }
            return router
        }

        @Test("A full GET sends the exact bytes with length, type, ETag, Last-Modified and Accept-Ranges")
        func fullGet() throws {
            try withServer(router) { _, base in
                let result = try curl([base + "/archive"])
                #expect(result.status == 200)
                #expect(result.body == content)
                #expect(result.headers["content-length"] == "1000")
                #expect(result.headers["content-type"] == "application/x-tar")
                #expect(result.headers["etag"] == "\"sha256-abc\"")
                #expect(result.headers["accept-ranges"] == "bytes")
                #expect(result.headers["last-modified"]?.hasSuffix(" GMT") == true)
                #expect(result.headers["content-disposition"] == "attachment; filename=\"archive.tar\"")
            }
        }

        @Test("A byte range is a 206 with Content-Range and just those bytes")
        func range() throws {
            try withServer(router) { _, base in
                let result = try curl(["-H", "Range: bytes=10-19", base + "/archive"])
                #expect(result.status == 206)
                #expect(result.headers["content-range"] == "bytes 10-19/1000")
                #expect(result.headers["content-length"] == "10")
                #expect(result.body == Array(content[10...19]))
                let open = try curl(["-H", "Range: bytes=990-", base + "/archive"])
                #expect(open.status == 206)
                #expect(open.body == Array(content[990...]))
            }
        }

        @Test("A suffix range sends the last n bytes")
        func suffixRange() throws {
            try withServer(router) { _, base in
                let result = try curl(["-H", "Range: bytes=-100", base + "/archive"])
                #expect(result.status == 206)
                #expect(result.headers["content-range"] == "bytes 900-999/1000")
                #expect(result.body == Array(content[900...]))
            }
        }

        @Test("An unsatisfiable range is a 416 with Content-Range bytes */size and a JSON error")
        func unsatisfiable() throws {
            try withServer(router) { _, base in
                let result = try curl(["-H", "Range: bytes=5000-6000", base + "/archive"])
                #expect(result.status == 416)
                #expect(result.headers["content-range"] == "bytes */1000")
                #expect(result.errorCode == "RANGE_NOT_SATISFIABLE")
            }
        }

        @Test("Several ranges, or an If-Range that does not match, get the whole file")
        func fullFileInsteadOfRange() throws {
            try withServer(router) { _, base in
                let multi = try curl(["-H", "Range: bytes=0-1,5-6", base + "/archive"])
                #expect(multi.status == 200)
                #expect(multi.body == content)
                let stale = try curl(["-H", "Range: bytes=0-1", "-H", "If-Range: \"old\"", base + "/archive"])
                #expect(stale.status == 200)
                #expect(stale.body == content)
                let fresh = try curl(["-H", "Range: bytes=0-1", "-H", "If-Range: \"sha256-abc\"", base + "/archive"])
                #expect(fresh.status == 206)
                #expect(fresh.body == Array(content[0...1]))
            }
        }

        @Test("If-None-Match with the ETag, a weak form of it, a list or * is a 304 without a body")
        func notModified() throws {
            try withServer(router) { _, base in
                for value in ["\"sha256-abc\"", "W/\"sha256-abc\"", "\"x\", \"sha256-abc\"", "*"] {
                    let result = try curl(["-H", "If-None-Match: \(value)", base + "/archive"])
                    #expect(result.status == 304, "If-None-Match: \(value)")
                    #expect(result.body.isEmpty)
                    #expect(result.headers["etag"] == "\"sha256-abc\"")
                }
                let changed = try curl(["-H", "If-None-Match: \"other\"", base + "/archive"])
                #expect(changed.status == 200)
                #expect(changed.body == content)
            }
        }

        @Test("HEAD sends the Content-Length of the file and no body")
        func head() throws {
            try withServer(router) { server, base in
                let viaCurl = try curl(["-I", base + "/archive"])
                #expect(viaCurl.status == 200)
                #expect(viaCurl.headers["content-length"] == "1000")
                let client = try RawClient(port: server.port)
                try client.send("HEAD /archive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let reply = String(decoding: client.readToEnd(), as: UTF8.self)
                #expect(reply.hasPrefix("HTTP/1.1 200"))
                #expect(reply.contains("Content-Length: 1000\r\n"))
                #expect(reply.hasSuffix("\r\n\r\n"), "no body after the header")
            }
        }

        @Test("A missing file is a JSON 404")
        func missing() throws {
            try withServer(router) { _, base in
                let result = try curl([base + "/missing"])
                #expect(result.status == 404)
                #expect(result.errorCode == "NOT_FOUND")
            }
        }
    }
}

@Suite("Range and validator parsing")
struct RangeParsingTests {
    @Test("Range specs parse to the bytes RFC 9110 says", arguments: [
        ("bytes=0-0", ByteRange.range(first: 0, last: 0)),
        ("bytes=10-19", .range(first: 10, last: 19)),
        ("bytes=990-5000", .range(first: 990, last: 999)),
        ("bytes=990-", .range(first: 990, last: 999)),
        ("bytes=-100", .range(first: 900, last: 999)),
        ("bytes=-5000", .range(first: 0, last: 999)),
        ("bytes=1000-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=99999999999999999999-", .unsatisfiable),
        ("bytes=5-1", .ignore),
        ("bytes=0-1,3-4", .ignore),
        ("items=0-1", .ignore),
        ("bytes=a-b", .ignore),
        ("BYTES= 2-3 ", .range(first: 2, last: 3)),
    ])
    func parse(header: String, expected: ByteRange) {
        #expect(ByteRange.parse(header, size: 1000) == expected)
    }

    @Test("Any range of an empty file is unsatisfiable")
    func emptyFile() {
        #expect(ByteRange.parse("bytes=0-", size: 0) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=-1", size: 0) == .unsatisfiable)
    }

    @Test("Weak comparison ignores W/, strong comparison refuses weak tags")
    func entityTags() {
        #expect(EntityTag.listMatches("W/\"a\"", "\"a\"", weak: true))
        #expect(EntityTag.listMatches("\"b\" , \"a\"", "\"a\"", weak: true))
        #expect(!EntityTag.listMatches("\"b\"", "\"a\"", weak: true))
        #expect(!EntityTag.listMatches("W/\"a\"", "\"a\"", weak: false))
        #expect(EntityTag.listMatches("\"a\"", "\"a\"", weak: false))
        #expect(!EntityTag.listMatches("\"a\"", nil, weak: true))
        #expect(EntityTag.normalize("abc") == "\"abc\"")
        #expect(EntityTag.normalize("W/\"abc\"") == "W/\"abc\"")
    }

    @Test("HTTP dates format and parse as IMF-fixdate")
    func dates() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
    }
}
