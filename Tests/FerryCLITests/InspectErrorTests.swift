import Foundation
import FerryTestSupport
import Testing

/// Broken and hostile archives, built on the fly: each must give exactly one line on stderr naming the archive,
/// the problem and its stable code, exit status 1, and nothing on stdout.
@Suite("ferry inspect rejects broken archives clearly")
struct InspectErrorTests {
    /// The real uncompressed counter archive, as the base for every broken variant.
    static let counter: [UInt8] = (try? Fixtures.uncompressedBytes(of: "podman-counter-none.tar")) ?? []

    /// The counter archive with some entries left out and others added.
    static func counterArchive(without skipped: Set<String> = [], adding extra: (inout TarBuilder) -> Void = { _ in }) -> [UInt8] {
        var builder = TarBuilder()
        builder.copyEntries(of: counter) { skipped.contains($0) }
        extra(&builder)
        return builder.finished()
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: [UInt8]
        var code: String
        var message: String
        var testDescription: String { name }
    }

    static var cases: [Case] {
        let core = "checkpoint/core-1.img"
        let coreBytes = TarBuilder.extract(core, from: counter)
        return [
            Case(name: "empty file", bytes: [], code: "ARCHIVE_EMPTY", message: "the archive is empty"),
            Case(name: "random bytes", bytes: (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) },
                 code: "ARCHIVE_CORRUPT", message: "not a tar archive"),
            Case(name: "truncated in the middle of an entry", bytes: Array(counter.prefix(counter.count / 2 + 100)),
                 code: "ARCHIVE_TRUNCATED", message: "truncated"),
            Case(name: "header with a broken checksum", bytes: corruptSecondHeader(counter),
                 code: "ARCHIVE_CORRUPT", message: "corrupt"),
            Case(name: "no checkpoint directory",
                 bytes: {
                     var builder = TarBuilder()
                     builder.copyEntries(of: counter) { $0.hasPrefix("checkpoint") }
                     return builder.finished()
                 }(),
                 code: "NOT_A_CHECKPOINT", message: "checkpoint directory is missing in the archive"),
            Case(name: "a plain tar of something else",
                 bytes: {
                     var builder = TarBuilder()
                     builder.file("README", "hello")
                     return builder.finished()
                 }(),
                 code: "NOT_A_CHECKPOINT", message: "checkpoint directory is missing"),
            Case(name: "config.dump missing", bytes: counterArchive(without: ["config.dump"]),
                 code: "METADATA_MISSING", message: "config.dump is missing"),
            Case(name: "spec.dump missing", bytes: counterArchive(without: ["spec.dump"]),
                 code: "METADATA_MISSING", message: "spec.dump is missing"),
            Case(name: "config.dump is not JSON",
                 bytes: counterArchive(without: ["config.dump"]) { $0.file("config.dump", "{not json") },
                 code: "METADATA_INVALID", message: "config.dump"),
            Case(name: "config.dump is empty",
                 bytes: counterArchive(without: ["config.dump"]) { $0.file("config.dump", "") },
                 code: "METADATA_INVALID", message: "config.dump"),
            Case(name: "spec.dump has annotations of the wrong type",
                 bytes: counterArchive(without: ["spec.dump"]) { $0.file("spec.dump", #"{"annotations": ["x"]}"#) },
                 code: "METADATA_INVALID", message: "spec.dump"),
            Case(name: "network.status is a string",
                 bytes: counterArchive(without: ["network.status"]) { $0.file("network.status", #""eth0""#) },
                 code: "METADATA_INVALID", message: "network.status"),
            Case(name: "config.dump larger than its bound",
                 bytes: counterArchive(without: ["config.dump"]) {
                     $0.file("config.dump", [UInt8](repeating: 0x20, count: (16 << 20) + 1))
                 },
                 code: "ENTRY_TOO_LARGE", message: "config.dump"),
            Case(name: "CRIU image with an unknown magic",
                 bytes: counterArchive(without: [core]) { $0.file(core, [0xde, 0xad, 0xbe, 0xef] + coreBytes.dropFirst(4)) },
                 code: "CRIU_BAD_MAGIC", message: "core-1.img"),
            Case(name: "CRIU image cut short",
                 bytes: counterArchive(without: [core]) { $0.file(core, Array(coreBytes.prefix(coreBytes.count - 40))) },
                 code: "CRIU_IMAGE_TRUNCATED", message: "core-1.img"),
        ]
    }

    @Test("each broken archive gives one clear line and exit status 1", arguments: cases)
    func brokenArchive(_ broken: Case) throws {
        let path = try Fixtures.write(broken.bytes, name: "broken.tar")
        let result = try Fixtures.ferry(["inspect", "--all", path])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty, "no partial output: \(result.stdout.prefix(200))")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        let line = String(lines.first ?? "")
        #expect(line.hasPrefix("ferry: \(path)"), "names the archive: \(line)")
        #expect(line.hasSuffix("[\(broken.code)]"), "stable code: \(line)")
        #expect(line.contains(broken.message), "says what is wrong: \(line)")
    }

    @Test("a truncated zstd archive is reported as truncated")
    func truncatedZstd() throws {
        let compressed = try Fixtures.compress(Self.counter, with: "zstd")
        let path = try Fixtures.write(Array(compressed.prefix(compressed.count / 2)), name: "cut.tar.zst")
        let result = try Fixtures.ferry(["inspect", path])
        #expect(result.status == 1)
        #expect(result.stderr.hasSuffix("[ARCHIVE_TRUNCATED]\n"), "\(result.stderr)")
    }

    @Test("a missing file and a directory are refused", arguments: ["/nonexistent/ferry.tar", "/tmp"])
    func notAFile(path: String) throws {
        let result = try Fixtures.ferry(["inspect", path])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("ferry: \(path)"))
        #expect(result.stderr.hasSuffix("[FILE_NOT_FOUND]\n"))
    }

    @Test("one bad archive among good ones fails the command and prints no report")
    func mixed() throws {
        let bad = try Fixtures.write([], name: "empty.tar")
        let result = try Fixtures.ferry(["inspect", "--format", "json", Fixtures.archive("podman-counter-none.tar"), bad])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "ferry: \(bad): the archive is empty [ARCHIVE_EMPTY]\n")
    }

    @Test("compression is recognised by content, not by name", arguments: ["gzip", "zstd", "xz", "bzip2"])
    func compressionByContent(tool: String) throws {
        let compressed = try Fixtures.compress(Self.counter, with: tool)
        let path = try Fixtures.write(compressed, name: "misleading-name.tar")
        let result = try Fixtures.ferry(["inspect", "--all", "--format", "json", path])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [[String: Any]])
        let ferry = try #require(json.first?["ferry"] as? [String: Any])
        let archive = try #require(ferry["archive"] as? [String: Any])
        #expect(archive["compression"] as? String == tool)
        #expect(archive["stored_size"] as? Int == compressed.count)
        #expect((json.first?["process_tree"] as? [String: Any])?["cmdline"] as? String != nil)
    }

    /// Breaks the checksum of the archive's second header.
    static func corruptSecondHeader(_ archive: [UInt8]) -> [UInt8] {
        // Without the test archives (no ../shared/testdata) the cases fail on their own; listing them must not trap.
        guard archive.count > 1024 else { return archive }
        var bytes = archive
        let firstSize = Int(String(decoding: bytes[124..<135], as: UTF8.self), radix: 8) ?? 0
        let second = 512 + (firstSize + 511) / 512 * 512
        bytes[second + 148] = UInt8(ascii: "7")
        bytes[second + 149] = UInt8(ascii: "7")
        return bytes
    }
}
