public import CheckpointArchive

/// A node of a printed tree (`├──`, `└──`), as checkpointctl draws its inspect view.
struct TreeNode {
    var text: String
    var children: [TreeNode] = []

    init(_ text: String, _ children: [TreeNode] = []) {
        self.text = text
        self.children = children
    }

    func rendered() -> String {
        var out = text + "\n"
        Self.renderChildren(children, prefix: "", into: &out)
        return out
    }

    private static func renderChildren(_ children: [TreeNode], prefix: String, into out: inout String) {
        for (index, child) in children.enumerated() {
            let last = index == children.count - 1
            out += prefix + (last ? "└── " : "├── ") + child.text + "\n"
            renderChildren(child.children, prefix: prefix + (last ? "    " : "│   "), into: &out)
        }
    }
}

extension InspectReport {
    /// checkpointctl's inspect tree view for one archive.
    public static func tree(_ manifest: CheckpointManifest, sections: InspectSections, source: String) throws -> String {
        let container = manifest.container
        var root = TreeNode(container.name)
        root.children.append(TreeNode("Image: \(container.image ?? "")"))
        root.children.append(TreeNode("ID: \(container.id)"))
        root.children.append(TreeNode("Runtime: \(container.runtime ?? "")"))
        root.children.append(TreeNode("Created: \(container.created ?? "")"))
        if let checkpointed = container.checkpointed { root.children.append(TreeNode("Checkpointed: \(checkpointed)")) }
        root.children.append(TreeNode("Engine: \(manifest.engine.rawValue)"))
        if manifest.engine == .crio, let ip = manifest.podIPs.first {
            root.children.append(TreeNode("IP: \(ip)"))
        }
        if !manifest.networks.isEmpty {
            var networks = TreeNode("Network Interfaces")
            for network in manifest.networks {
                for interface in network.interfaces {
                    var node = TreeNode("\(network.name) (\(interface.name))")
                    for address in interface.addresses { node.children.append(TreeNode("IP: \(address)")) }
                    if let mac = interface.mac { node.children.append(TreeNode("MAC: \(mac)")) }
                    for gateway in interface.gateways { node.children.append(TreeNode("Gateway: \(gateway)")) }
                    networks.children.append(node)
                }
            }
            root.children.append(networks)
        }
        var size = TreeNode("Checkpoint size: \(Formatting.binarySize(manifest.sizes.checkpoint))")
        size.children.append(TreeNode("Memory pages size: \(Formatting.binarySize(manifest.sizes.memoryPages))"))
        if manifest.sizes.amdGPUPages > 0 {
            size.children.append(TreeNode("AMD GPU memory pages size: \(Formatting.binarySize(manifest.sizes.amdGPUPages))"))
        }
        root.children.append(size)
        if let diff = manifest.rootfsDiff, diff.size > 0 {
            root.children.append(TreeNode("Root FS diff size: \(Formatting.binarySize(diff.size))"))
        }
        if sections.statistics, let stats = manifest.statistics {
            root.children.append(TreeNode("CRIU dump statistics", [
                TreeNode("Freezing time: \(Formatting.microseconds(UInt64(stats.freezingTime)))"),
                TreeNode("Frozen time: \(Formatting.microseconds(UInt64(stats.frozenTime)))"),
                TreeNode("Memdump time: \(Formatting.microseconds(UInt64(stats.memdumpTime)))"),
                TreeNode("Memwrite time: \(Formatting.microseconds(UInt64(stats.memwriteTime)))"),
                TreeNode("Pages scanned: \(stats.pagesScanned)"),
                TreeNode("Pages written: \(stats.pagesWritten)"),
            ]))
        }
        if sections.metadata {
            var metadata = TreeNode("Metadata")
            if let name = manifest.pod.name { metadata.children.append(TreeNode("Pod name: \(name)")) }
            if let namespace = manifest.pod.namespace {
                metadata.children.append(TreeNode("Kubernetes namespace: \(namespace)"))
            }
            if !manifest.annotations.isEmpty {
                metadata.children.append(TreeNode("Annotations", manifest.annotations.keys.sorted().map {
                    TreeNode("\($0): \(manifest.annotations[$0]!)")
                }))
            }
            root.children.append(metadata)
        }
        if let criu = manifest.criu, sections.processTree {
            let shown = try shownProcesses(criu, sections: sections)
            if let process = shown.root {
                root.children.append(TreeNode("Process tree", [processNode(process, criu: criu, sections: sections)]))
            }
        }
        if sections.mounts, !manifest.mounts.isEmpty {
            root.children.append(TreeNode("Overview of mounts", manifest.mounts.map { mount in
                TreeNode("Destination: \(mount.destination)", [
                    TreeNode("Type: \(mount.type ?? "")"),
                    TreeNode("Source: \(mount.source ?? "")"),
                ])
            }))
        }
        if sections.ferryFacts {
            root.children.append(ferryNode(manifest))
        }
        return "\nDisplaying container checkpoint tree view from \(source)\n\n" + root.rendered() + "\n"
    }

