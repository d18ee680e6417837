import FerryInspect
import Foundation
import Testing

/// checkpointctl's matching rules on inspect objects built in code: what makes a process modified, what keys a
/// socket, and where the summary stays quiet.
@Suite("checkpoint diff")
struct CheckpointDiffTests {
    static func subject(id: String = "c1", pages: Int = 4096, tree: String, files: String = "[]", sockets: String = "[]") throws -> DiffSubject {
        let json = """
            {"container_name": "web", "image": "img", "id": "\(id)", "created": "t0",
             "checkpoint_size": {"total_size": 100, "memory_pages_size": \(pages)},
             "process_tree": \(tree), "file_descriptors": \(files), "sockets": \(sockets)}
            """
        return try DiffSubject(inspection: Data(json.utf8))
    }

    static let treeA = #"{"pid": 1, "command": "sh", "cmdline": "sh -c a ", "children": [{"pid": 7, "command": "nc", "cmdline": "nc -l 80 "}]}"#
    static let treeB = #"{"pid": 1, "command": "sh", "cmdline": "sh -c b ", "children": [{"pid": 7, "command": "nc", "cmdline": "nc -l 80 "}]}"#

    @Test("a changed command line makes a process modified only when command lines are compared")
    func modifiedProcess() throws {
        let a = try Self.subject(tree: Self.treeA), b = try Self.subject(tree: Self.treeB)
        let withCommandLines = try CheckpointDiff.compare(a, b, options: DiffOptions(commandLines: true))
        #expect(withCommandLines.processChanges.modified.map(\.pid) == [1])
        #expect(withCommandLines.processChanges.unchanged.map(\.pid) == [7])
        #expect(withCommandLines.summary == "Checkpoint comparison for container web\nProcesses: +0 -0 ~1")
        #expect(withCommandLines.tree(options: DiffOptions(commandLines: true)).contains("│ Modified:\n│   ~ PID 1     sh\n"))

        let without = try CheckpointDiff.compare(a, b, options: DiffOptions())
        #expect(without.processChanges.modified.isEmpty && without.processChanges.unchanged.count == 2)
        #expect(without.processChanges.unchanged.allSatisfy { $0.cmdline == nil })
        #expect(without.summary == "Checkpoint comparison for container web", "no change, no line")
        #expect(without.tree(options: DiffOptions()).contains("┌─ Process Tree ───────────────────────────────────────────────┐\n│ = No change\n└"))
    }

    @Test("sockets are keyed without their state, so a changed state is unchanged, a changed peer port a change")
    func socketKeys() throws {
        func sockets(state: String, peerPort: Int) -> String {
            #"[{"pid": 7, "open_sockets": [{"protocol": "TCP", "data": {"type": "TCP", "state": "\#(state)", "src": "10.0.0.1", "src_port": 80, "dst": "10.0.0.2", "dst_port": \#(peerPort)}}]}]"#
        }
        let a = try Self.subject(tree: Self.treeA, sockets: sockets(state: "LISTEN", peerPort: 5000))
        let sameKey = try Self.subject(tree: Self.treeA, sockets: sockets(state: "ESTABLISHED", peerPort: 5000))
        let otherPeer = try Self.subject(tree: Self.treeA, sockets: sockets(state: "ESTABLISHED", peerPort: 5001))
        let options = DiffOptions(sockets: true)
        let unchanged = try #require(try CheckpointDiff.compare(a, sameKey, options: options).socketChanges)
        #expect(unchanged.added.isEmpty && unchanged.removed.isEmpty && unchanged.unchanged.first?.state == "ESTABLISHED")
        let changed = try CheckpointDiff.compare(a, otherPeer, options: options)
        #expect(changed.socketChanges?.added.first?.destinationPort == 5001 && changed.socketChanges?.removed.count == 1)
        #expect(changed.tree(options: options).contains("│  +  7     TCP   ESTABLISHED  10.0.0.1:80           10.0.0.2:5001\n"))
        #expect(changed.summary.hasSuffix("\nSockets: +1 -1"))
    }

    @Test("less memory is a decrease, and different container IDs are refused")
    func memoryAndMismatch() throws {
        let a = try Self.subject(pages: 3 << 20, tree: Self.treeA), b = try Self.subject(pages: 1 << 20, tree: Self.treeA)
        let diff = try CheckpointDiff.compare(a, b, options: DiffOptions())
        #expect(diff.memoryChanges.sizeChangeBytes == -(2 << 20) && diff.memoryChanges.sizeChangeMB == -2)
        #expect(diff.tree(options: DiffOptions()).contains("│ ↓ Decreased by 2.00 MB\n"))
        #expect(diff.summary.hasSuffix("\nMemory: -2.00 MB"))
        // Go writes an integral float64 without a fraction.
        #expect(String(decoding: try diff.json(), as: UTF8.self).contains("\"size_change_mb\": -2\n"))
        #expect(throws: ContainerMismatch.self) { try CheckpointDiff.compare(a, try Self.subject(id: "c2", tree: Self.treeA), options: DiffOptions()) }
    }

    @Test("JSON leaves out empty lists and zero ports, and decodes back to the same diff")
    func jsonShape() throws {
        let a = try Self.subject(tree: Self.treeA), b = try Self.subject(tree: Self.treeA)
        let diff = try CheckpointDiff.compare(a, b, options: DiffOptions(files: true))
        let object = try #require(try JSONSerialization.jsonObject(with: try diff.json()) as? [String: Any])
        #expect((object["file_changes"] as? [String: Any])?.isEmpty == true)
        #expect(Set((object["process_changes"] as? [String: Any] ?? [:]).keys) == ["unchanged"])
        #expect(object["socket_changes"] == nil)
        #expect(try JSONDecoder().decode(CheckpointDiff.self, from: try diff.json()).processChanges == diff.processChanges)
    }
}
