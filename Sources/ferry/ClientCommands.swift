import ArgumentParser
import FerryClient
import FerryInspect
import Foundation

/// `--server` and `--token`, shared by the commands that talk to a Ferry service.
struct ServerOptions: ParsableArguments {
    @Option(help: "The Ferry service (default: $FERRY_SERVER, else http://127.0.0.1:8080).")
    var server: String?

    @Option(help: "Bearer token (default: $FERRY_TOKEN).")
    var token: String?

    func client() throws -> FerryClient {
        let text = server ?? ProcessInfo.processInfo.environment["FERRY_SERVER"] ?? "http://127.0.0.1:8080"
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ValidationError("--server must be an http(s) URL, not \(text)")
        }
        return FerryClient(server: url, token: token ?? ProcessInfo.processInfo.environment["FERRY_TOKEN"])
    }
}

/// Exit statuses of the client commands (documented in the README).
enum ClientExit {
    /// The service answered with an error (refused archive, unknown ID, bad token …).
    static let refused: Int32 = 1
    /// The service could not be reached, or the transfer broke off.
    static let unreachable: Int32 = 2
}

/// Runs a client call, turning a failure into one stderr line and the documented exit status.
func runClient<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as FerryClientError {
        FileHandle.standardError.write(Data("ferry: \(error.message) [\(error.code)]\n".utf8))
        throw ExitCode(error.isServerAnswer || error.code == "DIGEST_MISMATCH" || error.code == "FILE_ERROR" ? ClientExit.refused : ClientExit.unreachable)
    }
}

/// Shows transfer progress on stderr when it is a terminal.
final class ProgressLine: @unchecked Sendable {
    private let lock = NSLock()
    private var last = Date.distantPast
    private let enabled = isatty(2) == 1
    private let verb: String

    init(_ verb: String) { self.verb = verb }

