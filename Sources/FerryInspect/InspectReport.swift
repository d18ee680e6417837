public import CheckpointArchive

/// Renders a ``CheckpointManifest`` the way checkpointctl 1.5 does (`inspect --format json`, the `inspect` tree and
/// the `show` table), so scripts written against checkpointctl keep working. Ferry's extra facts sit under a
/// `ferry` key in JSON and in an extra branch of the tree.
public enum InspectReport {
    /// checkpointctl's `inspect --format json`: an array with one object per archive.
    public static func json(_ manifests: [CheckpointManifest], sections: InspectSections) throws -> JSONValue {
        .array(try manifests.map { try object($0, sections: sections) })
    }

    /// One archive's JSON object.
    public static func object(_ manifest: CheckpointManifest, sections: InspectSections) throws -> JSONValue {
        var out = JSONObjectBuilder()
        let container = manifest.container
        out.add("container_name", .string(container.name))
        out.add("image", .string(container.image ?? ""))
        out.add("id", .string(container.id))
        out.add("runtime", .string(container.runtime ?? ""))
        out.add("created", .string(container.created ?? ""))
        out.add("checkpointed", nonEmpty: container.checkpointed)
        out.add("engine", .string(manifest.engine.rawValue))
        out.add("ip", nonEmpty: summaryIP(manifest))
        out.add("mac", nonEmpty: summaryMAC(manifest))
        if !manifest.networks.isEmpty {
            out.add("networks", .array(manifest.networks.map { network in
                var interfaces = JSONObjectBuilder()
                for interface in network.interfaces {
                    var fields = JSONObjectBuilder()
                    fields.add("ip", nonEmpty: interface.addresses.first)
                    fields.add("mac", nonEmpty: interface.mac)
                    fields.add("gateway", nonEmpty: interface.gateways.first)
                    interfaces.add(interface.name, fields.value)
                }
                return .object([("name", .string(network.name)), ("interfaces", interfaces.value)])
            }))
        }
        var size = JSONObjectBuilder()
        size.add("total_size", .int(manifest.sizes.checkpoint))
        size.add("memory_pages_size", .int(manifest.sizes.memoryPages))
        if manifest.sizes.amdGPUPages > 0 { size.add("amd_gpu_memory_pages_size", .int(manifest.sizes.amdGPUPages)) }
        if let diff = manifest.rootfsDiff, diff.size > 0 { size.add("root_fs_diff_size", .int(diff.size)) }
        out.add("checkpoint_size", size.value)

        if sections.statistics, let stats = manifest.statistics {
            out.add("statistics", .object([
                ("freezing_time", .int(Int64(stats.freezingTime))),
                ("frozen_time", .int(Int64(stats.frozenTime))),
                ("memdump_time", .int(Int64(stats.memdumpTime))),
                ("memwrite_time", .int(Int64(stats.memwriteTime))),
                ("pages_scanned", .int(Int64(stats.pagesScanned))),
                ("pages_written", .int(Int64(stats.pagesWritten))),
            ]))
        }
        if sections.metadata {
            var metadata = JSONObjectBuilder()
            metadata.add("pod_name", nonEmpty: manifest.pod.name)
            metadata.add("kubernetes_namespace", nonEmpty: manifest.pod.namespace)
            if !manifest.annotations.isEmpty {
                metadata.add("annotations", .object(manifest.annotations.keys.sorted().map {
                    ($0, .string(manifest.annotations[$0]!))
                }))
            }
            out.add("metadata", metadata.value)
        }
        if let criu = manifest.criu {
            let shown = try shownProcesses(criu, sections: sections)
            if sections.processTree, let root = shown.root {
                out.add("process_tree", processJSON(root, sections: sections))
            }
            if sections.files {
                let entries = criu.openFiles.filter { shown.pids.contains($0.pid) && !$0.files.isEmpty }
                if !entries.isEmpty {
                    out.add("file_descriptors", .array(entries.map { entry in
                        .object([
                            ("pid", .int(Int64(entry.pid))),
                            ("open_files", .array(entry.files.map { file in
                                .object([
                                    ("type", .string(file.type)),
                                    ("fd", .string(file.checkpointctlFD)),
                                    ("path", .string(file.path)),
                                ])
                            })),
                        ])
                    }))
                }
            }
            if sections.sockets {
                let entries = criu.sockets.filter { shown.pids.contains($0.pid) && !$0.sockets.isEmpty }
                if !entries.isEmpty {
                    out.add("sockets", .array(entries.map { entry in
                        .object([
                            ("pid", .int(Int64(entry.pid))),
                            ("open_sockets", .array(entry.sockets.map(socketJSON))),
                        ])
                    }))
                }
            }
        }
        if sections.mounts, !manifest.mounts.isEmpty {
            out.add("mounts", .array(manifest.mounts.map { mount in
                .object([
                    ("destination", .string(mount.destination)),
                    ("type", .string(mount.type ?? "")),
                    ("source", .string(mount.source ?? "")),
                ])
            }))
        }
        if sections.ferryFacts {
            out.add("ferry", ferryFacts(manifest))
        }
        return out.value
    }

