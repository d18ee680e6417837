import FerryCatalog
import FerryHTTP
import FerryInspect
import Foundation

/// The diff page (`/checkpoints/{a}/diff/{b}`) and, on each checkpoint's page, its container's history: the chart
/// of its checkpoints over time and links comparing this checkpoint with the others of the same container.
extension WebPages {
    func registerDiff(in router: inout Router) {
        router.add("GET", "/checkpoints/{a}/diff/{b}") { request, parameters, _ in
            try page(request) { try diffPage(a: parameters["a"] ?? "", b: parameters["b"] ?? "") }
        }
    }

    /// Every section checkpointctl can compare, unchanged entries included (in folded lists).
    static let pageDiffOptions = DiffOptions(files: true, sockets: true, commandLines: true, showUnchanged: true)

    private func diffPage(a: String, b: String) throws -> (String, String) {
        let diffAPI = DiffAPI(api: api)
        let (recordA, recordB, diff): (CheckpointRecord, CheckpointRecord, CheckpointDiff)
        do {
            (recordA, recordB, diff) = try diffAPI.compare(a, b, options: Self.pageDiffOptions)
        } catch let error as HTTPError where error.code == ServiceErrorCode.containerMismatch.rawValue {
            return ("Not comparable", "<p><a href=\"/\">« All checkpoints</a></p><h1>Not comparable</h1><p id=\"diff-error\">\(escape(error.message))</p>")
        }
        var out = "<p><a href=\"/checkpoints/\(recordB.id)\">« \(escape(recordB.containerName)) \(recordB.id.prefix(12))</a></p>"
        out += "<h1>Diff of \(escape(diff.containerName)) <span class=\"muted\">\(escape(diff.image))</span></h1>"
        out += "<div class=\"actions\"><a href=\"/api/v1/checkpoints/\(recordA.id)/diff/\(recordB.id)?files=true&amp;sockets=true&amp;ps_tree_cmd=true\">JSON</a>"
        out += "<a href=\"/checkpoints/\(recordB.id)/diff/\(recordA.id)\">Swap A and B</a></div>"
        out += "<table id=\"diff-checkpoints\"><thead><tr><th></th><th>Checkpoint</th><th>Uploaded</th><th>Checkpointed</th><th class=\"num\">Archive</th><th class=\"num\">Checkpoint size</th><th class=\"num\">Memory pages</th></tr></thead><tbody>"
        for (name, record) in [("A", recordA), ("B", recordB)] {
            out += "<tr><th>\(name)</th><td class=\"mono\"><a href=\"/checkpoints/\(record.id)\">\(record.id.prefix(12))</a></td>"
            out += "<td class=\"mono\">\(escape(record.uploadedAt))</td><td class=\"mono\">\(escape(record.checkpointed ?? ""))</td>"
            out += "<td class=\"num\">\(Formatting.binarySize(record.size))</td><td class=\"num\">\(Formatting.binarySize(record.checkpointSize))</td>"
            out += "<td class=\"num\">\(Formatting.binarySize(record.memoryPagesSize))</td></tr>"
        }
        out += "</tbody></table>"
        out += "<h2>Summary</h2><pre id=\"diff-summary\">\(escape(diff.summary))</pre>"
        let memory = diff.memoryChanges
        let memoryText = memory.sizeChangeBytes == 0 ? "No change"
            : "\(memory.sizeChangeBytes > 0 ? "Increased" : "Decreased") by \(String(format: "%.2f", abs(memory.sizeChangeMB))) MB (\(memory.sizeChangeBytes > 0 ? "+" : "")\(memory.sizeChangeBytes) bytes)"
        out += "<h2>Memory</h2><p id=\"diff-memory\">\(escape(memoryText))</p>"

        out += "<h2>Processes</h2>"
        out += changeTable(id: "diff-processes", header: ["PID", "Command", "Command line"], diff.processChanges) {
            [String($0.pid), $0.command, $0.cmdline ?? ""]
        }
        out += "<h2>Open files</h2>"
        let files: CheckpointDiff.Changes<CheckpointDiff.FileEntry> = diff.fileChanges ?? .init()
        out += changeTable(id: "diff-files", header: ["PID", "FD", "Type", "Path"], files) {
            [String($0.pid), $0.fd, $0.type, $0.path]
        }
        out += "<h2>Sockets</h2>"
        let sockets: CheckpointDiff.Changes<CheckpointDiff.SocketEntry> = diff.socketChanges ?? .init()
        out += changeTable(id: "diff-sockets", header: ["PID", "Protocol", "State", "Local", "Peer"], sockets) { socket in
            let local = socket.address ?? "\(socket.source ?? ""):\(socket.sourcePort ?? 0)"
            let peer = socket.destinationPort.map { "\(socket.dest ?? ""):\($0)" } ?? "-"
            return [String(socket.pid), socket.protocol, socket.state ?? "-", local, peer]
        }
        return ("Diff of \(diff.containerName)", out)
    }

