/// One open descriptor of a task (`fdinfo-<files_id>.img`, `fdinfo_entry`). `id` points at the `file_entry` in
/// `files.img` that describes the open file.
public struct FdinfoEntry: ProtobufDecodable, Hashable {
    public var id: UInt32
    /// `O_*` descriptor flags (`FD_CLOEXEC` …).
    public var flags: UInt32
    public var type: FileDescriptorType
    public var fd: UInt32

    public init(id: UInt32, flags: UInt32 = 0, type: FileDescriptorType, fd: UInt32) {
        self.id = id
        self.flags = flags
        self.type = type
        self.fd = fd
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var id: UInt32?
        var flags: UInt32 = 0
        var type: UInt32?
        var fd: UInt32?
        while let field = try reader.nextField() {
            switch field.number {
            case 1: id = try reader.uint32(field)
            case 2: flags = try reader.uint32(field)
            case 3: type = try reader.uint32(field)
            case 4: fd = try reader.uint32(field)
            default: try reader.skip(field)
            }
        }
        guard let id, let type, let fd else { throw ProtobufReader.missing("id/type/fd", in: "fdinfo_entry") }
        self.init(id: id, flags: flags, type: FileDescriptorType(rawValue: type), fd: fd)
    }
}

/// The kind of an open file (`fd_types` in CRIU `images/fdinfo.proto`).
public struct FileDescriptorType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let undefined = FileDescriptorType(rawValue: 0)
    public static let regular = FileDescriptorType(rawValue: 1)
    public static let pipe = FileDescriptorType(rawValue: 2)
    public static let fifo = FileDescriptorType(rawValue: 3)
    public static let inetSocket = FileDescriptorType(rawValue: 4)
    public static let unixSocket = FileDescriptorType(rawValue: 5)
    public static let eventfd = FileDescriptorType(rawValue: 6)
    public static let eventpoll = FileDescriptorType(rawValue: 7)
    public static let inotify = FileDescriptorType(rawValue: 8)
    public static let signalfd = FileDescriptorType(rawValue: 9)
    public static let packetSocket = FileDescriptorType(rawValue: 10)
    public static let tty = FileDescriptorType(rawValue: 11)
    public static let fanotify = FileDescriptorType(rawValue: 12)
    public static let netlinkSocket = FileDescriptorType(rawValue: 13)
    public static let namespace = FileDescriptorType(rawValue: 14)
    public static let tun = FileDescriptorType(rawValue: 15)
    public static let external = FileDescriptorType(rawValue: 16)
    public static let timerfd = FileDescriptorType(rawValue: 17)
    public static let memfd = FileDescriptorType(rawValue: 18)
    public static let bpfmap = FileDescriptorType(rawValue: 19)
    public static let pidfd = FileDescriptorType(rawValue: 20)

    private static let names = [
        "UND", "REG", "PIPE", "FIFO", "INETSK", "UNIXSK", "EVENTFD", "EVENTPOLL", "INOTIFY", "SIGNALFD", "PACKETSK",
        "TTY", "FANOTIFY", "NETLINKSK", "NS", "TUNF", "EXT", "TIMERFD", "MEMFD", "BPFMAP", "PIDFD",
    ]

    /// The protobuf enum name go-criu prints (`REG`, `PIPE`, `INETSK`, …); for a value Ferry does not know, the
    /// number in decimal, as Go's protobuf `String()` gives it.
    public var name: String {
        rawValue < UInt32(Self.names.count) ? Self.names[Int(rawValue)] : String(rawValue)
    }

    public var description: String { name }
}
