import ArgumentParser
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
            Exit status: 0 when the container runs on the target (with --wait; without it, when the migration was \
            accepted); 1 when the migration failed or was refused; 2 when the service could not be reached; 3 when \
            --timeout passed before the migration finished.
            """
    )

    @OptionGroup var serverOptions: ServerOptions
    @Option(help: "A catalogued checkpoint (ID or unique prefix).") var checkpoint: String?
    @Option(help: "A running container to checkpoint first (with --from).") var container: String?
    @Option(help: "The node the container runs on.") var from: String?
    @Option(help: "The node to restore on.") var to: String
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
    @Option(name: .customLong("waive"), help: "Accept a preflight finding with this code anyway (repeatable).") var waivers: [String] = []
    @Option(help: "Idempotency key: retrying with the same key gives the same migration.") var idempotencyKey: String?
    @Flag(help: "Wait until the migration finishes, printing its progress on stderr.") var wait = false
    @Option(help: "Seconds to wait (and the migration's own deadline).") var timeout: Double = 3600
    @Flag(help: "Print the migration as JSON on stdout.") var json = false

    func validate() throws {
        guard (checkpoint == nil) != (container == nil) else {
            throw ValidationError("give --checkpoint ID, or --container NAME with --from NODE")
        }
        if container != nil && from == nil { throw ValidationError("--container needs --from NODE") }
        guard ["zstd", "gzip", "none"].contains(compress) else { throw ValidationError("--compress is zstd, gzip or none") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        let client = try serverOptions.client()
        var body: [String: Any] = ["target": to, "timeout_seconds": timeout]
        if let checkpoint { body["checkpoint"] = checkpoint }
        if let container, let from { body["source"] = ["node": from, "container": container] }
        var options: [String: Any] = [
            "tcp_established": tcpEstablished, "tcp_close": tcpClose, "keep": keep, "ignore_static_ip": ignoreStaticIP,
            "ignore_static_mac": ignoreStaticMAC, "ignore_rootfs": ignoreRootfs, "ignore_volumes": ignoreVolumes,
        ]
        if let name { options["name"] = name }
        if let pod { options["pod"] = pod }
        body["options"] = options
        body["checkpoint_options"] = ["compress": compress, "leave_running": leaveRunning, "tcp_established": tcpEstablished, "keep": keep]
        if !waivers.isEmpty { body["waive"] = waivers }

        var migration = try call(client, "POST", "/api/v1/migrations", body: body, idempotencyKey: idempotencyKey)
        let id = migration["id"] as? String ?? ""
        progress("migration \(id): \(migration["state"] as? String ?? "")")
        guard wait else {
            try finish(migration)
            return
        }
        let deadline = Date().addingTimeInterval(timeout)
        var seenEvents = 0
        while true {
            migration = try call(client, "GET", "/api/v1/migrations/\(id)")
            let events = migration["events"] as? [[String: Any]] ?? []
            for event in events.dropFirst(seenEvents) {
                progress("\(event["at"] as? String ?? "") \(event["state"] as? String ?? ""): \(event["message"] as? String ?? "")")
            }
            seenEvents = events.count
            if ["succeeded", "failed", "cancelled"].contains(migration["state"] as? String ?? "") { break }
            guard Date() < deadline else {
                if json { printJSON(migration) }
                FileHandle.standardError.write(Data("ferry: migration \(id) is still \(migration["state"] as? String ?? "") after \(Int(timeout)) s [TIMEOUT]\n".utf8))
                throw ExitCode(3)
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        try finish(migration)
    }

    /// Prints the outcome; exits 1 unless the migration succeeded (or, without --wait, was accepted).
    private func finish(_ migration: [String: Any]) throws {
        if json { printJSON(migration) } else { Output.write("\(migration["id"] as? String ?? "") \(migration["state"] as? String ?? "")\n") }
        if migration["state"] as? String == "failed" || migration["state"] as? String == "cancelled" {
            let error = migration["error"] as? [String: Any]
            FileHandle.standardError.write(Data("ferry: migration \(migration["id"] as? String ?? "") \(migration["state"] as? String ?? ""): \(error?["message"] as? String ?? "") [\(error?["code"] as? String ?? "FAILED")]\n".utf8))
            throw ExitCode.failure
        }
        if wait && migration["state"] as? String != "succeeded" { throw ExitCode.failure }
    }

    private func call(_ client: FerryClient, _ method: String, _ path: String, body: [String: Any]? = nil,
                      idempotencyKey: String? = nil) throws -> [String: Any] {
        try runClient {
            let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
            let (status, answer) = try client.call(method, path, json: data, idempotencyKey: idempotencyKey)
            guard (200..<300).contains(status) else { throw FerryClient.error(status: status, body: answer) }
            guard let object = try JSONSerialization.jsonObject(with: answer) as? [String: Any] else {
                throw FerryClientError(code: "BAD_RESPONSE", message: "the service's answer is not a JSON object")
            }
            return object
        }
    }

    private func progress(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private func printJSON(_ object: [String: Any]) {
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]) {
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
