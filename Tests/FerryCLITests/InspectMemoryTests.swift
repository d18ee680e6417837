import Foundation
import FerryTestSupport
import Testing

/// Memory stays flat as archives grow: `ferry inspect --all` on a checkpoint whose process has 384 MiB more memory
/// (in front of the stack, so the reader must stream through all of it to reach argv and environment) peaks at
/// about the same RSS as on the original archive.
@Suite("ferry inspect memory")
struct InspectMemoryTests {
    static let extraMiB = 384

    @Test("peak RSS does not grow with the archive")
    func flatMemory() throws {
        let small = Fixtures.archive("podman-counter-none.tar")
        let big = try Self.grownArchive(extraMiB: Self.extraMiB)
        defer { try? FileManager.default.removeItem(atPath: big) }
        let (smallRSS, _) = try Self.peakRSS(["inspect", "--all", "--format", "json", small])
        let (bigRSS, output) = try Self.peakRSS(["inspect", "--all", "--format", "json", big])
        #expect(output.contains("\"SECRET_TOKEN\": \"hunter2\""), "the environment behind the extra memory was read")
        #expect(output.contains("\"memory_pages_size\": \(143360 + Self.extraMiB << 20)"))
        #expect(bigRSS < 64 << 10, "peak RSS \(bigRSS) KiB on a \(Self.extraMiB) MiB archive")
        #expect(bigRSS - smallRSS < 16 << 10, "RSS grew from \(smallRSS) KiB to \(bigRSS) KiB")
    }

    /// Runs `ferry` under GNU time; returns its peak RSS in KiB and its stdout.
    static func peakRSS(_ arguments: [String]) throws -> (Int, String) {
        let report = try Fixtures.temporaryDirectory().appendingPathComponent("time.txt").path
        let result = try Fixtures.run("/usr/bin/time", ["-f", "%M", "-o", report, Fixtures.ferryBinary] + arguments)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let text = try String(contentsOfFile: report, encoding: .utf8)
        return (Int(text.split(separator: "\n").last.map(String.init) ?? "") ?? Int.max, result.stdout)
    }

    /// The counter archive with `extraMiB` of memory added to pid 1 at a low address: one more pagemap entry, and
    /// that many bytes in front of `pages-1.img`. Written to disk in 1 MiB pieces.
    static func grownArchive(extraMiB: Int) throws -> String {
        let counter = try Fixtures.uncompressedBytes(of: "podman-counter-none.tar")
        let pagemap = TarBuilder.extract("checkpoint/pagemap-1.img", from: counter)
        let pages = TarBuilder.extract("checkpoint/pages-1.img", from: counter)
        // pagemap image: 8 bytes of magic, the head entry, then the entries. Insert a run after the head.
        let headLength = Int(pagemap[8]) | Int(pagemap[9]) << 8 | Int(pagemap[10]) << 16 | Int(pagemap[11]) << 24
        let entry = [0x08] + varint(0x1000_0000) + [0x28] + varint(UInt64(extraMiB * 256)) + [0x20, 0x04]
        let length = UInt32(entry.count)
        let grownPagemap = Array(pagemap[0..<(12 + headLength)])
            + [UInt8(length & 0xff), UInt8(length >> 8 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 24)]
            + entry + Array(pagemap[(12 + headLength)...])

        var builder = TarBuilder()
        builder.copyEntries(of: counter) { $0 == "checkpoint/pagemap-1.img" || $0 == "checkpoint/pages-1.img" }
        builder.file("checkpoint/pagemap-1.img", grownPagemap)
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("grown.tar").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        try handle.write(contentsOf: Data(builder.bytes))
        let size = extraMiB << 20 + pages.count
        try handle.write(contentsOf: Data(TarBuilder.regularFileHeader("checkpoint/pages-1.img", size: size)))
        var piece = [UInt8](repeating: 0, count: 1 << 20)
        for index in 0..<extraMiB {
            piece[index % piece.count] = UInt8(truncatingIfNeeded: index)  // not all zeros
            try handle.write(contentsOf: Data(piece))
        }
        try handle.write(contentsOf: Data(pages))
        let padding = (512 - size % 512) % 512
        try handle.write(contentsOf: Data([UInt8](repeating: 0, count: padding + 1024)))
        return path
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7f)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            out.append(byte)
        } while value != 0
        return out
    }
}
