import ArgumentParser
import FerryAPI
import FerryClient
import FerryInspect
import Foundation

/// `ferry migrate`: move a checkpoint, or a running container, to another node through the service.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Restore a checkpoint on another node, or checkpoint a running container and move it.",
        discussion: """
            ferry migrate --checkpoint ID --to NODE [options] [--wait]
            ferry migrate --container NAME --from NODE --to NODE [options] [--wait]
            ferry migrate --checkpoint ID --to-kubernetes --node NODE [--namespace NS] [--pod-name NAME] \
              [--pull-secret NAME] --manifest-only [--json]   (the Pod that restores it; kubectl apply -f - it)
            Exit status: 0 when the container runs on the target (with --wait; without it, when the migration was \
            accepted); 1 when the migration failed or was refused; 2 when the service could not be reached; 3 when \
            --timeout passed before the migration finished.
            """
    )

    @OptionGroup var serverOptions: ServerOptions
    @Option(help: "A catalogued checkpoint (ID or unique prefix).") var checkpoint: String?
    @Option(help: "A running container to checkpoint first (with --from).") var container: String?
    @Option(help: "The node the container runs on.") var from: String?
    @Option(help: "The node to restore on.") var to: String?
    @Flag(help: "Restore into Kubernetes: a Pod whose image is the checkpoint's oci_reference (with --node).") var toKubernetes = false
    @Option(help: "With --to-kubernetes: the Kubernetes node the Pod is pinned to.") var node: String?
    @Option(help: "With --to-kubernetes: the Pod's namespace (default: the checkpointed pod's, else default).") var namespace: String?
    @Option(help: "With --to-kubernetes: the Pod's name (default: the checkpointed pod's, with -restored).") var podName: String?
    @Option(help: "With --to-kubernetes: an image pull secret holding a Ferry token for the registry.") var pullSecret: String?
    @Flag(help: "With --to-kubernetes: print the Pod manifest (YAML; JSON with --json) instead of creating it.") var manifestOnly = false
    @Option(help: "With --to-kubernetes: the kubeconfig to use (default: $KUBECONFIG, the pod's service account, ~/.kube/config).") var kubeconfig: String?
    @Option(help: "With --to-kubernetes: the kubeconfig context (default: its current-context).") var context: String?
    @Option(help: "Restore under this name (Podman drops the static IP and MAC then).") var name: String?
    @Flag(help: "Restore established TCP connections.") var tcpEstablished = false
    @Flag(help: "Restore with TCP connections closed.") var tcpClose = false
    @Flag(help: "Keep the runtime's work files.") var keep = false
    @Flag(help: "Do not request the checkpoint's static IP.") var ignoreStaticIP = false
    @Flag(help: "Do not request the checkpoint's static MAC.") var ignoreStaticMAC = false
    @Flag(help: "Do not apply the root file system diff.") var ignoreRootfs = false
    @Flag(help: "Do not restore named volumes.") var ignoreVolumes = false
    @Option(help: "Restore into this pod.") var pod: String?
    @Option(help: "Compression of the checkpoint taken on the source: zstd, gzip or none.") var compress: String = "zstd"
    @Flag(help: "Leave the source container running after checkpointing it.") var leaveRunning = false
    @Flag(help: "Let the target download only after the upload is catalogued (no cut-through).") var noCutThrough = false
    @Option(name: .customLong("waive"), help: "Accept a preflight finding with this code anyway (repeatable).") var waivers: [String] = []
    @Option(help: "Idempotency key: retrying with the same key gives the same migration.") var idempotencyKey: String?
    @Flag(help: "Wait until the migration finishes, printing its progress on stderr.") var wait = false
    @Option(help: "Seconds to wait (and the migration's own deadline).") var timeout: Double = 3600
    @Flag(help: "Print the migration as JSON on stdout.") var json = false

    func validate() throws {
        if toKubernetes {
            guard checkpoint != nil, container == nil, to == nil else {
                throw ValidationError("--to-kubernetes restores a catalogued checkpoint: give --checkpoint ID, not --to or --container")
            }
            guard node != nil else { throw ValidationError("--to-kubernetes needs --node NODE, the node the Pod is pinned to") }
            if let podName, !RestorePod.isDNSLabel(podName) { throw ValidationError("--pod-name is a DNS label: a-z, 0-9 and '-', at most 63") }
            if let namespace, !RestorePod.isDNSLabel(namespace) { throw ValidationError("--namespace is a DNS label: a-z, 0-9 and '-', at most 63") }
            guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
            return
        }
        guard to != nil else { throw ValidationError("give --to NODE (or --to-kubernetes --node NODE)") }
        guard (checkpoint == nil) != (container == nil) else {
            throw ValidationError("give --checkpoint ID, or --container NAME with --from NODE")
        }
        if container != nil && from == nil { throw ValidationError("--container needs --from NODE") }
        guard ["zstd", "gzip", "none"].contains(compress) else { throw ValidationError("--compress is zstd, gzip or none") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        let client = try serverOptions.client()
        if toKubernetes, let checkpoint, let node {
            if manifestOnly {
                try printRestorePod(client: client, checkpoint: checkpoint, node: node)
            } else {
                try restoreInKubernetes(client: client, checkpoint: checkpoint, node: node)
            }
            return
        }
        guard let to else { throw ValidationError("give --to NODE") }
        var options: [String: JSONScalar] = [
            "tcp_established": .bool(tcpEstablished), "tcp_close": .bool(tcpClose), "keep": .bool(keep),
            "ignore_static_ip": .bool(ignoreStaticIP), "ignore_static_mac": .bool(ignoreStaticMAC),
            "ignore_rootfs": .bool(ignoreRootfs), "ignore_volumes": .bool(ignoreVolumes),
        ]
        if let name { options["name"] = .string(name) }
        if let pod { options["pod"] = .string(pod) }
        let request = MigrationRequest(
            checkpoint: checkpoint, source: container.flatMap { container in from.map { .init(node: $0, container: container) } },
            target: to, options: options,
            checkpointOptions: ["compress": .string(compress), "leave_running": .bool(leaveRunning),
                                "tcp_established": .bool(tcpEstablished), "keep": .bool(keep)],
            waive: waivers.isEmpty ? nil : waivers, timeoutSeconds: timeout, cutThrough: noCutThrough ? false : nil)
        var migration = try runClient {
            try client.decode(MigrationView.self, "POST", "/api/v1/migrations", json: try JSONEncoder.wire.encode(request),
                              idempotencyKey: idempotencyKey)
        }
        progress("migration \(migration.id): \(migration.state.rawValue)")
        guard wait else {
            try finish(migration)
            return
        }
        // Long polls: the service answers as soon as something happens, so nothing here sleeps.
        let deadline = Date().addingTimeInterval(timeout)
        var seenEvents = 0
        while true {
            let remaining = deadline.timeIntervalSinceNow
            let wait = max(0, min(25, remaining))
            migration = try runClient {
                try client.decode(MigrationView.self, "GET", "/api/v1/migrations/\(migration.id)",
                                  query: ["wait": String(Int(wait.rounded(.up))), "events_after": String(seenEvents)],
                                  timeout: wait + 30)
            }
            let events = migration.events ?? []
            for event in events.dropFirst(seenEvents) {
                progress("\(event.at) \(event.state.rawValue): \(event.message)")
            }
            seenEvents = events.count
            if migration.state.isTerminal { break }
            guard Date() < deadline else {
                if json { printJSON(migration) }
                FileHandle.standardError.write(Data("ferry: migration \(migration.id) is still \(migration.state.rawValue) after \(Int(timeout)) s [TIMEOUT]\n".utf8))
                throw ExitCode(3)
            }
        }
        try finish(migration)
    }

    /// Prints the outcome and the phases; exits 1 unless the migration succeeded (or, without --wait, was accepted).
    func finish(_ migration: MigrationView) throws {
        if json {
            printJSON(migration)
        } else {
            Output.write("\(migration.id) \(migration.state.rawValue)\(migration.runningOn.map { " (running on \($0))" } ?? "")\n")
        }
        // With the progress on stderr, whatever stdout carries.
        if wait, migration.state.isTerminal, !migration.phases.isEmpty { progress(Self.phaseLine(migration.phases)) }
        if migration.state == .failed || migration.state == .cancelled {
            let error = migration.error
            var line = "ferry: migration \(migration.id) \(migration.state.rawValue): \(error?.message ?? "")"
            if let rolledBack = migration.rolledBack {
                line += rolledBack ? " (rolled back: it runs on \(migration.source?.node ?? "the source") again)" : " (NOT rolled back)"
            }
            FileHandle.standardError.write(Data("\(line) [\(error?.code ?? "FAILED")]\n".utf8))
            throw ExitCode.failure
        }
        if wait && migration.state != .succeeded { throw ExitCode.failure }
    }

    /// `phases: preflight 92 ms, checkpoint 431 ms (frozen 120 ms), upload 12 ms, transfer 9 ms, restore 402 ms`.
    static func phaseLine(_ phases: [MigrationPhase]) -> String {
        let order = ["preflight", "checkpoint", "frozen", "upload", "transfer", "restore", "rollback"]
        let sorted = phases.sorted { (order.firstIndex(of: $0.name) ?? 99) < (order.firstIndex(of: $1.name) ?? 99) }
        return "phases: " + sorted.compactMap { phase in
            phase.durationMs.map { "\(phase.name) \($0) ms" }
        }.joined(separator: ", ")
    }

    func progress(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private func printJSON(_ migration: MigrationView) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        if let data = try? encoder.encode(migration) {
            Output.write(String(decoding: data, as: UTF8.self) + "\n")
        }
    }
}