    /// Added, removed and modified rows, then the unchanged ones folded away; every cell escaped.
    private func changeTable<Entry>(id: String, header: [String], _ changes: CheckpointDiff.Changes<Entry>,
                                    cells: (Entry) -> [String]) -> String {
        func rows(_ list: [Entry], _ change: String, _ marker: String) -> String {
            list.map { entry in
                "<tr data-change=\"\(change)\"><td class=\"mono change-\(change)\">\(marker)</td>"
                    + cells(entry).map { "<td class=\"mono\">\(escape($0))</td>" }.joined() + "</tr>"
            }.joined()
        }
        let head = "<thead><tr><th></th>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead>"
        var out = ""
        let changed = rows(changes.added, "added", "+") + rows(changes.removed, "removed", "−") + rows(changes.modified, "modified", "~")
        if changed.isEmpty {
            out += "<p class=\"muted\" id=\"\(id)\">No change.</p>"
        } else {
            out += "<table id=\"\(id)\">\(head)<tbody>\(changed)</tbody></table>"
        }
        if !changes.unchanged.isEmpty {
            out += "<details><summary>\(changes.unchanged.count) unchanged</summary><table id=\"\(id)-unchanged\">\(head)<tbody>\(rows(changes.unchanged, "unchanged", "="))</tbody></table></details>"
        }
        return out
    }

    /// The history section of a checkpoint's page: the chart of every checkpoint of its container (same name in
    /// the same pod and namespace, as retention groups them), live or deleted, and a compare link to each other
    /// live one with the same container ID (the ones checkpointctl's diff accepts).
    func historySection(_ record: CheckpointRecord) throws -> String {
        var query = CheckpointQuery()
        query.container = record.containerName
        query.sort = .uploaded
        query.descending = false
        query.limit = CheckpointQuery.maximumLimit
        func sameScope(_ name: String, _ pod: String?, _ namespace: String?) -> Bool {
            name == record.containerName && (pod ?? "") == (record.podName ?? "") && (namespace ?? "") == (record.podNamespace ?? "")
        }
        let live = try api.catalog { try context.catalog.list(query) }.items.filter {
            sameScope($0.containerName, $0.podName, $0.podNamespace)
        }
        let pinned = Set(try api.catalog { try context.catalog.pins() }.map(\.checkpointID))
        let liveIDs = Set(live.map(\.id))
        let deleted = try api.catalog { try context.catalog.deletions(limit: CheckpointQuery.maximumLimit) }.filter {
            sameScope($0.containerName, $0.podName, $0.podNamespace) && !liveIDs.contains($0.checkpointID)
        }
        var points = live.map {
            CheckpointHistoryChart.Point(id: $0.id, uploadedAt: $0.uploadedAt, size: $0.size, memoryPages: $0.memoryPagesSize,
                                         pinned: pinned.contains($0.id), current: $0.id == record.id)
        }
        // A checkpoint deleted more than once (uploaded again in between) is one point.
        var seen: Set<String> = []
        for deletion in deleted where seen.insert(deletion.checkpointID).inserted {
            points.append(.init(id: deletion.checkpointID, uploadedAt: deletion.uploadedAt, size: deletion.size,
                                memoryPages: nil, deleted: true))
        }
        var out = "<h2>History of this container</h2>"
        out += "<p class=\"muted\">\(live.count) checkpoint\(live.count == 1 ? "" : "s") catalogued, \(seen.count) deleted.</p>"
        out += CheckpointHistoryChart(points: points).svg()
        let comparable = live.filter { $0.id != record.id && $0.containerID == record.containerID }
        guard !comparable.isEmpty else { return out }
        out += "<table id=\"compare\"><thead><tr><th>Other checkpoint</th><th>Uploaded</th><th class=\"num\">Archive</th><th class=\"num\">Memory pages</th><th>Diff</th></tr></thead><tbody>"
        for other in comparable {
            // The earlier upload is A, so additions read forward in time.
            let (a, b) = (other.uploadedAt, other.id) < (record.uploadedAt, record.id) ? (other.id, record.id) : (record.id, other.id)
            out += "<tr data-id=\"\(other.id)\"><td class=\"mono\"><a href=\"/checkpoints/\(other.id)\">\(other.id.prefix(12))</a>\(pinned.contains(other.id) ? " <span class=\"badge ok\">pinned</span>" : "")</td>"
            out += "<td class=\"mono\">\(escape(other.uploadedAt))</td><td class=\"num\">\(Formatting.binarySize(other.size))</td>"
            out += "<td class=\"num\">\(Formatting.binarySize(other.memoryPagesSize))</td>"
            out += "<td><a class=\"diff-link\" href=\"/checkpoints/\(a)/diff/\(b)\">Compare</a></td></tr>"
        }
        return out + "</tbody></table>"
    }
}
