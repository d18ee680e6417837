/// Socket options common to every socket kind (`sk_opts_entry`); Ferry keeps the buffer sizes checkpointctl
/// shows.
public struct SocketOptions: ProtobufDecodable, Hashable {
    /// `SO_SNDBUF` in bytes (the kernel's doubled value, as `getsockopt` returns it).
    public var sendBuffer: UInt32
    /// `SO_RCVBUF` in bytes.
    public var receiveBuffer: UInt32
    public var reuseAddress: Bool?
    public var reusePort: Bool?
    public var keepAlive: Bool?
    public var boundDevice: String?

    public init(sendBuffer: UInt32, receiveBuffer: UInt32) {
        self.sendBuffer = sendBuffer
        self.receiveBuffer = receiveBuffer
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var options = SocketOptions(sendBuffer: 0, receiveBuffer: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: options.sendBuffer = try reader.uint32(field)
            case 2: options.receiveBuffer = try reader.uint32(field)
            case 7: options.reuseAddress = try reader.bool(field)
            case 15: options.boundDevice = try reader.string(field)
            case 17: options.reusePort = try reader.bool(field)
            case 19: options.keepAlive = try reader.bool(field)
            default: try reader.skip(field)
            }
        }
        self = options
    }
}

/// A TCP, UDP or raw IP socket (`inet_sk_entry`).
public struct InetSocketEntry: ProtobufDecodable, Hashable {
    public var id: UInt32
    public var inode: UInt32
    /// `AF_INET` 2 or `AF_INET6` 10.
    public var family: UInt32
    /// `SOCK_STREAM` 1, `SOCK_DGRAM` 2, …
    public var type: UInt32
    /// `IPPROTO_TCP` 6, `IPPROTO_UDP` 17, …
    public var proto: UInt32
    /// The kernel's TCP state numbering (`TCP_ESTABLISHED` 1 … `TCP_LISTEN` 10).
    public var state: UInt32
    public var sourcePort: UInt32
    public var destinationPort: UInt32
    public var flags: UInt32
    public var backlog: UInt32
    /// The address as 32-bit words in network byte order read little-endian: one word for IPv4, four for IPv6.
    public var sourceAddress: [UInt32]
    public var destinationAddress: [UInt32]
    public var options: SocketOptions?
    public var v6Only: Bool?
    public var interfaceName: String?

    public init(id: UInt32, family: UInt32, type: UInt32, proto: UInt32, state: UInt32) {
        self.id = id
        self.inode = 0
        self.family = family
        self.type = type
        self.proto = proto
        self.state = state
        self.sourcePort = 0
        self.destinationPort = 0
        self.flags = 0
        self.backlog = 0
        self.sourceAddress = []
        self.destinationAddress = []
    }

    /// `src_addr` (11) and `dst_addr` (12) are `repeated uint32`: CRIU writes them unpacked, other writers may
    /// pack them, and both are read.
    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var entry = InetSocketEntry(id: 0, family: 0, type: 0, proto: 0, state: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: entry.id = try reader.uint32(field)
            case 2: entry.inode = try reader.uint32(field)
            case 3: entry.family = try reader.uint32(field)
            case 4: entry.type = try reader.uint32(field)
            case 5: entry.proto = try reader.uint32(field)
            case 6: entry.state = try reader.uint32(field)
            case 7: entry.sourcePort = try reader.uint32(field)
            case 8: entry.destinationPort = try reader.uint32(field)
            case 9: entry.flags = try reader.uint32(field)
            case 10: entry.backlog = try reader.uint32(field)
            case 11: try reader.appendUInt32s(field, to: &entry.sourceAddress)
            case 12: try reader.appendUInt32s(field, to: &entry.destinationAddress)
            case 14: entry.options = try reader.message(field)
            case 15: entry.v6Only = try reader.bool(field)
            case 17: entry.interfaceName = try reader.string(field)
            default: try reader.skip(field)
            }
        }
        self = entry
    }
}

