public import Foundation

/// checkpointctl's `diff` of two checkpoints of one container: processes added, removed, modified and unchanged
/// (matched by PID), open files (by PID, descriptor and path), sockets (by PID, protocol, type, address, ports and
/// peer) and the change of memory pages. Encodes with checkpointctl's JSON field names in its order (each
/// `CodingKeys` lists them so); empty lists are left out, as Go's `omitempty` leaves them.
///
/// checkpointctl walks Go maps, so its lists come in random order; Ferry's come in a fixed one (processes by PID,
/// files and sockets in checkpoint B's order, then A's for removals).
public struct CheckpointDiff: Codable, Sendable, Equatable {
    public var containerID: String
    public var containerName: String
    public var image: String
    public var checkpointA: Checkpoint
    public var checkpointB: Checkpoint
    public var processChanges: Changes<ProcessEntry>
    /// Nil unless files were compared.
    public var fileChanges: Changes<FileEntry>?
    public var memoryChanges: MemoryChange
    /// Nil unless sockets were compared.
    public var socketChanges: Changes<SocketEntry>?
    /// checkpointctl's summary lines, joined by newlines.
    public var summary: String

    /// Checkpoint B's process tree, for the `--show-unchanged` text view (not encoded, as in checkpointctl).
    var processTreeB: DiffSubject.Process?

    /// In checkpointctl's field order, which the JSON keeps.
    enum CodingKeys: String, CodingKey {
        case containerID = "container_id"
        case containerName = "container_name"
        case image
        case checkpointA = "checkpoint_a"
        case checkpointB = "checkpoint_b"
        case processChanges = "process_changes"
        case fileChanges = "file_changes"
        case memoryChanges = "memory_changes"
        case socketChanges = "socket_changes"
        case summary
    }

    /// `checkpoint_a` and `checkpoint_b`: the container's creation time and the checkpoint's size.
    public struct Checkpoint: Codable, Sendable, Equatable {
        public var created: String
        public var totalSize: Int64

        enum CodingKeys: String, CodingKey {
            case created
            case totalSize = "total_size"
        }
    }

    /// Added, removed, modified (processes only) and unchanged entries.
    public struct Changes<Entry: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
        public var added: [Entry] = []
        public var removed: [Entry] = []
        public var modified: [Entry] = []
        public var unchanged: [Entry] = []

        enum CodingKeys: String, CodingKey { case added, removed, modified, unchanged }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            added = try container.decodeIfPresent([Entry].self, forKey: .added) ?? []
            removed = try container.decodeIfPresent([Entry].self, forKey: .removed) ?? []
            modified = try container.decodeIfPresent([Entry].self, forKey: .modified) ?? []
            unchanged = try container.decodeIfPresent([Entry].self, forKey: .unchanged) ?? []
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            for (key, list) in [(CodingKeys.added, added), (.removed, removed), (.modified, modified), (.unchanged, unchanged)]
            where !list.isEmpty {
                try container.encode(list, forKey: key)
            }
        }
    }

    /// A process: PID, task name and, with command lines compared, its command line.
    public struct ProcessEntry: Codable, Sendable, Equatable {
        public var pid: Int
        public var command: String
        public var cmdline: String?
    }

    /// An open file: `fd` is checkpointctl's `TYPE N` (or `cwd`, `root`).
    public struct FileEntry: Codable, Sendable, Equatable {
        public var path: String
        public var type: String
        public var pid: Int
        public var fd: String
    }

    /// A socket, with checkpointctl's `source`/`dest` names (inspect says `src`/`dst`). Empty fields and zero ports
    /// are left out.
    public struct SocketEntry: Codable, Sendable, Equatable {
        public var pid: Int
        public var `protocol`: String
        public var type: String
        public var address: String?
        public var state: String?
        public var source: String?
        public var sourcePort: UInt32?
        public var dest: String?
        public var destinationPort: UInt32?

        enum CodingKeys: String, CodingKey {
            case pid, `protocol`, type, address, state, source
            case sourcePort = "src_port"
            case dest
            case destinationPort = "dst_port"
        }

        init(pid: Int, _ socket: DiffSubject.ProcessSockets.Socket) {
            func nonEmpty(_ text: String) -> String? { text.isEmpty ? nil : text }
            self.pid = pid
            self.protocol = socket.protocol
            type = socket.type
            address = nonEmpty(socket.address)
            state = nonEmpty(socket.state)
            source = nonEmpty(socket.source)
            sourcePort = socket.sourcePort == 0 ? nil : socket.sourcePort
            dest = nonEmpty(socket.destination)
            destinationPort = socket.destinationPort == 0 ? nil : socket.destinationPort
        }
    }

    /// B's memory pages minus A's, in bytes and in MiB (checkpointctl calls them MB).
    public struct MemoryChange: Codable, Sendable, Equatable {
        public var sizeChangeBytes: Int64
        public var sizeChangeMB: Double

        enum CodingKeys: String, CodingKey {
            case sizeChangeBytes = "size_change_bytes"
            case sizeChangeMB = "size_change_mb"
        }
    }
}

