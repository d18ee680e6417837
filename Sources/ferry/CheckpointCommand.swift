import ArgumentParser
import FerryAPI
import FerryClient
import Foundation

/// `ferry checkpoint --node NODE CONTAINER`: checkpoint a container through its node's agent and catalogue the
/// archive, without moving it. Waits until the checkpoint is catalogued and prints its digest, as `ferry push`.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Checkpoint a container on a node through its agent and catalogue the archive; prints the digest.")

    @OptionGroup var serverOptions: ServerOptions
    @Option(help: "The node the container runs on.") var node: String
    @Argument(help: "The container's name or ID on the node (NAMESPACE/POD/CONTAINER on a kubelet node).") var container: String
    @Flag(help: "Keep the container running (the kubelet always does).") var leaveRunning = false
    @Flag(help: "Dump established TCP connections too.") var tcpEstablished = false
    @Option(name: .customLong("label"), help: "A label KEY=VALUE (repeatable).") var labels: [String] = []
    @Option(help: "Seconds to wait for the checkpoint (default 600).") var timeout: Double = 600
    @Flag(help: "Print the checkpoint job as JSON instead of the digest.") var json = false

    func run() throws {
        let labelMap = try LabelArguments.parse(labels)
        let client = try serverOptions.client()
        let request = NodeCheckpointRequest(container: container, leaveRunning: leaveRunning ? true : nil,
                                            tcpEstablished: tcpEstablished ? true : nil, labels: labelMap.isEmpty ? nil : labelMap)
        var view = try runClient {
            try client.decode(NodeCheckpointView.self, "POST", "/api/v1/nodes/\(node)/checkpoints",
                              json: try JSONEncoder.wire.encode(request), timeout: 30)
        }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !view.state.isFinished {
            guard Date() < deadline else {
                FileHandle.standardError.write(Data("ferry: the checkpoint of \(container) on \(node) is still \(view.state.rawValue) after \(Int(timeout)) s [TIMEOUT]\n".utf8))
                throw ExitCode(3)
            }
            let wait = max(1, min(25, Int(deadline.timeIntervalSinceNow)))
            view = try runClient {
                try client.decode(NodeCheckpointView.self, "GET", "/api/v1/nodes/\(node)/checkpoints/\(view.job)",
                                  query: ["wait": String(wait)], timeout: Double(wait + 15))
            }
        }
        if json {
            let encoder = JSONEncoder.wire
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(view), as: UTF8.self))
        }
        guard view.state == .succeeded, let checkpoint = view.checkpoint else {
            let error = view.error
            FileHandle.standardError.write(Data("ferry: the checkpoint of \(container) on \(node) failed: \(error?.message ?? "no reason given") [\(error?.code ?? "FAILED")]\n".utf8))
            throw ExitCode(ClientExit.refused)
        }
        if !json { print("sha256:\(checkpoint)") }
    }
}
