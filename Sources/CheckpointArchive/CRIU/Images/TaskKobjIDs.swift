/// The ids of the kernel objects a task uses (`ids-<pid>.img` and `inventory.root_ids`, `task_kobj_ids_entry`).
/// Tasks that share an object share its id; `filesID` names the task's `fdinfo-<files_id>.img`.
public struct TaskKobjIDs: ProtobufDecodable, Hashable {
    public var vmID: UInt32
    public var filesID: UInt32
    public var fsID: UInt32
    public var sighandID: UInt32
    public var pidNamespaceID: UInt32?
    public var netNamespaceID: UInt32?
    public var ipcNamespaceID: UInt32?
    public var utsNamespaceID: UInt32?
    public var mntNamespaceID: UInt32?
    public var userNamespaceID: UInt32?
    public var cgroupNamespaceID: UInt32?
    public var timeNamespaceID: UInt32?

    public init(vmID: UInt32 = 0, filesID: UInt32, fsID: UInt32 = 0, sighandID: UInt32 = 0) {
        self.vmID = vmID
        self.filesID = filesID
        self.fsID = fsID
        self.sighandID = sighandID
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var filesID: UInt32?
        var copy = TaskKobjIDs(filesID: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: copy.vmID = try reader.uint32(field)
            case 2: filesID = try reader.uint32(field)
            case 3: copy.fsID = try reader.uint32(field)
            case 4: copy.sighandID = try reader.uint32(field)
            case 5: copy.pidNamespaceID = try reader.uint32(field)
            case 6: copy.netNamespaceID = try reader.uint32(field)
            case 7: copy.ipcNamespaceID = try reader.uint32(field)
            case 8: copy.utsNamespaceID = try reader.uint32(field)
            case 9: copy.mntNamespaceID = try reader.uint32(field)
            case 10: copy.userNamespaceID = try reader.uint32(field)
            case 11: copy.cgroupNamespaceID = try reader.uint32(field)
            case 12: copy.timeNamespaceID = try reader.uint32(field)
            default: try reader.skip(field)
            }
        }
        guard let filesID else { throw ProtobufReader.missing("files_id", in: "task_kobj_ids_entry") }
        copy.filesID = filesID
        self = copy
    }
}
