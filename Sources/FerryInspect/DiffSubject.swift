public import CheckpointArchive
public import Foundation

/// What `diff` compares: one checkpoint as its checkpointctl-compatible inspect JSON describes it (name, image, ID,
/// created time, sizes, process tree, open files, sockets).
///
/// checkpointctl computes its diff from its own inspect JSON; Ferry does the same, so the archive path (a fresh
/// ``InspectReport/object(_:sections:)``) and the service's path (the inspection it stored at ingest) cannot
/// disagree on a field. Keys a diff does not use (networks, `ferry`, environments) are ignored.
public struct DiffSubject: Sendable, Equatable, Decodable {
    public var containerName: String
    public var image: String
    public var id: String
    public var created: String
    public var sizes: Sizes
    public var processTree: Process?
    public var fileDescriptors: [ProcessFiles]
    public var sockets: [ProcessSockets]

    /// `checkpoint_size`: every regular file under `checkpoint/`, and the `pages-*.img` among them.
    public struct Sizes: Sendable, Equatable, Decodable {
        public var totalSize: Int64
        public var memoryPagesSize: Int64

        enum CodingKeys: String, CodingKey {
            case totalSize = "total_size"
            case memoryPagesSize = "memory_pages_size"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            totalSize = try container.decodeIfPresent(Int64.self, forKey: .totalSize) ?? 0
            memoryPagesSize = try container.decodeIfPresent(Int64.self, forKey: .memoryPagesSize) ?? 0
        }
    }

    /// One node of `process_tree`.
    public struct Process: Sendable, Equatable, Decodable {
        public var pid: Int
        public var command: String
        public var cmdline: String?
        public var children: [Process]

        enum CodingKeys: String, CodingKey { case pid, command, cmdline, children }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            pid = try container.decode(Int.self, forKey: .pid)
            command = try container.decodeIfPresent(String.self, forKey: .command) ?? ""
            cmdline = try container.decodeIfPresent(String.self, forKey: .cmdline)
            children = try container.decodeIfPresent([Process].self, forKey: .children) ?? []
        }
    }

    /// One entry of `file_descriptors`.
    public struct ProcessFiles: Sendable, Equatable, Decodable {
        public var pid: Int
        public var openFiles: [File]

        public struct File: Sendable, Equatable, Decodable {
            public var type: String
            public var fd: String
            public var path: String
        }

        enum CodingKeys: String, CodingKey {
            case pid
            case openFiles = "open_files"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            pid = try container.decode(Int.self, forKey: .pid)
            openFiles = try container.decodeIfPresent([File].self, forKey: .openFiles) ?? []
        }
    }

    /// One entry of `sockets`.
    public struct ProcessSockets: Sendable, Equatable, Decodable {
        public var pid: Int
        public var openSockets: [Socket]

        /// `{protocol, data: {type, address, state, src, src_port, dst, dst_port, …}}`.
        public struct Socket: Sendable, Equatable, Decodable {
            public var `protocol`: String
            public var type: String
            public var address: String
            public var state: String
            public var source: String
            public var sourcePort: UInt32
            public var destination: String
            public var destinationPort: UInt32

            enum CodingKeys: String, CodingKey { case `protocol`, data }
            enum DataKeys: String, CodingKey {
                case type, address, state, src, dst
                case sourcePort = "src_port"
                case destinationPort = "dst_port"
            }

            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                `protocol` = try container.decodeIfPresent(String.self, forKey: .protocol) ?? ""
                let data = try container.nestedContainer(keyedBy: DataKeys.self, forKey: .data)
                type = try data.decodeIfPresent(String.self, forKey: .type) ?? ""
                address = try data.decodeIfPresent(String.self, forKey: .address) ?? ""
                state = try data.decodeIfPresent(String.self, forKey: .state) ?? ""
                source = try data.decodeIfPresent(String.self, forKey: .src) ?? ""
                sourcePort = try data.decodeIfPresent(UInt32.self, forKey: .sourcePort) ?? 0
                destination = try data.decodeIfPresent(String.self, forKey: .dst) ?? ""
                destinationPort = try data.decodeIfPresent(UInt32.self, forKey: .destinationPort) ?? 0
            }
        }

        enum CodingKeys: String, CodingKey {
            case pid
            case openSockets = "open_sockets"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            pid = try container.decode(Int.self, forKey: .pid)
            openSockets = try container.decodeIfPresent([Socket].self, forKey: .openSockets) ?? []
        }
    }

    enum CodingKeys: String, CodingKey {
        case image, id, created, sockets
        case containerName = "container_name"
        case sizes = "checkpoint_size"
        case processTree = "process_tree"
        case fileDescriptors = "file_descriptors"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        containerName = try container.decodeIfPresent(String.self, forKey: .containerName) ?? ""
        image = try container.decodeIfPresent(String.self, forKey: .image) ?? ""
        id = try container.decode(String.self, forKey: .id)
        created = try container.decodeIfPresent(String.self, forKey: .created) ?? ""
        sizes = try container.decode(Sizes.self, forKey: .sizes)
        processTree = try container.decodeIfPresent(Process.self, forKey: .processTree)
        fileDescriptors = try container.decodeIfPresent([ProcessFiles].self, forKey: .fileDescriptors) ?? []
        sockets = try container.decodeIfPresent([ProcessSockets].self, forKey: .sockets) ?? []
    }

    /// From one inspect JSON object (`ferry inspect --format json`'s element, or the service's stored inspection).
    public init(inspection: Data) throws {
        self = try JSONDecoder().decode(Self.self, from: inspection)
    }

    /// From a read archive, through the same inspect object `ferry inspect --format json` prints.
    public init(manifest: CheckpointManifest, options: DiffOptions) throws {
        try self.init(inspection: Data(InspectReport.object(manifest, sections: options.inspectSections).serialized().utf8))
    }
}

/// checkpointctl's `diff` flags.
public struct DiffOptions: Sendable, Equatable {
    /// Compare open files (`--files`).
    public var files = false
    /// Compare sockets (`--sockets`).
    public var sockets = false
    /// Compare command lines, read from memory (`--ps-tree-cmd`): a changed one makes a process "modified".
    public var commandLines = false
    /// `--ps-tree-env`: accepted as checkpointctl accepts it; its diff reads environments but compares none.
    public var environment = false
    /// List what is the same on both sides too (`--show-unchanged`; the text view only, JSON always has it).
    public var showUnchanged = false

    public init(files: Bool = false, sockets: Bool = false, commandLines: Bool = false, environment: Bool = false,
                showUnchanged: Bool = false) {
        self.files = files
        self.sockets = sockets
        self.commandLines = commandLines
        self.environment = environment
        self.showUnchanged = showUnchanged
    }

    /// What an archive's inspection must hold for this diff.
    public var inspectSections: InspectSections {
        var sections = InspectSections()
        sections.processTree = true
        sections.commandLines = commandLines
        sections.files = files
        sections.sockets = sockets
        return sections
    }

    /// What the archive reader must decode: processes always, memory pages only for command lines (environments
    /// are not compared, so `--ps-tree-env` alone reads no pages).
    public var readOptions: CheckpointReadOptions {
        var options = CheckpointReadOptions()
        options.decodeProcesses = true
        options.readProcessMemory = commandLines
        return options
    }
}
