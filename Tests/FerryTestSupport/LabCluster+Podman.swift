import Foundation

/// A container as `podman ps -a --format json` lists it.
public struct LabContainer: Sendable, Equatable {
    public var name: String
    public var id: String
    /// Podman's state: `running`, `exited`, `created`, `paused`, …
    public var state: String
}

extension LabCluster {
    /// The busybox shell loop of `runCounter`: a number in `/tmp/count` that goes up five times a second, held only
    /// in the shell's memory, so a restored container continues from where the checkpoint stopped it.
    public static let counterScript = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done"

    /// Runs a node's `podman` wrapper.
    public func podman(_ node: Node, _ arguments: String...) throws -> ProcessResult {
        try store(node).podman(arguments)
    }

    /// `podman(_:_:)` with an array.
    public func podman(_ node: Node, arguments: [String]) throws -> ProcessResult {
        try store(node).podman(arguments)
    }

    /// Starts a live counter container (`counterScript`) on a node, on the default network, and waits until it has
    /// counted. Its conmon and container pidfiles go to the run's shared `pidDirectory` (see there why).
    /// - Returns: the container ID.
    @discardableResult
    public func runCounter(node: Node, name: String = "lab-counter", extraArguments: [String] = []) throws -> String {
        let pidfiles = run.pidDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path
        let result = try podman(node, arguments: [
            "run", "-d", "--name", name, "--conmon-pidfile", pidfiles + ".conmon.pid", "--pidfile", pidfiles + ".pid",
        ] + extraArguments + [Self.image, "sh", "-c", Self.counterScript])
        guard result.status == 0 else { throw FixtureError("\(node): podman run \(name) failed: \(result.stderr)") }
        try Self.waitUntil("\(name) counts on \(node)", timeout: 20) { (count(node: node, name: name) ?? 0) > 0 }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The counter's current value (`podman exec NAME cat /tmp/count`), nil if the container is not running there.
    public func count(node: Node, name: String = "lab-counter") -> Int? {
        guard let result = try? podman(node, "exec", name, "cat", "/tmp/count"), result.status == 0 else { return nil }
        return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Names of the running containers on a node (`podman ps --format json`).
    public func runningContainers(node: Node) -> [String] {
        containers(node: node, all: false).filter { $0.state == "running" }.map(\.name)
    }

    /// Every container on a node with its state (`podman ps -a --format json`).
    public func allContainers(node: Node) -> [LabContainer] {
        containers(node: node, all: true)
    }

    /// A container's full ID on a node, nil when the node has no such container.
    public func containerID(node: Node, name: String) -> String? {
        allContainers(node: node).first { $0.name == name }?.id
    }

    private func containers(node: Node, all: Bool) -> [LabContainer] {
        guard let result = try? podman(node, arguments: ["ps"] + (all ? ["-a"] : []) + ["--format", "json"]),
              result.status == 0,
              let items = (try? JSONSerialization.jsonObject(with: result.stdoutData)) as? [[String: Any]] else { return [] }
        return items.map { item in
            LabContainer(name: (item["Names"] as? [String])?.first ?? "", id: item["Id"] as? String ?? "",
                         state: item["State"] as? String ?? "")
        }
    }
}