    // MARK: - Shared pieces

    /// checkpointctl's top-level `ip`: CRI-O's `IP.0`, or every Podman interface's address without its prefix,
    /// joined by ", ".
    static func summaryIP(_ manifest: CheckpointManifest) -> String? {
        if manifest.engine == .crio { return manifest.podIPs.first }
        let addresses = manifest.networks.flatMap(\.interfaces).compactMap { interface in
            interface.hostAddresses.first
        }
        return addresses.isEmpty ? nil : addresses.joined(separator: ", ")
    }

    static func summaryMAC(_ manifest: CheckpointManifest) -> String? {
        let macs = manifest.networks.flatMap(\.interfaces).compactMap(\.mac)
        return macs.isEmpty ? nil : macs.joined(separator: ", ")
    }

    struct ShownProcesses {
        var root: ProcessNode?
        var pids: Set<UInt32>
    }

    /// The subtree that `--pid` selects (the whole tree without it).
    static func shownProcesses(_ criu: CRIUSnapshot, sections: InspectSections) throws -> ShownProcesses {
        guard var root = criu.root else { return ShownProcesses(root: nil, pids: []) }
        if let pid = sections.rootPID {
            guard let found = find(pid, in: root) else {
                throw CheckpointError(.processNotFound, "no process with PID \(pid) in the checkpoint")
            }
            root = found
        }
        var pids: Set<UInt32> = []
        collectPIDs(root, into: &pids)
        return ShownProcesses(root: root, pids: pids)
    }

    private static func find(_ pid: UInt32, in node: ProcessNode) -> ProcessNode? {
        if node.pid == pid { return node }
        for child in node.children {
            if let found = find(pid, in: child) { return found }
        }
        return nil
    }

    private static func collectPIDs(_ node: ProcessNode, into pids: inout Set<UInt32>) {
        pids.insert(node.pid)
        for child in node.children { collectPIDs(child, into: &pids) }
    }

    private static func processJSON(_ node: ProcessNode, sections: InspectSections) -> JSONValue {
        var out = JSONObjectBuilder()
        out.add("pid", .int(Int64(node.pid)))
        out.add("command", .string(node.command))
        if sections.commandLines { out.add("cmdline", nonEmpty: node.cmdline) }
        if let state = node.taskState { out.add("task_state", .string(state.description)) }
        if sections.environment, let environment = node.environment, !environment.isEmpty {
            out.add("environment_variables", .object(environmentMap(environment)))
        }
        if !node.children.isEmpty {
            out.add("children", .array(node.children.map { processJSON($0, sections: sections) }))
        }
        return out.value
    }