/// Two checkpoints of different containers: checkpointctl refuses to compare them, and so does Ferry.
public struct ContainerMismatch: Error, Sendable, Equatable {
    /// The stable code, as the CLI prints it and the service answers it.
    public static let code = "CONTAINER_MISMATCH"
    public var a: (name: String, id: String)
    public var b: (name: String, id: String)

    /// One line (checkpointctl spreads it over three).
    public var message: String {
        "checkpoints are from different containers: A: \(a.name) (\(a.id)), B: \(b.name) (\(b.id))"
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.a == rhs.a && lhs.b == rhs.b }
}

extension CheckpointDiff {
    /// Compares checkpoint `a` with the later checkpoint `b` of the same container.
    /// - Throws: ``ContainerMismatch`` when their container IDs differ.
    public static func compare(_ a: DiffSubject, _ b: DiffSubject, options: DiffOptions) throws(ContainerMismatch) -> CheckpointDiff {
        guard a.id == b.id else {
            throw ContainerMismatch(a: (a.containerName, a.id), b: (b.containerName, b.id))
        }
        let change = b.sizes.memoryPagesSize - a.sizes.memoryPagesSize
        var diff = CheckpointDiff(
            containerID: a.id, containerName: a.containerName, image: a.image,
            checkpointA: Checkpoint(created: a.created, totalSize: a.sizes.totalSize),
            checkpointB: Checkpoint(created: b.created, totalSize: b.sizes.totalSize),
            processChanges: processChanges(a.processTree, b.processTree, commandLines: options.commandLines),
            fileChanges: options.files ? fileChanges(a.fileDescriptors, b.fileDescriptors) : nil,
            memoryChanges: MemoryChange(sizeChangeBytes: change, sizeChangeMB: Double(change) / 1024 / 1024),
            socketChanges: options.sockets ? socketChanges(a.sockets, b.sockets) : nil,
            summary: "")
        diff.processTreeB = b.processTree.map { options.commandLines ? $0 : withoutCommandLines($0) }
        diff.summary = diff.summaryText
        return diff
    }

    /// The JSON document as checkpointctl writes it (`json.Encoder` with two-space indentation): checkpointctl's field
    /// order, Go's escaping of `<`, `>` and `&`, and a final newline.
    public func json() throws -> Data {
        Data((try JSONValueEncoder.encode(self).serialized() + "\n").utf8)
    }

