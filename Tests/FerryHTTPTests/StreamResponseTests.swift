import Foundation
import FerryTestSupport
import Testing
@testable import FerryHTTP

/// Bytes made on demand (as a decrypting blob reader makes them); fails at `failAt` and past it, if set.
final class PatternReader: HTTPBodyReader {
    let size: Int64
    let failAt: Int64?
    /// The largest read asked for (libmicrohttpd's buffer), for the assertion that reads are bounded.
    nonisolated(unsafe) var largestRead = 0
    init(size: Int64, failAt: Int64? = nil) {
        self.size = size
        self.failAt = failAt
    }

    static func byte(_ offset: Int64) -> UInt8 { UInt8(truncatingIfNeeded: offset &* 31 &+ offset >> 8) }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        largestRead = max(largestRead, buffer.count)
        let n = Int(min(Int64(buffer.count), size - offset))
        if let failAt, offset + Int64(n) > failAt { throw TestFailure("a chunk does not open") }
        for index in 0..<max(n, 0) { buffer[index] = Self.byte(offset + Int64(index)) }
        return max(n, 0)
    }
}

extension LoopbackTests {
    @Suite("Streamed responses")
    struct StreamedResponses {
        static let size: Int64 = 3 << 20

        func router(_ reader: PatternReader) -> Router {
            var router = Router()
            router.add("GET", "/blob") { request, _, _ in
                .stream(reader: reader, size: reader.size, modified: 1_700_000_000, request: request, etag: "sha256:x",
                        contentType: "application/octet-stream")
            }
            return router
        }

        func expected(_ range: ClosedRange<Int64>) -> [UInt8] { range.map(PatternReader.byte) }

        @Test("a streamed body has the file response's length, validators and ranges, and is read in bounded pieces")
        func rangesAndValidators() throws {
            let reader = PatternReader(size: Self.size)
            try withServer(router(reader)) { _, base in
                let whole = try curl([base + "/blob"])
                #expect(whole.status == 200 && whole.headers["content-length"] == String(Self.size))
                #expect(whole.body == expected(0...(Self.size - 1)))
                #expect(whole.headers["accept-ranges"] == "bytes" && whole.headers["etag"] == "\"sha256:x\"")
                let part = try curl(["-H", "Range: bytes=65535-131072", base + "/blob"])
                #expect(part.status == 206 && part.headers["content-range"] == "bytes 65535-131072/\(Self.size)")
                #expect(part.body == expected(65535...131072))
                let suffix = try curl(["-H", "Range: bytes=-10", base + "/blob"])
                #expect(suffix.body == expected((Self.size - 10)...(Self.size - 1)))
                #expect(try curl(["-H", "If-None-Match: \"sha256:x\"", base + "/blob"]).status == 304)
                #expect(try curl(["-H", "Range: bytes=\(Self.size)-", base + "/blob"]).status == 416)
                let head = try curl(["-I", base + "/blob"])
                #expect(head.status == 200 && head.headers["content-length"] == String(Self.size))
            }
            #expect(reader.largestRead > 0 && reader.largestRead <= 256 * 1024)
        }

        @Test("a read that fails closes the connection: the client gets a short body of the right bytes, never others")
        func failingReadEndsTheBody() throws {
            let failAt: Int64 = 1 << 20
            try withServer(router(PatternReader(size: Self.size, failAt: failAt))) { _, base in
                let result = try curl([base + "/blob"])
                #expect(result.exitStatus != 0, "curl reports the body cut short")
                #expect(result.body.count <= Int(failAt) && result.body.count < Int(Self.size))
                #expect(result.body == Array(expected(0...(failAt - 1)).prefix(result.body.count)))
            }
        }
    }
}
