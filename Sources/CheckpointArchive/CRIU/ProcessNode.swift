/// One process of the checkpoint with its children, as checkpointctl's process tree shows it.
public struct ProcessNode: Sendable, Hashable {
    public var pid: UInt32
    public var ppid: UInt32
    public var pgid: UInt32
    public var sid: UInt32
    public var threads: [UInt32]
    /// The kernel task name (`comm`, at most 15 bytes); "" when `core-<pid>.img` is missing.
    public var command: String
    /// Nil when `core-<pid>.img` is missing or has no task core.
    public var taskState: TaskState?
    public var exitCode: UInt32?
    /// The argv bytes from memory with every NUL turned into a space, as checkpointctl forms it, so usually with
    /// a trailing space (`sleep 1 `). Nil when the pages were not read, or the task is dead or a zombie.
    /// At most 1 MiB of argv is read.
    public var cmdline: String?
    /// The environment strings (`KEY=VALUE`) in memory order, empty ones dropped. checkpointctl's JSON folds
    /// them into a map; this keeps the raw list. Nil when not read, as for `cmdline`.
    public var environment: [String]?
    /// Children in `pstree.img` order.
    public var children: [ProcessNode]

    public init(
        pid: UInt32, ppid: UInt32, pgid: UInt32 = 0, sid: UInt32 = 0, threads: [UInt32] = [], command: String,
        taskState: TaskState? = nil, exitCode: UInt32? = nil, cmdline: String? = nil,
        environment: [String]? = nil, children: [ProcessNode] = []
    ) {
        self.pid = pid
        self.ppid = ppid
        self.pgid = pgid
        self.sid = sid
        self.threads = threads
        self.command = command
        self.taskState = taskState
        self.exitCode = exitCode
        self.cmdline = cmdline
        self.environment = environment
        self.children = children
    }

    /// The process with `pid` in this subtree, depth first.
    public func find(pid: UInt32) -> ProcessNode? {
        var stack = [self]
        while let node = stack.popLast() {
            if node.pid == pid { return node }
            stack.append(contentsOf: node.children.reversed())
        }
        return nil
    }
}
