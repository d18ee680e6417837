import FerryValidation
import Foundation

/// What `podman … --format json` says about the images, containers and networks on this node, parsed from the
/// commands' output. Every list is nil when Podman is absent or its output cannot be read (unknown, not empty).
struct PodmanInventory {
    var images: [String]?
    var containerNames: [String]?
    var containerIDs: [String]?
    var containerIPs: [String]?
    var containerMACs: [String]?
    var networks: [TargetFacts.Network]?

    /// Asks the local Podman (nothing at all when `podman` is not in `PATH`). The three independent questions run
    /// at once: each `podman` start costs tens of milliseconds, and a migration's preflight waits for them.
    static func collect(cache: PodmanStateCache) -> PodmanInventory {
        cache.inventory(collectNow)
    }

    /// Asks Podman now; also returns each container's inspect object by name and by ID, for ``PodmanStateCache``.
    static func collectNow() -> (PodmanInventory, inspected: [String: String]) {
        guard HostSystem.findExecutable("podman") != nil else { return (PodmanInventory(), [:]) }
        var inspected: [String: String] = [:]
        let answers = Answers()
        ParallelWork.run([
            { answers.set(\.images, FactCommand.output(["podman", "images", "--format", "json"])) },
            { answers.set(\.containers, FactCommand.output(["podman", "ps", "-a", "--format", "json"])) },
            { answers.set(\.networks, FactCommand.output(["podman", "network", "ls", "--format", "json"])) },
        ])
        var inventory = PodmanInventory()
        inventory.images = answers.get(\.images).flatMap(images(from:))
        inventory.networks = answers.get(\.networks).flatMap(networks(from:))
        if let containers = answers.get(\.containers).flatMap(containers(from:)) {
            inventory.containerNames = containers.names
            inventory.containerIDs = containers.ids
            if containers.ids.isEmpty {
                inventory.containerIPs = []
                inventory.containerMACs = []
            } else if let output = FactCommand.output(["podman", "container", "inspect", "--format", "json"] + containers.ids),
                      let addresses = addresses(from: output) {
                inventory.containerIPs = addresses.ips
                inventory.containerMACs = addresses.macs
                inspected = inspectObjects(output)
            }
        }
        return (inventory, inspected)
    }

    /// Each object of a `podman container inspect` array, as a one-element array, by its `Name` and its `Id`.
    static func inspectObjects(_ output: String) -> [String: String] {
        guard let items = array(output) else { return [:] }
        var result: [String: String] = [:]
        for item in items {
            guard let data = try? JSONSerialization.data(withJSONObject: [item]) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            if var name = item["Name"] as? String {
                if name.hasPrefix("/") { name.removeFirst() }
                result[name] = text
            }
            if let id = item["Id"] as? String { result[id] = text }
        }
        return result
    }

    /// The raw outputs gathered by ``collect()``'s threads.
    private final class Answers: @unchecked Sendable {
        // @unchecked Sendable invariant: `values` is only touched with `lock` held.
        struct Values {
            var images: String?
            var containers: String?
            var networks: String?
        }
        private let lock = NSLock()
        private var values = Values()

        func set(_ key: WritableKeyPath<Values, String?>, _ value: String?) {
            lock.lock()
            values[keyPath: key] = value
            lock.unlock()
        }

        func get(_ key: KeyPath<Values, String?>) -> String? {
            lock.lock()
            defer { lock.unlock() }
            return values[keyPath: key]
        }
    }

    /// `podman images --format json`: every name (`localhost/busybox:test`) and every ID (bare hex).
    static func images(from output: String) -> [String]? {
        guard let items = array(output) else { return nil }
        var result: [String] = []
        for item in items {
            for name in item["Names"] as? [String] ?? [] where !result.contains(name) { result.append(name) }
            if let id = item["Id"] as? String, !result.contains(id) { result.append(id) }
        }
        return result
    }

    /// `podman ps -a --format json`: names and IDs of every container, running or not.
    static func containers(from output: String) -> (names: [String], ids: [String])? {
        guard let items = array(output) else { return nil }
        var names: [String] = []
        var ids: [String] = []
        for item in items {
            names += item["Names"] as? [String] ?? []
            if let id = item["Id"] as? String { ids.append(id) }
        }
        return (names, ids)
    }

    /// `podman container inspect --format json`: the IP and MAC addresses of each container on each network.
    static func addresses(from output: String) -> (ips: [String], macs: [String])? {
        guard let items = array(output) else { return nil }
        var ips: [String] = []
        var macs: [String] = []
        func add(_ settings: [String: Any]) {
            for key in ["IPAddress", "GlobalIPv6Address"] {
                if let ip = settings[key] as? String, !ip.isEmpty, !ips.contains(ip) { ips.append(ip) }
            }
            if let mac = (settings["MacAddress"] as? String)?.lowercased(), !mac.isEmpty, !macs.contains(mac) { macs.append(mac) }
        }
        for item in items {
            guard let settings = item["NetworkSettings"] as? [String: Any] else { continue }
            add(settings)
            for (_, network) in settings["Networks"] as? [String: Any] ?? [:] {
                if let network = network as? [String: Any] { add(network) }
            }
        }
        return (ips, macs)
    }

    /// `podman network ls --format json`: each network once per subnet.
    static func networks(from output: String) -> [TargetFacts.Network]? {
        guard let items = array(output) else { return nil }
        var result: [TargetFacts.Network] = []
        for item in items {
            guard let name = item["name"] as? String else { continue }
            for subnet in item["subnets"] as? [[String: Any]] ?? [] {
                if let cidr = subnet["subnet"] as? String { result.append(TargetFacts.Network(name: name, subnet: cidr)) }
            }
        }
        return result
    }

    private static func array(_ output: String) -> [[String: Any]]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(output.utf8), options: .fragmentsAllowed) else { return nil }
        if object is NSNull { return [] }
        return object as? [[String: Any]]
    }
}