/// `ferry nodes`: the registered nodes and whether they are up.
struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nodes", abstract: "List the nodes whose agents registered.")

    @OptionGroup var serverOptions: ServerOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let client = try serverOptions.client()
        let answer = try runClient { () -> [String: Any] in
            let (status, data) = try client.call("GET", "/api/v1/nodes")
            guard status == 200 else { throw FerryClient.error(status: status, body: data) }
            return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
        }
        let items = answer["items"] as? [[String: Any]] ?? []
        if json {
            let data = try JSONSerialization.data(withJSONObject: items, options: [.sortedKeys, .prettyPrinted])
            Output.write(String(decoding: data, as: UTF8.self) + "\n")
            return
        }
        let rows = items.map { node -> [String] in
            let facts = node["facts"] as? [String: Any] ?? [:]
            return [node["name"] as? String ?? "", (node["up"] as? Bool) == true ? "up" : "down", node["driver"] as? String ?? "",
                    facts["architecture"] as? String ?? "", (facts["criu_version"] as? Int).map(String.init) ?? "",
                    node["agent_url"] as? String ?? "", node["last_seen_at"] as? String ?? ""]
        }
        Output.write(InspectReport.table(header: ["NODE", "STATE", "DRIVER", "ARCH", "CRIU", "AGENT", "LAST SEEN"], rows: rows))
    }
}

