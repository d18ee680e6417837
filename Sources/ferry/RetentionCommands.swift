import ArgumentParser
import FerryAPI
import FerryClient
import FerryInspect
import Foundation

/// `ferry gc [--dry-run]`: apply the service's retention policies now.
struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Apply the service's retention policies now (or list what they would delete).")

    @OptionGroup var serverOptions: ServerOptions
    @Flag(help: "Only list what would be deleted, and why.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let client = try serverOptions.client()
        let result = try runClient {
            try client.decode(RetentionResult.self, "POST", "/api/v1/gc", query: dryRun ? ["dry_run": "true"] : [:], timeout: 600)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            Output.write(String(decoding: try encoder.encode(result), as: UTF8.self) + "\n")
            return
        }
        let verb = dryRun ? "would delete" : "deleted"
        for deletion in result.deleted {
            Output.write("\(verb) \(deletion.checkpoint.prefix(12)) \(Self.identity(deletion)) \(Formatting.binarySize(deletion.size)) uploaded \(deletion.uploadedAt) (\(deletion.policy): \(deletion.reason))\n")
        }
        for block in result.blocked {
            Output.write("kept over \(block.limit) \(block.limitValue) in \(block.scope) (\(block.policy)): \(block.remaining) remain; pinned or in use: \(block.blocking.map { String($0.prefix(12)) }.joined(separator: ", "))\n")
        }
        if result.deleted.isEmpty && result.blocked.isEmpty { Output.write("nothing to delete\n") }
    }

    static func identity(_ deletion: RetentionDeletion) -> String {
        deletion.pod.isEmpty && deletion.namespace.isEmpty ? deletion.container : "\(deletion.namespace)/\(deletion.pod)/\(deletion.container)"
    }
}

/// `ferry pin ID --reason R`: keep a checkpoint whatever the retention policies say.
struct PinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pin", abstract: "Keep a checkpoint whatever the retention policies say.")

    @OptionGroup var serverOptions: ServerOptions
    @Argument(help: "Checkpoint ID (or a unique prefix).") var id: String
    @Option(help: "Why it is kept (shown with the checkpoint).") var reason: String

    func run() throws {
        let client = try serverOptions.client()
        let body = try JSONEncoder().encode(PinRequest(reason: reason))
        try runClient {
            let (status, data) = try client.call("PUT", "/api/v1/checkpoints/\(id)/pin", json: body)
            guard status == 200 else { throw FerryClient.error(status: status, body: data) }
        }
    }
}

/// `ferry unpin ID`.
struct UnpinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Let the retention policies delete a checkpoint again.")

    @OptionGroup var serverOptions: ServerOptions
    @Argument(help: "Checkpoint ID (or a unique prefix).") var id: String

    func run() throws {
        let client = try serverOptions.client()
        try runClient {
            let (status, data) = try client.call("DELETE", "/api/v1/checkpoints/\(id)/pin")
            guard status == 200 else { throw FerryClient.error(status: status, body: data) }
        }
    }
}
