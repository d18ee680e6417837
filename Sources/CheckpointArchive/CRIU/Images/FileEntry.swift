/// One open file of the dump (`files.img`, `file_entry`), shared by every descriptor whose `fdinfo_entry.id`
/// names it. Only the kinds Ferry shows are decoded; for the rest `type` and `id` are all there is.
public struct FileEntry: ProtobufDecodable, Hashable {
    public var type: FileDescriptorType
    public var id: UInt32
    public var regular: RegularFileEntry?
    public var inetSocket: InetSocketEntry?
    public var packetSocket: PacketSocketEntry?
    public var netlinkSocket: NetlinkSocketEntry?
    public var unixSocket: UnixSocketEntry?
    public var pipe: PipeEntry?

    public init(type: FileDescriptorType, id: UInt32) {
        self.type = type
        self.id = id
    }

    /// Field numbers: type 1, id 2, reg 3, isk 4, psk 6, nlsk 7, usk 16, pipe 18.
    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var type: UInt32?
        var id: UInt32?
        var entry = FileEntry(type: .undefined, id: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: type = try reader.uint32(field)
            case 2: id = try reader.uint32(field)
            case 3: entry.regular = try reader.message(field)
            case 4: entry.inetSocket = try reader.message(field)
            case 6: entry.packetSocket = try reader.message(field)
            case 7: entry.netlinkSocket = try reader.message(field)
            case 16: entry.unixSocket = try reader.message(field)
            case 18: entry.pipe = try reader.message(field)
            default: try reader.skip(field)
            }
        }
        guard let type, let id else { throw ProtobufReader.missing("type/id", in: "file_entry") }
        entry.type = FileDescriptorType(rawValue: type)
        entry.id = id
        self = entry
    }
}

/// A regular file, directory or device node (`reg_file_entry`).
public struct RegularFileEntry: ProtobufDecodable, Hashable {
    public var id: UInt32
    public var flags: UInt32
    public var position: UInt64
    /// The path as the task saw it (in its mount namespace).
    public var name: String
    public var mountID: Int64?
    /// The file's size at dump time; CRIU's `--file-validation` compares it on restore.
    public var size: UInt64?
    public var mode: UInt32?

    public init(id: UInt32, name: String, flags: UInt32 = 0, position: UInt64 = 0, size: UInt64? = nil,
                mode: UInt32? = nil) {
        self.id = id
        self.name = name
        self.flags = flags
        self.position = position
        self.size = size
        self.mode = mode
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var id: UInt32 = 0
        var name: String?
        var entry = RegularFileEntry(id: 0, name: "")
        while let field = try reader.nextField() {
            switch field.number {
            case 1: id = try reader.uint32(field)
            case 2: entry.flags = try reader.uint32(field)
            case 3: entry.position = try reader.uint64(field)
            case 6: name = try reader.string(field)
            case 7: entry.mountID = try reader.sint64(field)
            case 8: entry.size = try reader.uint64(field)
            case 10: entry.mode = try reader.uint32(field)
            default: try reader.skip(field)
            }
        }
        guard let name else { throw ProtobufReader.missing("name", in: "reg_file_entry") }
        entry.id = id
        entry.name = name
        self = entry
    }
}

/// One end of a pipe (`pipe_entry`); both ends share `pipeID`, the pipe's inode number.
public struct PipeEntry: ProtobufDecodable, Hashable {
    public var id: UInt32
    public var pipeID: UInt32
    public var flags: UInt32

    public init(id: UInt32, pipeID: UInt32, flags: UInt32 = 0) {
        self.id = id
        self.pipeID = pipeID
        self.flags = flags
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var entry = PipeEntry(id: 0, pipeID: 0)
        var pipeID: UInt32?
        while let field = try reader.nextField() {
            switch field.number {
            case 1: entry.id = try reader.uint32(field)
            case 2: pipeID = try reader.uint32(field)
            case 3: entry.flags = try reader.uint32(field)
            default: try reader.skip(field)
            }
        }
        guard let pipeID else { throw ProtobufReader.missing("pipe_id", in: "pipe_entry") }
        entry.pipeID = pipeID
        self = entry
    }
}