    /// `KEY=VALUE` strings as checkpointctl's map: sorted by key, the last duplicate winning.
    static func environmentMap(_ environment: [String]) -> [(String, JSONValue)] {
        var map: [String: String] = [:]
        for variable in environment {
            let parts = variable.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            map[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return map.keys.sorted().map { ($0, .string(map[$0]!)) }
    }

    private static func socketJSON(_ socket: OpenSocket) -> JSONValue {
        var data = JSONObjectBuilder()
        // checkpointctl names an inet socket's type by its protocol (TCP, UDP), not SOCK_STREAM/SOCK_DGRAM.
        data.add("type", .string(socket.kind == .inet ? socket.protocolName : socket.type))
        if socket.kind == .unix { data.add("address", nonEmpty: socket.unixAddressString) }
        data.add("state", nonEmpty: socket.state)
        data.add("src", nonEmpty: socket.sourceAddress)
        if socket.sourcePort != 0 { data.add("src_port", .int(Int64(socket.sourcePort))) }
        data.add("dst", nonEmpty: socket.destinationAddress)
        if socket.destinationPort != 0 { data.add("dst_port", .int(Int64(socket.destinationPort))) }
        data.add("send_buf", .string(socket.sendBufferText))
        data.add("recv_buf", .string(socket.receiveBufferText))
        return .object([("protocol", .string(socket.protocolName)), ("data", data.value)])
    }

    private static func tarJSON(_ summary: TarSummary) -> JSONValue {
        var out = JSONObjectBuilder()
        out.add("size", .int(summary.size))
        out.add("compression", .string(summary.compression))
        out.add("regular_files", .int(Int64(summary.regularFiles)))
        out.add("directories", .int(Int64(summary.directories)))
        out.add("other_entries", .int(Int64(summary.otherEntries)))
        out.add("file_bytes", .int(summary.fileBytes))
        out.add("error", nonEmpty: summary.error)
        return out.value
    }

    /// Facts checkpointctl does not report, under `ferry` (documented in the README).
    private static func ferryFacts(_ manifest: CheckpointManifest) -> JSONValue {
        var out = JSONObjectBuilder()
        out.add("archive", .object([
            ("compression", .string(manifest.archive.compression)),
            ("stored_size", .int(manifest.archive.storedSize)),
            ("entries", .int(Int64(manifest.archive.entryCount))),
            ("root_entries", .array(manifest.archive.rootEntries.map(JSONValue.string))),
        ]))
        var container = JSONObjectBuilder()
        container.add("config_name", nonEmpty: manifest.container.configName)
        container.add("image_id", nonEmpty: manifest.container.imageID)
        container.add("image_requested", nonEmpty: manifest.container.imageRequested)
        out.add("container", container.value)
        var pod = JSONObjectBuilder()
        pod.add("name", nonEmpty: manifest.pod.name)
        pod.add("namespace", nonEmpty: manifest.pod.namespace)
        pod.add("uid", nonEmpty: manifest.pod.uid)
        pod.add("sandbox_id", nonEmpty: manifest.pod.sandboxID)
        out.add("pod", pod.value)
        if !manifest.podIPs.isEmpty { out.add("pod_ips", .array(manifest.podIPs.map(JSONValue.string))) }
        if let architecture = manifest.criu?.architecture { out.add("architecture", .string(architecture.description)) }
        if let inventory = manifest.criu?.inventory {
            var criu = JSONObjectBuilder()
            criu.add("image_version", .int(Int64(inventory.imageVersion)))
            criu.add("lsm", nonEmpty: inventory.lsmName)
            criu.add("network_lock", nonEmpty: inventory.networkLockMethodName)
            if let tcpClose = inventory.tcpClose { criu.add("tcp_close", .bool(tcpClose)) }
            if let plugins = inventory.plugins, !plugins.isEmpty {
                criu.add("plugins", .array(plugins.map(JSONValue.string)))
            }
            out.add("criu", criu.value)
        }
        if let diff = manifest.rootfsDiff { out.add("rootfs_diff", tarJSON(diff)) }
        out.add("deleted_files", .array(manifest.deletedFiles.map(JSONValue.string)))
        if !manifest.bindMounts.isEmpty {
            out.add("bind_mounts", .array(manifest.bindMounts.map { mount in
                var fields = JSONObjectBuilder()
                fields.add("source", .string(mount.source))
                fields.add("destination", .string(mount.destination))
                fields.add("file_type", nonEmpty: mount.fileType)
                if let permissions = mount.permissions { fields.add("permissions", .int(Int64(permissions))) }
                return fields.value
            }))
        }
        if let shm = manifest.devShm { out.add("devshm", tarJSON(shm)) }
        if !manifest.volumes.isEmpty {
            out.add("volumes", .object(manifest.volumes.keys.sorted().map { ($0, tarJSON(manifest.volumes[$0]!)) }))
        }
        if let memory = manifest.criu?.memory, !memory.isEmpty {
            out.add("memory", .array(memory.map { process in
                .object([
                    ("pid", .int(Int64(process.pid))),
                    ("command", .string(process.command)),
                    ("memory_size", .int(Int64(process.memorySize))),
                    ("shared_memory_size", .int(Int64(process.sharedMemorySize ?? 0))),
                ])
            }))
        }
        out.add("has_dump_log", .bool(manifest.hasDumpLog))
        return out.value
    }
}
