import CheckpointArchive
import FerryAPI
import FerryValidation
import Foundation

/// A container as `podman container inspect --format json` describes it, turned into a ``ContainerReport``: its
/// state, and the ``CheckpointFacts`` its checkpoint would carry (image, addresses, established TCP connections),
/// so a migration is judged before anything is stopped.
enum PodmanContainer {
    /// Runs `podman container inspect`; a container Podman does not know is `exists: false`. Nil when Podman
    /// cannot be asked or answers something else.
    /// Podman's answers are reused while its events log is unchanged (``PodmanStateCache``); the TCP tables are
    /// always read now, since connections come and go without events.
    static func report(_ container: String, cache: PodmanStateCache) -> ContainerReport? {
        if cache.knownAbsent(container) { return ContainerReport(name: container, exists: false, running: false) }
        var missing = false
        let output = cache.inspectOutput(container) {
            guard let outcome = FactCommand.run(["podman", "container", "inspect", "--format", "json", container]) else { return nil }
            if outcome.status != 0 {
                missing = outcome.stderr.lowercased().contains("no such container")
                return nil
            }
            return outcome.stdout
        }
        if missing { return ContainerReport(name: container, exists: false, running: false) }
        guard let output else { return nil }
        return report(container, inspectOutput: output, tcpTables: tcpTables)
    }

    /// The report from `podman container inspect`'s output; `tcpTables(pid)` gives the contents of the container's
    /// `/proc/PID/net/tcp` and `tcp6`.
    static func report(_ container: String, inspectOutput: String, tcpTables: (Int32) -> [String]) -> ContainerReport? {
        guard let items = try? JSONSerialization.jsonObject(with: Data(inspectOutput.utf8)) as? [[String: Any]],
              let item = items.first else { return nil }
        let state = item["State"] as? [String: Any] ?? [:]
        let running = state["Running"] as? Bool ?? false
        let id = item["Id"] as? String ?? ""
        var name = item["Name"] as? String ?? container
        if name.hasPrefix("/") { name.removeFirst() }
        var networks: [CheckpointFacts.Network] = []
        let settings = item["NetworkSettings"] as? [String: Any] ?? [:]
        for (networkName, value) in (settings["Networks"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let network = value as? [String: Any] else { continue }
            var addresses: [String] = []
            if let ip = network["IPAddress"] as? String, !ip.isEmpty {
                addresses.append("\(ip)/\((network["IPPrefixLen"] as? NSNumber)?.intValue ?? 32)")
            }
            if let ip = network["GlobalIPv6Address"] as? String, !ip.isEmpty {
                addresses.append("\(ip)/\((network["GlobalIPv6PrefixLen"] as? NSNumber)?.intValue ?? 128)")
            }
            let mac = (network["MacAddress"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            networks.append(CheckpointFacts.Network(
                name: networkName, interfaces: [CheckpointFacts.Interface(name: "eth0", addresses: addresses, mac: mac)]))
        }
        var established: [String]?
        if running, let pid = (state["Pid"] as? NSNumber)?.int32Value, pid > 0 {
            established = tcpTables(pid).flatMap(establishedLocalAddresses)
        }
        let facts = CheckpointFacts(
            engine: .podman, architecture: HostSystem.uname()?.machine, runtime: item["OCIRuntime"] as? String,
            containerID: id, containerName: name, image: item["ImageName"] as? String, imageID: item["Image"] as? String,
            networks: networks, hasEstablishedTCP: established.map { !$0.isEmpty },
            establishedTCPAddresses: established.map(unique) ?? [])
        return ContainerReport(name: container, exists: true, running: running, status: state["Status"] as? String,
                               id: id, facts: facts)
    }

    /// `/proc/PID/net/tcp` and `tcp6`: the container's network namespace's TCP table (nothing for an unreadable one).
    static func tcpTables(_ pid: Int32) -> [String] {
        ["tcp", "tcp6"].compactMap { try? String(contentsOfFile: "/proc/\(pid)/net/\($0)", encoding: .utf8) }
    }

    /// The local addresses of the connected rows of a `/proc/net/tcp[6]` table: every state but LISTEN (`0A`) and
    /// CLOSE (`07`), since CRIU refuses half-closed connections too without `--tcp-established`.
    static func establishedLocalAddresses(_ table: String) -> [String] {
        table.split(separator: "\n").dropFirst().compactMap { line in
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            guard columns.count > 3, columns[3] != "0A", columns[3] != "07" else { return nil }
            let local = columns[1].split(separator: ":")
            return local.first.flatMap { address(hex: String($0)) }
        }
    }

    /// A `/proc/net/tcp` address: 8 hex digits (IPv4) or 32 (IPv6), each 32-bit group in host (little-endian) order.
    static func address(hex: String) -> String? {
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 8)
            guard let word = UInt32(hex[index..<next], radix: 16) else { return nil }
            let value = word
            bytes += [UInt8(value & 0xff), UInt8(value >> 8 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 24)]
            index = next
        }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for offset in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]), radix: 16))
        }
        let text = groups.joined(separator: ":")
        if text.hasPrefix("0:0:0:0:0:ffff:") {
            return bytes[12...15].map(String.init).joined(separator: ".")
        }
        return text == "0:0:0:0:0:0:0:1" ? "::1" : text
    }

    private static func unique(_ values: [String]) -> [String] {
        var result: [String] = []
        for value in values where !result.contains(value) { result.append(value) }
        return result
    }
}
