import Foundation
import FerryTestSupport
import Testing

/// `ferry diff` on two archives against checkpointctl's `diff --ps-tree-cmd --files --sockets` of the shipped series
/// pair (the text and the JSON it printed), and its flags, refusals and compressed inputs.
@Suite("ferry diff agrees with checkpointctl")
struct DiffMatchesCheckpointctlTests {
    static let a = Fixtures.archive("podman-series-1.tar")
    static let b = Fixtures.archive("podman-series-2.tar")
    static let shippedFlags = ["--ps-tree-cmd", "--files", "--sockets"]

    @Test("the tree text has checkpointctl's lines, as a multiset")
    func textAgrees() throws {
        let result = try Fixtures.ferry(["diff"] + Self.shippedFlags + [Self.a, Self.b])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stderr.isEmpty)
        let reference = String(decoding: try DiffComparison.reference("txt"), as: UTF8.self)
        let differences = DiffComparison.lineDifferences(result.stdout, reference)
        #expect(differences.isEmpty, "\(differences.joined(separator: "\n"))")
        // `tree` is the default format, and `text` its other name.
        let named = try Fixtures.ferry(["diff", "--format", "text"] + Self.shippedFlags + [Self.a, Self.b])
        #expect(named.stdout == result.stdout)
    }

    @Test("the JSON has checkpointctl's fields and values, its arrays compared as sets")
    func jsonAgrees() throws {
        let result = try Fixtures.ferry(["diff", "--format", "json"] + Self.shippedFlags + [Self.a, Self.b])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let ours = try DiffComparison.canonicalJSON(result.stdoutData)
        let theirs = try DiffComparison.canonicalJSON(try DiffComparison.reference("json"))
        #expect(ours == theirs)
        // Ferry writes Go's layout in checkpointctl's field order, so even the lines agree, as a multiset.
        let lines = DiffComparison.lineDifferences(result.stdout, String(decoding: try DiffComparison.reference("json"), as: UTF8.self))
        #expect(lines.isEmpty, "\(lines.joined(separator: "\n"))")
    }

    @Test("checkpoints of different containers are refused with one line and exit 1", arguments: [
        ["diff", a, Fixtures.archive("podman-counter-none.tar")],
        ["diff", "--format", "json", "--files", Fixtures.archive("podman-counter-none.tar"), b],
    ])
    func differentContainers(arguments: [String]) throws {
        let result = try Fixtures.ferry(arguments)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("ferry: checkpoints are from different containers: "))
        #expect(result.stderr.hasSuffix("[CONTAINER_MISMATCH]\n"))
        #expect(result.stderr.contains("cd-series") && result.stderr.contains("counter"))
    }

    @Test("an archive that cannot be read is one line with its code")
    func unreadableArchive() throws {
        let result = try Fixtures.ferry(["diff", Self.a, "/nonexistent/archive.tar"])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains("[FILE_NOT_FOUND]"), "\(result.stderr)")
    }

    @Test("without flags only memory and processes are compared, and command lines are not read")
    func noFlags() throws {
        let text = try Fixtures.ferry(["diff", Self.a, Self.b]).stdout
        #expect(text.contains("┌─ Memory Changes") && text.contains("┌─ Process Tree"))
        #expect(!text.contains("File Descriptor Changes") && !text.contains("Socket Changes"))
        #expect(!text.contains("sleep 1000000"), "command lines need --ps-tree-cmd")
        #expect(text.contains("│   + PID 14    sleep\n│   + PID 15    nc\n"))
        #expect(text.hasSuffix("Summary:\nCheckpoint comparison for container cd-series\nProcesses: +3 -1 ~0\nMemory: +0.12 MB\n"))

        let json = try #require(try JSONSerialization.jsonObject(with: try Fixtures.ferry(["diff", "--format", "json", Self.a, Self.b]).stdoutData) as? [String: Any])
        #expect(json["file_changes"] == nil && json["socket_changes"] == nil)
        let processes = try #require(json["process_changes"] as? [String: [[String: Any]]])
        #expect(processes["added"]?.count == 3 && processes["removed"]?.count == 1 && processes["unchanged"]?.count == 1)
        #expect(processes.values.joined().allSatisfy { $0["cmdline"] == nil })
        #expect((json["memory_changes"] as? [String: Any])?["size_change_bytes"] as? Int == 122_880)
    }

    @Test("each flag adds its section, and --show-unchanged draws B's tree and the unchanged rows")
    func flagsAddSections() throws {
        let files = try Fixtures.ferry(["diff", "--files", Self.a, Self.b]).stdout
        #expect(files.contains("File Descriptor Changes") && !files.contains("Socket Changes"))
        #expect(!files.contains("│ Unchanged:"))
        let sockets = try Fixtures.ferry(["diff", "--sockets", Self.a, Self.b]).stdout
        #expect(sockets.contains("│  +  15    TCP   LISTEN       :::7000               -\n") && !sockets.contains("File Descriptor"))

        let unchanged = try Fixtures.ferry(["diff", "--show-unchanged", "--files", "--ps-tree-cmd", Self.a, Self.b]).stdout
        #expect(unchanged.contains("│ Process tree\n│ └── [= PID 1]  sh -c i=0;"))
        #expect(unchanged.contains("│     ├── [+ PID 14]  sleep 1000000 \n│     ├── [+ PID 15]  nc -l -p 7000 \n│     └── [+ PID 20]  sleep 1 \n"))
        #expect(unchanged.contains("│ Removed:\n│   - PID 10    sleep\n"))
        #expect(unchanged.contains("│ Unchanged:\n") && unchanged.contains("│   = PID 1     REG      /dev/null\n"))
        // --ps-tree-env is accepted and changes nothing (environments are not compared).
        let environment = try Fixtures.ferry(["diff", "--ps-tree-env", Self.a, Self.b])
        let plain = try Fixtures.ferry(["diff", Self.a, Self.b])
        #expect(environment.status == 0 && environment.stdout == plain.stdout)
    }

    @Test("compressed archives give the same diff as plain ones", arguments: [["gzip", "-c"], ["zstd", "-q", "-c"]])
    func compressed(compressor: [String]) throws {
        let compressed = try Fixtures.run("/usr/bin/env", compressor + [Self.b])
        #expect(compressed.status == 0)
        let path = try Fixtures.write(Array(compressed.stdoutData), name: "series-2.\(compressor[0])")
        let plain = try Fixtures.ferry(["diff", "--format", "json"] + Self.shippedFlags + [Self.a, Self.b])
        let other = try Fixtures.ferry(["diff", "--format", "json"] + Self.shippedFlags + [Self.a, path])
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout == plain.stdout)
    }
}
