import Foundation

/// Podman's events log (`events_logger = "file"`): every change to containers, images and networks appends a line
/// to it before the command that made the change returns. Its identity (inode, size, modification time) is a
/// fingerprint of Podman's state: while it is unchanged, what Podman last said about containers and images is
/// still true, so facts can be served without starting `podman` (30–60 ms each) and are still current as of now.
///
/// Found at start-up from `podman info` (the logger must be `file`) and containers.conf's `events_logfile_path`
/// (default `/run/libpod/events/events.log`); with journald, or no readable file, there is no fingerprint and every
/// question goes to Podman.
struct PodmanEventLog: Sendable {
    let path: String

    struct Fingerprint: Equatable, Sendable {
        var inode: UInt64
        var size: Int64
        var modified: Int64
        /// Podman 4.3 writes no event for `podman network create` or `rm`: the network configuration directories'
        /// modification times stand in for them (a file added or removed changes its directory).
        var networkDirectories: [Int64]
    }

    /// Where CNI and netavark keep Podman's network definitions.
    static let networkDirectories = ["/etc/cni/net.d", "/etc/containers/networks"]

    /// The log, if Podman writes one this agent can watch.
    static func locate() -> PodmanEventLog? {
        guard FactCommand.output(["podman", "info", "--format", "{{.Host.EventLogger}}"])?
            .trimmingCharacters(in: .whitespacesAndNewlines) == "file" else { return nil }
        let configured = ["/etc/containers/containers.conf", "/usr/share/containers/containers.conf"]
            .compactMap { configuredPath(in: $0) }.first
        let path = configured ?? "/run/libpod/events/events.log"
        let log = PodmanEventLog(path: path)
        return log.fingerprint() == nil ? nil : log
    }

    /// `events_logfile_path = "…"` in a containers.conf, if set.
    static func configuredPath(in file: String) -> String? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("events_logfile_path"), let equals = trimmed.firstIndex(of: "=") else { continue }
            let value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                .trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            if !value.isEmpty { return value }
        }
        return nil
    }

    /// One line of the log, as far as the cache needs it.
    struct Event: Decodable, Sendable {
        var type: String?
        var status: String?

        enum CodingKeys: String, CodingKey {
            case type = "Type"
            case status = "Status"
        }

        /// Container events that neither give a container a name or ID nor bring one into being: what has been
        /// said absent stays absent. (Everything a container does while it runs: exec and health checks are most
        /// of a busy node's events.) Image, volume and network events never name a container.
        static let harmlessContainerStatuses: Set<String> = [
            "attach", "checkpoint", "cleanup", "commit", "copy", "died", "exec", "exec_died", "exited", "export",
            "health_status", "init", "kill", "mount", "pause", "prune", "remove", "restart", "start", "stop", "sync",
            "unmount", "unpause",
        ]

        var cannotAddContainer: Bool {
            switch type {
            case "container": status.map(Self.harmlessContainerStatuses.contains) ?? false
            case "image", "volume", "network": true
            default: false  // pods (an infra container), system events (renumber, refresh), anything unknown
            }
        }
    }

    /// The events appended between two fingerprints of the log; nil when that cannot be told: the log was replaced
    /// or truncated, the network directories changed, more than `maximumBytes` were appended, or a line is
    /// unreadable or not yet complete.
    func events(from old: Fingerprint, to new: Fingerprint, maximumBytes: Int64 = 1 << 20) -> [Event]? {
        guard old.inode == new.inode, new.size >= old.size, new.size - old.size <= maximumBytes,
              old.networkDirectories == new.networkDirectories else { return nil }
        if new.size == old.size { return new.modified == old.modified ? [] : nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(new.size - old.size))
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(old.size)) }
        guard count == bytes.count, bytes.last == UInt8(ascii: "\n") else { return nil }
        var events: [Event] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let event = try? JSONDecoder().decode(Event.self, from: Data(line)) else { return nil }
            events.append(event)
        }
        return events
    }

    func fingerprint() -> Fingerprint? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let directories = Self.networkDirectories.map { directory -> Int64 in
            var entry = stat()
            guard stat(directory, &entry) == 0 else { return -1 }
            return Int64(entry.st_mtim.tv_sec) * 1_000_000_000 + Int64(entry.st_mtim.tv_nsec)
        }
        return Fingerprint(inode: UInt64(info.st_ino), size: Int64(info.st_size),
                           modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                           networkDirectories: directories)
    }
}

/// What Podman last said, kept while the events log is unchanged: the node inventory, and each container's
/// `podman container inspect` object (by name and by ID). One lock guards both.
final class PodmanStateCache: @unchecked Sendable {
    // @unchecked Sendable invariant: `inventory`, `containers` and `fingerprint` are only touched with `lock` held.
    private let lock = NSLock()
    private var located = false
    private var eventLog: PodmanEventLog?
    private var fingerprint: PodmanEventLog.Fingerprint?
    private var inventory: PodmanInventory?
    private var containers: [String: String] = [:]
    private var watching = false
    /// The inventory before the last change (kept for ``latestInventory()``).
    private var lastInventory: PodmanInventory?

    /// With `log` nil, the log is looked for on first use (`podman info` costs a few hundred milliseconds once).
    init(log: PodmanEventLog? = nil) {
        eventLog = log
        located = log != nil
    }

