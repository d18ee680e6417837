/// The per-task core image (`core-<tid>.img`, `core_entry`), reduced to what Ferry shows: the architecture and
/// the `task_core_entry` facts (state, exit code, command name). Registers and signal state are skipped.
public struct CoreEntry: ProtobufDecodable, Hashable {
    public var architecture: CPUArchitecture
    /// From `tc`; nil when the entry has no `task_core_entry` (thread cores of old images).
    public var taskState: TaskState?
    public var exitCode: UInt32?
    /// `tc.comm`: the kernel's 15-character task name.
    public var command: String?
    /// `thread_core.comm`, the per-thread name, when present.
    public var threadName: String?

    public init(
        architecture: CPUArchitecture, taskState: TaskState? = nil, exitCode: UInt32? = nil,
        command: String? = nil, threadName: String? = nil
    ) {
        self.architecture = architecture
        self.taskState = taskState
        self.exitCode = exitCode
        self.command = command
        self.threadName = threadName
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var mtype: UInt32?
        var task: TaskCore?
        var threadName: String?
        while let field = try reader.nextField() {
            switch field.number {
            case 1: mtype = try reader.uint32(field)
            case 3: task = try reader.message(field, as: TaskCore.self)
            case 5: threadName = try reader.message(field, as: ThreadCore.self).comm
            default: try reader.skip(field)
            }
        }
        guard let mtype else { throw ProtobufReader.missing("mtype", in: "core_entry") }
        self.init(
            architecture: CPUArchitecture(rawValue: mtype), taskState: task?.state.map(TaskState.init(rawValue:)),
            exitCode: task?.exitCode, command: task?.comm, threadName: threadName)
    }

    /// `task_core_entry`: task_state 1, exit_code 2, comm 6.
    private struct TaskCore: ProtobufDecodable {
        var state: UInt32?
        var exitCode: UInt32?
        var comm: String?

        init(protobuf bytes: ArraySlice<UInt8>) throws {
            var reader = ProtobufReader(bytes)
            while let field = try reader.nextField() {
                switch field.number {
                case 1: state = try reader.uint32(field)
                case 2: exitCode = try reader.uint32(field)
                case 6: comm = try reader.string(field)
                default: try reader.skip(field)
                }
            }
        }
    }

    /// `thread_core_entry`: comm 13.
    private struct ThreadCore: ProtobufDecodable {
        var comm: String?

        init(protobuf bytes: ArraySlice<UInt8>) throws {
            var reader = ProtobufReader(bytes)
            while let field = try reader.nextField() {
                if field.number == 13 { comm = try reader.string(field) } else { try reader.skip(field) }
            }
        }
    }
}