    func update(_ done: Int64, _ total: Int64) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        guard Date().timeIntervalSince(last) > 0.2 || done == total else { return }
        last = Date()
        let percent = total > 0 ? Int(Double(done) / Double(total) * 100) : 0
        FileHandle.standardError.write(Data("\r\(verb) \(Formatting.binarySize(done)) of \(Formatting.binarySize(total)) (\(percent)%)   ".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// `ferry push`: upload an archive to the catalog.
struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Upload a checkpoint archive to a Ferry service; prints its digest.",
        discussion: "Exit status: 0 stored (or already there), 1 refused by the service, 2 service unreachable."
    )

    @OptionGroup var serverOptions: ServerOptions
    @Argument(help: "The checkpoint archive.") var archive: String
    @Option(help: "The node the checkpoint was taken on.") var node: String?
    @Option(name: .customLong("label"), help: "A label KEY=VALUE (repeatable).") var labels: [String] = []
    @Flag(help: "Print the service's JSON answer instead of the digest.") var json = false

    func validate() throws {
        _ = try LabelArguments.parse(labels)
    }

    func run() throws {
        let client = try serverOptions.client()
        let labelMap = try LabelArguments.parse(labels)
        let progress = ProgressLine("uploaded")
        let answer = try runClient {
            try client.push(file: URL(fileURLWithPath: archive), node: node, labels: labelMap, progress: progress.update)
        }
        progress.finish()
        if json {
            Output.write(String(decoding: try JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self) + "\n")
        } else {
            let checkpoint = answer["checkpoint"] as? [String: Any] ?? [:]
            Output.write("\(checkpoint["digest"] as? String ?? "")\n")
        }
    }
}

/// `ferry ls`: list the catalog.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the checkpoints of a Ferry service, newest first.",
        discussion: "Exit status: 0 listed, 1 refused by the service, 2 service unreachable."
    )

    @OptionGroup var serverOptions: ServerOptions
    @Option(help: "Only this Kubernetes namespace.") var namespace: String?
    @Option(help: "Only this pod.") var pod: String?
    @Option(help: "Only this container name.") var container: String?
    @Option(help: "Only this engine (Podman, CRI-O, containerd).") var engine: String?
    @Option(help: "Only checkpoints taken on this node.") var node: String?
    @Option(name: [.customShort("q"), .long], help: "Free text: name, ID, image, IP, label.") var query: String?
    @Option(name: .customLong("label"), help: "Only checkpoints with this label KEY=VALUE (repeatable).") var labels: [String] = []
    @Option(help: "Sort by uploaded, created, container, namespace, pod, engine, node, image or size.") var sort: String?
    @Flag(help: "Oldest (or smallest) first.") var ascending = false
    @Option(help: "At most this many rows (all pages are followed up to it).") var limit: Int = 100
    @Flag(help: "Print JSON (the items array) instead of a table.") var json = false

    func run() throws {
        let client = try serverOptions.client()
        var parameters: [String: String] = ["limit": String(min(limit, 1000))]
        for (key, value) in [("namespace", namespace), ("pod", pod), ("container", container), ("engine", engine), ("node", node), ("q", query), ("sort", sort)] {
            if let value { parameters[key] = value }
        }
        if !labels.isEmpty { parameters["label"] = labels.joined(separator: ",") }
        if ascending { parameters["order"] = "asc" }
        var items: [[String: Any]] = []
        while items.count < limit {
            let page = try runClient { try client.list(query: parameters) }
            items += page["items"] as? [[String: Any]] ?? []
            guard let next = page["next_cursor"] as? String else { break }
            parameters["cursor"] = next
        }
        items = Array(items.prefix(limit))
        if json {
            Output.write(String(decoding: try JSONSerialization.data(withJSONObject: items, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self) + "\n")
            return
        }
        let rows = items.map { item -> [String] in
            let container = item["container"] as? [String: Any] ?? [:]
            let pod = item["pod"] as? [String: Any] ?? [:]
            return [
                String((item["id"] as? String ?? "").prefix(12)),
                container["name"] as? String ?? "",
                pod["namespace"] as? String ?? "",
                pod["name"] as? String ?? "",
                item["engine"] as? String ?? "",
                item["source_node"] as? String ?? "",
                Formatting.binarySize((item["size"] as? NSNumber)?.int64Value ?? 0),
                item["uploaded_at"] as? String ?? "",
            ]
        }
        Output.write(InspectReport.table(header: ["ID", "CONTAINER", "NAMESPACE", "POD", "ENGINE", "NODE", "SIZE", "UPLOADED"], rows: rows))
    }
}

/// `ferry get`: download an archive, resuming and checking its digest.
struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a checkpoint archive; resumes an interrupted download and checks the SHA-256.",
        discussion: "Exit status: 0 downloaded and verified, 1 refused or digest mismatch, 2 service unreachable or transfer interrupted (run again to resume)."
    )

    @OptionGroup var serverOptions: ServerOptions
    @Argument(help: "Checkpoint ID (or a unique prefix of at least 8 hex digits).") var id: String
    @Option(name: [.customShort("o"), .long], help: "Where to write the archive (created 0600).") var output: String

    func run() throws {
        let client = try serverOptions.client()
        let progress = ProgressLine("downloaded")
        let digest = try runClient {
            try client.download(id, to: URL(fileURLWithPath: output), progress: progress.update)
        }
        progress.finish()
        Output.write("sha256:\(digest)\n")
    }
}

/// `ferry rm`: delete a checkpoint from the catalog.
struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a checkpoint from a Ferry service.")

    @OptionGroup var serverOptions: ServerOptions
    @Argument(help: "Checkpoint ID (or a unique prefix).") var id: String

    func run() throws {
        let client = try serverOptions.client()
        try runClient { try client.delete(id) }
    }
}

/// `--label KEY=VALUE` options (repeatable), as `push` and `checkpoint` take them.
enum LabelArguments {
    static func parse(_ labels: [String]) throws -> [String: String] {
        var map: [String: String] = [:]
        for label in labels {
            let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw ValidationError("--label takes KEY=VALUE, not \(label)") }
            map[String(parts[0])] = String(parts[1])
        }
        return map
    }
}