    private var log: PodmanEventLog? {
        lock.lock()
        if located {
            defer { lock.unlock() }
            return eventLog
        }
        lock.unlock()
        let found = PodmanEventLog.locate()
        lock.lock()
        defer { lock.unlock() }
        if !located {
            eventLog = found
            located = true
        }
        return eventLog
    }

    /// Keeps the cache warm: a thread of its own watches the fingerprint (every 100 ms, a `stat`) and, once Podman
    /// has been quiet for `quiet` seconds after a change and no `podman` command runs, asks it again, so a preflight
    /// rarely waits for `podman`. Both conditions keep the refresh off the CPU while a checkpoint or restore runs.
    func keepWarm(quiet: Double = 1, _ collect: @escaping @Sendable () -> (PodmanInventory, inspected: [String: String])) {
        lock.lock()
        watching = true
        lock.unlock()
        let thread = Thread { [self] in
            var seen = log?.fingerprint()
            var changedAt: Date?
            while true {
                Thread.sleep(forTimeInterval: 0.1)
                lock.lock()
                let keepGoing = watching
                lock.unlock()
                guard keepGoing, let log else { return }  // Nothing to watch: every question goes to Podman.
                let now = log.fingerprint()
                if now != seen {
                    seen = now
                    changedAt = Date()
                    continue
                }
                if let changed = changedAt, Date().timeIntervalSince(changed) >= quiet, cached(now, \.inventory) == nil,
                   !Self.podmanIsRunning() {
                    changedAt = nil
                    _ = inventory(collect)
                }
            }
        }
        thread.name = "ferry-agent-podman-cache"
        thread.start()
    }

    /// Whether any `podman` command runs on this host now (a checkpoint, a restore, a user's command): the refresh
    /// waits for it rather than compete for the CPU.
    static func podmanIsRunning() -> Bool {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return false }
        for entry in entries where entry.first?.isNumber == true {
            if let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8), comm.hasPrefix("podman") {
                return true
            }
        }
        return false
    }

    func stopWatching() {
        lock.lock()
        watching = false
        lock.unlock()
    }

    /// Whether the cached inventory lists no container with this name or ID (prefix), and nothing Podman logged
    /// since could have added one (a checkpoint, an exec, a removal, another store's events in a shared log).
    func knownAbsent(_ container: String) -> Bool {
        guard let log, let now = log.fingerprint() else { return false }
        lock.lock()
        let (cachedAt, names, ids) = (fingerprint, inventory?.containerNames, inventory?.containerIDs)
        lock.unlock()
        guard let cachedAt, let names, let ids else { return false }
        if cachedAt != now {
            guard let events = log.events(from: cachedAt, to: now), events.allSatisfy(\.cannotAddContainer) else { return false }
        }
        let lowered = container.lowercased()
        return !names.contains(container) && !ids.contains { $0.lowercased().hasPrefix(lowered) || lowered.hasPrefix($0.lowercased()) }
    }

    /// The last inventory collected, current or not (nil before the first): for heartbeats, which only inform, so
    /// that they never start `podman` while a checkpoint or restore needs the CPU. Preflight asks ``inventory(_:)``.
    func latestInventory() -> PodmanInventory? {
        lock.lock()
        defer { lock.unlock() }
        return inventory ?? lastInventory
    }

    /// The inventory: the cached one while Podman has recorded nothing since, else collected now.
    func inventory(_ collect: () -> (PodmanInventory, inspected: [String: String])) -> PodmanInventory {
        let before = log?.fingerprint()
        if let cached = cached(before, \.inventory) { return cached }
        let (fresh, inspected) = collect()
        store(before) {
            $0.inventory = fresh
            for (key, value) in inspected { $0.containers[key] = value }
        }
        return fresh
    }

    /// One container's `podman container inspect` output (a one-element JSON array), cached the same way.
    func inspectOutput(_ container: String, _ run: () -> String?) -> String? {
        let before = log?.fingerprint()
        if let cached = cached(before, { $0.containers[container] }) { return cached }
        guard let fresh = run() else { return nil }
        store(before) { $0.containers[container] = fresh }
        return fresh
    }

    private struct State {
        var inventory: PodmanInventory?
        var containers: [String: String]
    }

    private func cached<T>(_ now: PodmanEventLog.Fingerprint?, _ pick: (State) -> T?) -> T? {
        guard let now else { return nil }
        lock.lock()
        defer { lock.unlock() }
        guard fingerprint == now else { return nil }
        return pick(State(inventory: inventory, containers: containers))
    }

    /// Keeps what was collected, under the fingerprint taken before collecting: a change during the collection makes
    /// the next question collect again.
    private func store(_ before: PodmanEventLog.Fingerprint?, _ change: (inout State) -> Void) {
        guard let before else { return }
        lock.lock()
        defer { lock.unlock() }
        if fingerprint != before {
            fingerprint = before
            if inventory != nil { lastInventory = inventory }
            inventory = nil
            containers = [:]
        }
        var state = State(inventory: inventory, containers: containers)
        change(&state)
        inventory = state.inventory
        if inventory != nil { lastInventory = inventory }
        containers = state.containers
    }
}
