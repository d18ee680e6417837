/// A task's working and root directories (`fs-<pid>.img`, `fs_entry`), as `files.img` ids of regular files.
public struct FSEntry: ProtobufDecodable, Hashable {
    public var cwdID: UInt32
    public var rootID: UInt32
    public var umask: UInt32?

    public init(cwdID: UInt32, rootID: UInt32, umask: UInt32? = nil) {
        self.cwdID = cwdID
        self.rootID = rootID
        self.umask = umask
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var cwd: UInt32?
        var root: UInt32?
        var umask: UInt32?
        while let field = try reader.nextField() {
            switch field.number {
            case 1: cwd = try reader.uint32(field)
            case 2: root = try reader.uint32(field)
            case 3: umask = try reader.uint32(field)
            default: try reader.skip(field)
            }
        }
        guard let cwd, let root else { throw ProtobufReader.missing("cwd_id/root_id", in: "fs_entry") }
        self.init(cwdID: cwd, rootID: root, umask: umask)
    }
}