    private static func processNode(_ process: ProcessNode, criu: CRIUSnapshot, sections: InspectSections) -> TreeNode {
        var label = "[\(process.pid)]  "
        if sections.commandLines, let cmdline = process.cmdline, !cmdline.isEmpty {
            label += cmdline
        } else {
            label += process.command
        }
        if let state = process.taskState, state != .alive { label += " (\(state.description))" }
        var node = TreeNode(label)
        if sections.environment, let environment = process.environment, !environment.isEmpty {
            node.children.append(TreeNode("Environment variables", environment.map { TreeNode($0) }))
        }
        if sections.files, let files = criu.openFiles.first(where: { $0.pid == process.pid })?.files, !files.isEmpty {
            node.children.append(TreeNode("Open files", files.map { TreeNode("[\($0.checkpointctlFD)]  \($0.path)") }))
        }
        if sections.sockets, let sockets = criu.sockets.first(where: { $0.pid == process.pid })?.sockets, !sockets.isEmpty {
            node.children.append(TreeNode("Open sockets", sockets.map { TreeNode(socketLine($0)) }))
        }
        for child in process.children {
            node.children.append(processNode(child, criu: criu, sections: sections))
        }
        return node
    }

    /// `[TCP (LISTEN)]  :::8080 -> :::0 (↑ 16.0 KB ↓ 128.0 KB)`, `[UNIX (STREAM)]  /run/x.sock`.
    static func socketLine(_ socket: OpenSocket) -> String {
        var line = "[\(socket.protocolName)"
        if !socket.state.isEmpty { line += " (\(socket.state))" }
        line += "]  "
        if socket.kind == .inet {
            line += "\(socket.sourceAddress):\(socket.sourcePort) -> \(socket.destinationAddress):\(socket.destinationPort)"
        } else {
            line += socket.unixAddressString
        }
        line += " (↑ \(socket.sendBufferText) ↓ \(socket.receiveBufferText))"
        return line
    }

    private static func ferryNode(_ manifest: CheckpointManifest) -> TreeNode {
        var node = TreeNode("Ferry")
        node.children.append(TreeNode(
            "Archive: \(manifest.archive.compression), \(Formatting.binarySize(manifest.archive.storedSize)) stored, \(manifest.archive.entryCount) entries"))
        if let architecture = manifest.criu?.architecture {
            node.children.append(TreeNode("Architecture: \(architecture.description)"))
        }
        if let imageID = manifest.container.imageID { node.children.append(TreeNode("Image ID: \(imageID)")) }
        if let sandbox = manifest.pod.sandboxID { node.children.append(TreeNode("Sandbox ID: \(sandbox)")) }
        if let diff = manifest.rootfsDiff {
            var text = "Root FS diff: \(diff.regularFiles) files (\(Formatting.binarySize(diff.fileBytes))), \(diff.directories) directories, \(diff.otherEntries) other entries"
            if diff.compression != "none" { text += ", \(diff.compression)" }
            if let error = diff.error { text += ", unreadable: \(error)" }
            node.children.append(TreeNode(text))
        }
        if !manifest.deletedFiles.isEmpty {
            node.children.append(TreeNode("Deleted files", manifest.deletedFiles.map { TreeNode($0) }))
        }
        if !manifest.bindMounts.isEmpty {
            node.children.append(TreeNode("Bind mounts", manifest.bindMounts.map {
                TreeNode("\($0.destination) <- \($0.source) (\($0.fileType ?? "unknown"))")
            }))
        }
        if !manifest.volumes.isEmpty {
            node.children.append(TreeNode("Volumes", manifest.volumes.keys.sorted().map {
                TreeNode("\($0): \(manifest.volumes[$0]!.regularFiles) files (\(Formatting.binarySize(manifest.volumes[$0]!.fileBytes)))")
            }))
        }
        if let memory = manifest.criu?.memory, !memory.isEmpty {
            node.children.append(TreeNode("Process memory", memory.map {
                TreeNode("[\($0.pid)]  \($0.command): \(Formatting.binarySize(Int64($0.memorySize))) (\(Formatting.binarySize(Int64($0.sharedMemorySize ?? 0))) shared)")
            }))
        }
        return node
    }

    /// checkpointctl's `show` table.
    public static func showTable(_ manifests: [(source: String, manifest: CheckpointManifest)]) -> String {
        var out = ""
        for (source, manifest) in manifests {
            let diff = manifest.rootfsDiff.map { $0.size > 0 ? Formatting.binarySize($0.size) : "" }
            var header = ["CONTAINER", "IMAGE", "ID", "RUNTIME", "CREATED", "ENGINE", "CHKPT SIZE"]
            var row = [
                manifest.container.name, manifest.container.image ?? "", String(manifest.container.id.prefix(12)),
                manifest.container.runtime ?? "", manifest.container.created ?? "", manifest.engine.rawValue,
                Formatting.binarySize(manifest.sizes.checkpoint),
            ]
            if let diff, !diff.isEmpty {
                header.append("ROOT FS DIFF SIZE")
                row.append(diff)
            }
            out += "\nDisplaying container checkpoint data from \(source)\n\n" + table(header: header, rows: [row]) + "\n"
        }
        return out
    }

    /// A left-aligned table with dashes under the header, three spaces between columns.
    public static func table(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var text = ""
            for (index, cell) in cells.enumerated() {
                text += index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 3)
            }
            return text + "\n"
        }
        return line(header) + line(header.map { String(repeating: "-", count: $0.count) }) + rows.map(line).joined()
    }
}