    /// `Processes: +A -R ~M`, `Files: +A -R`, `Sockets: +A -R`, `Memory: ±X.XX MB`, each only when non-zero.
    var summaryText: String {
        var lines = ["Checkpoint comparison for container \(containerName)"]
        let processes = processChanges
        if !processes.added.isEmpty || !processes.removed.isEmpty || !processes.modified.isEmpty {
            lines.append("Processes: +\(processes.added.count) -\(processes.removed.count) ~\(processes.modified.count)")
        }
        if let files = fileChanges, !files.added.isEmpty || !files.removed.isEmpty {
            lines.append("Files: +\(files.added.count) -\(files.removed.count)")
        }
        if let sockets = socketChanges, !sockets.added.isEmpty || !sockets.removed.isEmpty {
            lines.append("Sockets: +\(sockets.added.count) -\(sockets.removed.count)")
        }
        if memoryChanges.sizeChangeBytes != 0 {
            lines.append("Memory: \(String(format: "%+.2f", memoryChanges.sizeChangeMB)) MB")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Matching

    private static func processChanges(_ a: DiffSubject.Process?, _ b: DiffSubject.Process?, commandLines: Bool)
        -> Changes<ProcessEntry>
    {
        let before = processMap(a, commandLines: commandLines)
        let after = processMap(b, commandLines: commandLines)
        var changes = Changes<ProcessEntry>()
        for pid in after.keys.sorted() {
            let entry = after[pid]!
            if let old = before[pid] {
                if commandLines && old.cmdline != entry.cmdline {
                    changes.modified.append(entry)
                } else {
                    changes.unchanged.append(entry)
                }
            } else {
                changes.added.append(entry)
            }
        }
        changes.removed = before.keys.sorted().filter { after[$0] == nil }.map { before[$0]! }
        return changes
    }

    /// Every process of the tree by PID (a PID seen twice keeps the later one, as a Go map does).
    private static func processMap(_ root: DiffSubject.Process?, commandLines: Bool) -> [Int: ProcessEntry] {
        var map: [Int: ProcessEntry] = [:]
        var stack = root.map { [$0] } ?? []
        while let node = stack.popLast() {
            // checkpointctl's cmdline is "" (left out) when not read, so an empty one is absent here too.
            let cmdline = commandLines ? node.cmdline.flatMap { $0.isEmpty ? nil : $0 } : nil
            map[node.pid] = ProcessEntry(pid: node.pid, command: node.command, cmdline: cmdline)
            stack.append(contentsOf: node.children.reversed())
        }
        return map
    }

    private static func withoutCommandLines(_ node: DiffSubject.Process) -> DiffSubject.Process {
        var copy = node
        copy.cmdline = nil
        copy.children = node.children.map(withoutCommandLines)
        return copy
    }

    private static func fileChanges(_ a: [DiffSubject.ProcessFiles], _ b: [DiffSubject.ProcessFiles]) -> Changes<FileEntry> {
        func entries(_ list: [DiffSubject.ProcessFiles]) -> KeyedEntries<FileEntry> {
            var keyed = KeyedEntries<FileEntry>()
            for process in list {
                for file in process.openFiles {
                    keyed.insert(FileEntry(path: file.path, type: file.type, pid: process.pid, fd: file.fd),
                                 key: "\(process.pid):\(file.fd):\(file.path)")
                }
            }
            return keyed
        }
        return changes(entries(a), entries(b))
    }

    private static func socketChanges(_ a: [DiffSubject.ProcessSockets], _ b: [DiffSubject.ProcessSockets]) -> Changes<SocketEntry> {
        func entries(_ list: [DiffSubject.ProcessSockets]) -> KeyedEntries<SocketEntry> {
            var keyed = KeyedEntries<SocketEntry>()
            for process in list {
                for socket in process.openSockets {
                    // checkpointctl's key: the local address and the state are not part of it.
                    let key = "\(process.pid):\(socket.protocol):\(socket.type):\(socket.address):\(socket.sourcePort):\(socket.destination):\(socket.destinationPort)"
                    keyed.insert(SocketEntry(pid: process.pid, socket), key: key)
                }
            }
            return keyed
        }
        return changes(entries(a), entries(b))
    }

    private static func changes<Entry>(_ a: KeyedEntries<Entry>, _ b: KeyedEntries<Entry>) -> Changes<Entry> {
        var changes = Changes<Entry>()
        for (key, entry) in b.ordered {
            if a.values[key] != nil { changes.unchanged.append(entry) } else { changes.added.append(entry) }
        }
        changes.removed = a.ordered.filter { b.values[$0.key] == nil }.map(\.entry)
        return changes
    }
}

/// Entries by key in first-seen order, a later entry with the same key replacing the earlier (a Go map's
/// last-write-wins, without its random order).
private struct KeyedEntries<Entry> {
    var keys: [String] = []
    var values: [String: Entry] = [:]

    mutating func insert(_ entry: Entry, key: String) {
        if values.updateValue(entry, forKey: key) == nil { keys.append(key) }
    }

    var ordered: [(key: String, entry: Entry)] { keys.map { ($0, values[$0]!) } }
}
