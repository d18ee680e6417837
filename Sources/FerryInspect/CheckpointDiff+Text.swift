internal import Foundation

extension CheckpointDiff {
    /// checkpointctl's `diff --format tree`: a boxed header, both checkpoints, then a box per section (memory,
    /// process tree, and with their flags file descriptors and sockets) and the summary.
    public func tree(options: DiffOptions) -> String {
        var out = "╔════════════════════════════════════════════════════════════════╗\n"
        out += "║ Checkpoint Diff                                                ║\n"
        out += "╠════════════════════════════════════════════════════════════════╣\n"
        out += "║ Container: \(Self.padded(Self.truncated(containerName, 51), 51)) ║\n"
        out += "║ Image:     \(Self.padded(Self.truncated(image, 51), 51)) ║\n"
        out += "║ ID:        \(Self.padded(Self.truncated(containerID, 51), 51)) ║\n"
        out += "╚════════════════════════════════════════════════════════════════╝\n\n"
        for (name, checkpoint) in [("A", checkpointA), ("B", checkpointB)] {
            out += "Checkpoint \(name):\n  Created: \(checkpoint.created)\n  Size:    \(checkpoint.totalSize) bytes\n\n"
        }

        out += "┌─ Memory Changes ─────────────────────────────────────────────┐\n"
        if memoryChanges.sizeChangeBytes > 0 {
            out += "│ ↑ Increased by \(String(format: "%.2f", memoryChanges.sizeChangeMB)) MB\n"
        } else if memoryChanges.sizeChangeBytes < 0 {
            out += "│ ↓ Decreased by \(String(format: "%.2f", -memoryChanges.sizeChangeMB)) MB\n"
        } else {
            out += "│ = No change\n"
        }
        out += Self.boxEnd

        out += "┌─ Process Tree ───────────────────────────────────────────────┐\n"
        out += processLines(options: options)
        out += Self.boxEnd

        if let files = fileChanges {
            out += "┌─ File Descriptor Changes ────────────────────────────────────┐\n"
            for (title, marker, list) in [("Added", "+", files.added), ("Removed", "-", files.removed),
                                          ("Unchanged", "=", options.showUnchanged ? files.unchanged : [])]
            where !list.isEmpty {
                out += "│ \(title):\n"
                for file in list {
                    out += "│   \(marker) PID \(Self.padded(String(file.pid), 5)) \(Self.padded(file.type, 8)) \(Self.truncated(file.path, 38))\n"
                }
            }
            out += Self.boxEnd
        }

        if let sockets = socketChanges {
            out += "┌─ Socket Changes ──────────────────────────────────────────────────────┐\n"
            let unchanged = options.showUnchanged ? sockets.unchanged : []
            if !sockets.added.isEmpty || !sockets.removed.isEmpty || !unchanged.isEmpty {
                out += "│     \(Self.padded("PID", 5)) \(Self.padded("PROTO", 5)) \(Self.padded("STATE", 12)) \(Self.padded("LOCAL", 21)) PEER\n"
                for (marker, list) in [("+", sockets.added), ("-", sockets.removed), ("=", unchanged)] {
                    for socket in list {
                        let (state, local, peer) = Self.columns(socket)
                        out += "│  \(marker)  \(Self.padded(String(socket.pid), 5)) \(Self.padded(socket.protocol, 5)) \(Self.padded(state, 12)) \(Self.padded(local, 21)) \(peer)\n"
                    }
                }
            }
            out += "└───────────────────────────────────────────────────────────────────────┘\n"
        }
        return out + "Summary:\n" + summary + "\n"
    }

    private static let boxEnd = "└──────────────────────────────────────────────────────────────┘\n"

    private func processLines(options: DiffOptions) -> String {
        let changes = processChanges
        var out = ""
        if options.showUnchanged, let tree = processTreeB {
            // B's tree with a marker per process; what B lacks is listed below it.
            var status: [Int: String] = [:]
            for entry in changes.added { status[entry.pid] = "+" }
            for entry in changes.modified { status[entry.pid] = "~" }
            for entry in changes.unchanged { status[entry.pid] = "=" }
            let rendered = TreeNode("Process tree", [Self.annotated(tree, status: status)]).rendered()
            for line in rendered.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                out += "│ \(line)\n"
            }
            if !changes.removed.isEmpty {
                out += "│ Removed:\n"
                for entry in changes.removed { out += "│   - PID \(Self.padded(String(entry.pid), 5)) \(entry.command)\n" }
            }
            return out
        }
        guard !changes.added.isEmpty || !changes.removed.isEmpty || !changes.modified.isEmpty else {
            return "│ = No change\n"
        }
        if !changes.added.isEmpty {
            out += "│ Added:\n"
            for entry in changes.added {
                out += "│   + PID \(Self.padded(String(entry.pid), 5)) \(entry.command)\n"
                if options.commandLines, let cmdline = entry.cmdline, !cmdline.isEmpty {
                    out += "│             \(Self.truncated(cmdline, 55))\n"
                }
            }
        }
        for (title, marker, list) in [("Removed", "-", changes.removed), ("Modified", "~", changes.modified)] where !list.isEmpty {
            out += "│ \(title):\n"
            for entry in list { out += "│   \(marker) PID \(Self.padded(String(entry.pid), 5)) \(entry.command)\n" }
        }
        return out
    }

    /// `[= PID 1]  sh -c …`, children sorted by PID, as checkpointctl's treeprint meta branches.
    private static func annotated(_ node: DiffSubject.Process, status: [Int: String]) -> TreeNode {
        let display = node.cmdline.flatMap { $0.isEmpty ? nil : $0 } ?? node.command
        return TreeNode("[\(status[node.pid] ?? " ") PID \(node.pid)]  \(display)",
                        node.children.sorted { $0.pid < $1.pid }.map { annotated($0, status: status) })
    }

    /// STATE, LOCAL and PEER of a socket row: TCP and UDP by address and port (no peer port: `-`), every other
    /// kind by its address (`@` when unnamed).
    private static func columns(_ socket: SocketEntry) -> (String, String, String) {
        switch socket.type {
        case "TCP", "UDP":
            let local = "\(socket.source ?? ""):\(socket.sourcePort ?? 0)"
            let peer = (socket.destinationPort ?? 0) > 0 ? "\(socket.dest ?? ""):\(socket.destinationPort!)" : "-"
            return (socket.state ?? "-", local, peer)
        default:
            return ("-", socket.address ?? "@", "-")
        }
    }

    /// Go's `%-Ns`: padded with spaces to N characters (counted as Unicode scalars, as Go counts runes).
    static func padded(_ text: String, _ width: Int) -> String {
        let count = text.unicodeScalars.count
        return count >= width ? text : text + String(repeating: " ", count: width - count)
    }

    /// checkpointctl's `truncate`: past `limit` bytes, the first `limit - 3` bytes and `...`.
    static func truncated(_ text: String, _ limit: Int) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count > limit else { return text }
        return String(decoding: bytes.prefix(limit - 3), as: UTF8.self) + "..."
    }
}
