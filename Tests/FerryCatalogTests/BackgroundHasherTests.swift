import FerryTestSupport
import Foundation
import Testing
@testable import FerryCatalog

/// The upload hash computed on its own thread: the same digest as openssl for every size around its 1 MiB buffers,
/// fed in pieces of any size; a dropped upload ends the thread.
@Suite("background hasher", .serialized)
struct BackgroundHasherTests {
    func openssl(_ bytes: [UInt8]) throws -> String {
        let file = try Fixtures.write(bytes, name: "hash-input")
        let result = try Fixtures.run("/usr/bin/openssl", ["dgst", "-sha256", "-r", file])
        return String(result.stdout.prefix(64))
    }

    @Test("digests equal openssl's at 0, 1, 1 MiB ± 1, 5 MiB + 7 and 9 MiB, fed in 1, 4093 and 300,000 byte pieces")
    func digests() throws {
        var state: UInt32 = 12345
        for size in [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 5 * (1 << 20) + 7, 9 << 20] {
            let bytes = (0..<size).map { _ -> UInt8 in
                state = state &* 1_103_515_245 &+ 12345
                return UInt8(truncatingIfNeeded: state >> 16)
            }
            let want = try openssl(bytes)
            for piece in size > 100_000 ? [4093, 300_000] : [1, 4093] {
                let upload = try BlobUpload(directory: try Fixtures.temporaryDirectory().path)
                var offset = 0
                while offset < bytes.count {
                    let end = min(bytes.count, offset + piece)
                    try bytes[offset..<end].withUnsafeBytes { try upload.write($0) }
                    offset = end
                }
                #expect(try upload.finish() == want, "size \(size) piece \(piece)")
                upload.discard()
            }
        }
    }

    @Test("an upload dropped half-way ends its hashing thread")
    func droppedUploadEndsTheThread() throws {
        func threads() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0 }
        let before = threads()
        let directory = try Fixtures.temporaryDirectory()
        for _ in 0..<20 {
            let upload = try BlobUpload(directory: directory.path)
            let chunk = [UInt8](repeating: 7, count: 3 << 20)
            try chunk.withUnsafeBytes { try upload.write($0) }
            // Dropped without finish: the request went away.
        }
        var after = threads()
        for _ in 0..<50 where after > before + 2 {
            usleep(20_000)
            after = threads()
        }
        #expect(after <= before + 2, "\(after - before) hashing threads left running")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty, "dropped uploads delete their files")
    }
}