extension MigrateCommand {
    /// `--to-kubernetes --manifest-only`: the Pod that restores the checkpoint.
    private func printRestorePod(client: FerryClient, checkpoint: String, node: String) throws {
        let manifest = try restorePod(checkpointSummary(client: client, checkpoint: checkpoint), node: node, migration: nil).pod
        if json {
            print(String(decoding: try Self.manifestEncoder.encode(manifest), as: UTF8.self))
        } else {
            print(manifest.yaml(), terminator: "")
        }
    }

    static var manifestEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }

    /// `GET /api/v1/checkpoints/{id}`: the checkpoint, its facts and its inspection.
    func checkpointSummary(client: FerryClient, checkpoint: String) throws -> [String: Any] {
        try runClient { try client.checkpoint(checkpoint) }
    }

    /// The Pod for a catalogued checkpoint (from its `checkpointSummary`), and what preflight needs of it.
    func restorePod(_ summary: [String: Any], node: String,
                    migration: String?) throws -> (pod: RestorePod, facts: KubernetesPreflight.Checkpoint) {
        let record = summary["checkpoint"] as? [String: Any] ?? [:]
        guard let id = record["id"] as? String, let reference = record["oci_reference"] as? String else {
            FileHandle.standardError.write(Data("ferry: checkpoint \(checkpoint ?? "") is a \(record["compression"] as? String ?? "") archive, which no image layer type fits: Kubernetes cannot pull it [NO_IMAGE_REFERENCE]\n".utf8))
            throw ExitCode(ClientExit.refused)
        }
        let facts = summary["facts"] as? [String: Any] ?? [:]
        let limits = facts["resources"] as? [String: Any] ?? [:]
        func number(_ key: String) -> Int64? { (limits[key] as? NSNumber)?.int64Value }
        let pod = record["pod"] as? [String: Any] ?? [:]
        let manifest = RestorePod(
            checkpoint: id, reference: reference, container: (record["container"] as? [String: Any])?["name"] as? String ?? "restored",
            originalPod: pod["name"] as? String, originalNamespace: pod["namespace"] as? String,
            sourceNode: record["source_node"] as? String, node: node, podName: podName, namespace: namespace, pullSecret: pullSecret,
            labels: (facts["labels"] as? [String: String]) ?? [:],
            resources: RestorePod.resources(memoryLimitBytes: number("memory_limit_bytes"), cpuQuota: number("cpu_quota"),
                                            cpuPeriod: number("cpu_period"), cpuShares: number("cpu_shares")),
            migration: migration)
        let checkpointFacts = KubernetesPreflight.Checkpoint(
            imageDigestReference: facts["image_digest_reference"] as? String, imageID: facts["image_id"] as? String,
            image: facts["image"] as? String, architecture: facts["architecture"] as? String)
        return (manifest, checkpointFacts)
    }

}
