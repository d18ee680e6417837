/// A task's state when it was dumped (`task_core_entry.task_state`), with compel's values
/// (`compel/include/uapi/task-state.h`). pycriu labels 3 and 6 the other way round; go-criu and checkpointctl
/// follow compel, and so does Ferry.
public struct TaskState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let alive = TaskState(rawValue: 0x01)
    public static let dead = TaskState(rawValue: 0x02)
    public static let stopped = TaskState(rawValue: 0x03)
    public static let zombie = TaskState(rawValue: 0x06)

    /// The name checkpointctl prints (`Alive`, `Dead`, `Stopped`, `Zombie`), `Unknown` for anything else.
    public var name: String {
        switch self {
        case .alive: "Alive"
        case .dead: "Dead"
        case .stopped: "Stopped"
        case .zombie: "Zombie"
        default: "Unknown"
        }
    }

    public var description: String { name }

    /// Only alive and stopped tasks have memory, files and sockets in the images; a dead or zombie task is a
    /// name in the tree (its children were reparented when it exited).
    public var hasResources: Bool { self == .alive || self == .stopped }
}
