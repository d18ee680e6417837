import Foundation
import FerryTestSupport
import Testing

/// `ferry inspect --all --format json` must report the same facts as checkpointctl 1.5.0 did for every shipped
/// archive: every key checkpointctl printed, with the same value, and no checkpointctl-named key it did not print.
/// The one documented difference: checkpointctl garbles IPv4-mapped IPv6 socket addresses (`7f00:1::`), Ferry
/// prints them correctly (`::ffff:127.0.0.1`).
@Suite("ferry inspect agrees with checkpointctl")
struct InspectMatchesCheckpointctlTests {
    static let archives = Fixtures.checkpointArchives

    @Test("the shipped archives are all there")
    func archivesArePresent() {
        #expect(Self.archives.count >= 12, "expected the shipped archives in \(Fixtures.archivesDirectory.path)")
    }

    @Test("JSON agrees field by field", arguments: archives)
    func jsonAgrees(archive: String) throws {
        let result = try Fixtures.ferry(["inspect", "--all", "--format", "json", Fixtures.archive(archive)])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stderr.isEmpty)
        let ours = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [[String: Any]])
        let referenceData = try Data(contentsOf: Fixtures.reference(for: archive, suffix: ".inspect.json"))
        let reference = try #require(try JSONSerialization.jsonObject(with: referenceData) as? [[String: Any]])
        #expect(ours.count == reference.count)
        for (mine, theirs) in zip(ours, reference) {
            var differences: [String] = []
            var trimmed = mine
            #expect(trimmed.removeValue(forKey: "ferry") != nil, "--all adds Ferry's own facts under `ferry`")
            JSONComparison.compare(trimmed, theirs, path: "$", into: &differences)
            #expect(differences.isEmpty, "\(archive):\n\(differences.joined(separator: "\n"))")
        }
    }

    @Test("several archives give one JSON array in argument order")
    func severalArchives() throws {
        let names = ["podman-counter-none.tar", "podman-counter-zstd.tar.zst"]
        let result = try Fixtures.ferry(["inspect", "--format", "json"] + names.map(Fixtures.archive))
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let ours = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [[String: Any]])
        #expect(ours.count == 2)
        #expect(ours.allSatisfy { $0["container_name"] as? String == "counter" })
        // Without section flags only the summary is printed, as checkpointctl does.
        #expect(ours[0]["process_tree"] == nil)
        #expect(ours[0]["statistics"] == nil)
    }

    @Test("a section flag adds only its section")
    func sectionFlags() throws {
        let result = try Fixtures.ferry(["inspect", "--format", "json", "--sockets", Fixtures.archive("podman-web-tcp.tar")])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let ours = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [[String: Any]])
        let sockets = try #require(ours.first?["sockets"] as? [[String: Any]])
        #expect(sockets.first?["pid"] as? Int == 6)
        #expect(ours.first?["mounts"] == nil)
        #expect(ours.first?["metadata"] == nil)
    }

    @Test("reading from standard input gives the same JSON as reading the file", arguments: [
        "podman-counter-none.tar", "podman-counter-zstd.tar.zst", "podman-counter-gzip.tar.gz",
    ])
    func standardInput(archive: String) throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive(archive))))
        let fromPipe = try Fixtures.ferry(["inspect", "--all", "--format", "json", "-"], stdin: bytes)
        let fromFile = try Fixtures.ferry(["inspect", "--all", "--format", "json", Fixtures.archive(archive)])
        #expect(fromPipe.status == 0, "stderr: \(fromPipe.stderr)")
        let pipeJSON = try #require(try JSONSerialization.jsonObject(with: fromPipe.stdoutData) as? [[String: Any]])
        let fileJSON = try #require(try JSONSerialization.jsonObject(with: fromFile.stdoutData) as? [[String: Any]])
        var differences: [String] = []
        JSONComparison.compare(pipeJSON[0]["process_tree"] as Any, fileJSON[0]["process_tree"] as Any, path: "$", into: &differences)
        #expect(differences.isEmpty, "\(differences)")
        #expect(pipeJSON[0]["id"] as? String == fileJSON[0]["id"] as? String)
    }
}

/// Compares two parsed JSON values and lists every difference with its path.
enum JSONComparison {
    static func compare(_ ours: Any, _ theirs: Any, path: String, into differences: inout [String]) {
        switch (ours, theirs) {
        case let (mine as [String: Any], reference as [String: Any]):
            for key in Set(mine.keys).union(reference.keys).sorted() {
                switch (mine[key], reference[key]) {
                case let (value?, expected?): compare(value, expected, path: "\(path).\(key)", into: &differences)
                case (nil, _?): differences.append("\(path).\(key): missing")
                case (_?, nil): differences.append("\(path).\(key): not in checkpointctl's output")
                default: break
                }
            }
        case let (mine as [Any], reference as [Any]):
            if mine.count != reference.count {
                differences.append("\(path): \(mine.count) elements, checkpointctl has \(reference.count)")
            }
            for (index, (value, expected)) in zip(mine, reference).enumerated() {
                compare(value, expected, path: "\(path)[\(index)]", into: &differences)
            }
        case let (mine as String, reference as String):
            if mine != reference && checkpointctlMappedAddress(mine) != reference {
                differences.append("\(path): \(mine.debugDescription) != \(reference.debugDescription)")
            }
        case let (mine as NSNumber, reference as NSNumber):
            if mine != reference { differences.append("\(path): \(mine) != \(reference)") }
        default:
            differences.append("\(path): \(ours) != \(theirs) (types differ)")
        }
    }

    /// checkpointctl prints the IPv4-mapped address `::ffff:a.b.c.d` as the IPv6 address whose first four bytes
    /// are a.b.c.d (`::ffff:127.0.0.1` → `7f00:1::`). Ferry prints the real address; this maps it to the quirk.
    static func checkpointctlMappedAddress(_ address: String) -> String? {
        guard address.hasPrefix("::ffff:") else { return nil }
        let octets = address.dropFirst(7).split(separator: ".").compactMap { UInt16($0) }
        guard octets.count == 4 else { return nil }
        let first = String(octets[0] << 8 | octets[1], radix: 16)
        let second = String(octets[2] << 8 | octets[3], radix: 16)
        return "\(first):\(second)::"
    }
}
