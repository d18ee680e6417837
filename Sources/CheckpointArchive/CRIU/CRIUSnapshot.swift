/// The process view of a checkpoint, assembled from its CRIU images by `CRIUImageSet`: the tree with command
/// lines and environments, open files, sockets and memory sizes, in the shapes checkpointctl shows.
public struct CRIUSnapshot: Sendable, Hashable {
    public var inventory: InventoryEntry?
    /// The process whose `ppid` is 0, with its descendants.
    public var root: ProcessNode?
    /// From the root's `core-<pid>.img`.
    public var architecture: CPUArchitecture?
    /// Every process in `pstree.img` order, each with its subtree.
    public var processes: [ProcessNode]
    /// Per process in `pstree.img` order (dead and zombie tasks have none).
    public var openFiles: [ProcessFiles]
    /// Per process in `pstree.img` order, only processes with at least one socket.
    public var sockets: [ProcessSockets]
    /// Per process that has a pagemap, walking the tree depth first from the root as checkpointctl memparse does
    /// (children in `pstree.img` order), then any process the walk did not reach.
    public var memory: [ProcessMemory]

    public init(
        inventory: InventoryEntry? = nil, root: ProcessNode? = nil, architecture: CPUArchitecture? = nil,
        processes: [ProcessNode] = [], openFiles: [ProcessFiles] = [], sockets: [ProcessSockets] = [],
        memory: [ProcessMemory] = []
    ) {
        self.inventory = inventory
        self.root = root
        self.architecture = architecture
        self.processes = processes
        self.openFiles = openFiles
        self.sockets = sockets
        self.memory = memory
    }

    /// The process with `pid`.
    /// - Throws: `PROCESS_NOT_FOUND` when the checkpoint has no such process.
    public func process(pid: UInt32) throws -> ProcessNode {
        guard let node = processes.first(where: { $0.pid == pid }) else {
            throw CheckpointError(.processNotFound, "no process with PID \(pid) in the checkpoint")
        }
        return node
    }

    /// The memory facts and page layout of the process with `pid`.
    /// - Throws: `PROCESS_NOT_FOUND` when the checkpoint has no such process or no memory image for it.
    public func memory(pid: UInt32) throws -> ProcessMemory {
        guard let memory = memory.first(where: { $0.pid == pid }) else {
            _ = try process(pid: pid)
            throw CheckpointError(.processNotFound, "process \(pid) has no memory images in the checkpoint")
        }
        return memory
    }
}