/// A UNIX domain socket (`unix_sk_entry`).
public struct UnixSocketEntry: ProtobufDecodable, Hashable {
    public var id: UInt32
    public var inode: UInt32
    public var type: UInt32
    public var state: UInt32
    public var flags: UInt32
    public var uflags: UInt32
    public var backlog: UInt32
    /// The peer's inode, 0 when unconnected.
    public var peer: UInt32
    public var options: SocketOptions?
    /// The bound name as bytes: abstract names start with NUL and may contain more.
    public var name: [UInt8]
    public var nameDirectory: String?
    public var deleted: Bool?

    public init(id: UInt32, inode: UInt32 = 0, type: UInt32, state: UInt32, peer: UInt32 = 0, name: [UInt8] = []) {
        self.id = id
        self.inode = inode
        self.type = type
        self.state = state
        self.flags = 0
        self.uflags = 0
        self.backlog = 0
        self.peer = peer
        self.name = name
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var entry = UnixSocketEntry(id: 0, type: 0, state: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: entry.id = try reader.uint32(field)
            case 2: entry.inode = try reader.uint32(field)
            case 3: entry.type = try reader.uint32(field)
            case 4: entry.state = try reader.uint32(field)
            case 5: entry.flags = try reader.uint32(field)
            case 6: entry.uflags = try reader.uint32(field)
            case 7: entry.backlog = try reader.uint32(field)
            case 8: entry.peer = try reader.uint32(field)
            case 10: entry.options = try reader.message(field)
            case 11: entry.name = Array(try reader.bytesValue(field))
            case 14: entry.nameDirectory = try reader.string(field)
            case 15: entry.deleted = try reader.bool(field)
            default: try reader.skip(field)
            }
        }
        self = entry
    }
}

/// An `AF_PACKET` socket (`packet_sock_entry`).
public struct PacketSocketEntry: ProtobufDecodable, Hashable {
    public var id: UInt32
    public var type: UInt32
    /// The Ethernet protocol in network byte order (`htons(ETH_P_ALL)` is 0x0300).
    public var proto: UInt32
    public var flags: UInt32
    public var interfaceIndex: UInt32
    public var options: SocketOptions?

    public init(id: UInt32, type: UInt32, proto: UInt32) {
        self.id = id
        self.type = type
        self.proto = proto
        self.flags = 0
        self.interfaceIndex = 0
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var entry = PacketSocketEntry(id: 0, type: 0, proto: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: entry.id = try reader.uint32(field)
            case 2: entry.type = try reader.uint32(field)
            case 3: entry.proto = try reader.uint32(field)
            case 4: entry.flags = try reader.uint32(field)
            case 5: entry.interfaceIndex = try reader.uint32(field)
            case 7: entry.options = try reader.message(field)
            default: try reader.skip(field)
            }
        }
        self = entry
    }
}

/// An `AF_NETLINK` socket (`netlink_sk_entry`).
public struct NetlinkSocketEntry: ProtobufDecodable, Hashable {
    public var id: UInt32
    public var inode: UInt32
    /// `NETLINK_ROUTE` 0, …
    public var proto: UInt32
    public var state: UInt32
    public var flags: UInt32
    public var portID: UInt32
    public var destinationPortID: UInt32
    public var destinationGroup: UInt32
    public var options: SocketOptions?

    public init(id: UInt32, proto: UInt32, state: UInt32) {
        self.id = id
        self.inode = 0
        self.proto = proto
        self.state = state
        self.flags = 0
        self.portID = 0
        self.destinationPortID = 0
        self.destinationGroup = 0
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var entry = NetlinkSocketEntry(id: 0, proto: 0, state: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: entry.id = try reader.uint32(field)
            case 2: entry.inode = try reader.uint32(field)
            case 3: entry.proto = try reader.uint32(field)
            case 4: entry.state = try reader.uint32(field)
            case 6: entry.flags = try reader.uint32(field)
            case 7: entry.portID = try reader.uint32(field)
            case 9: entry.destinationPortID = try reader.uint32(field)
            case 10: entry.destinationGroup = try reader.uint32(field)
            case 12: entry.options = try reader.message(field)
            default: try reader.skip(field)
            }
        }
        self = entry
    }
}
