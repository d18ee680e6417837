/// One socket descriptor of a process, with the facts checkpointctl's `--sockets` shows (go-criu `ExploreSk`).
///
/// The string fields carry go-criu's names; the raw numbers sit beside them. Two go-criu habits are kept in the
/// names so a renderer reproduces checkpointctl: packet and netlink sockets take both `type` and
/// `protocolName` from the socket's protocol number, and every kind's state is named from the TCP state table.
/// Addresses are written correctly (`sourceAddress`); `InetAddressText.checkpointctlString(fromWords:)` gives
/// checkpointctl's mangled IPv6 form (`7f00:1::` for `::ffff:127.0.0.1`) when byte-for-byte output is wanted.
public struct OpenSocket: Sendable, Hashable {
    /// The descriptor kind, named as go-criu's `FdType`.
    public enum Kind: String, Sendable, Hashable {
        case inet = "INETSK"
        case unix = "UNIXSK"
        case packet = "PACKETSK"
        case netlink = "NETLINKSK"
    }

    public var kind: Kind
    public var fd: UInt32
    /// Whether `files.img` described the socket; when not, every field below is empty, as in go-criu.
    public var isDescribed: Bool

    /// `IPV4`, `IPV6`, … (inet sockets only).
    public var family: String
    /// `TCP`, `UDP`, …: checkpointctl's "protocol".
    public var protocolName: String
    /// `STREAM`, `DGRAM`, …
    public var type: String
    /// `LISTEN`, `ESTABLISHED`, …
    public var state: String
    public var sourceAddress: String
    public var sourcePort: UInt32
    public var destinationAddress: String
    public var destinationPort: UInt32
    /// The address words as stored, for `InetAddressText`.
    public var sourceAddressWords: [UInt32]
    public var destinationAddressWords: [UInt32]
    public var sendBufferSize: UInt32
    public var receiveBufferSize: UInt32
    /// The bound name of a UNIX socket, raw (abstract names start with NUL).
    public var unixAddress: [UInt8]

    public var rawFamily: UInt32?
    public var rawType: UInt32?
    public var rawProtocol: UInt32?
    public var rawState: UInt32?

    public init(kind: Kind, fd: UInt32) {
        self.kind = kind
        self.fd = fd
        self.isDescribed = false
        self.family = ""
        self.protocolName = ""
        self.type = ""
        self.state = ""
        self.sourceAddress = ""
        self.sourcePort = 0
        self.destinationAddress = ""
        self.destinationPort = 0
        self.sourceAddressWords = []
        self.destinationAddressWords = []
        self.sendBufferSize = 0
        self.receiveBufferSize = 0
        self.unixAddress = []
    }

    /// The UNIX socket name as go-criu turns the bytes into a string (checkpointctl's "address").
    public var unixAddressString: String { String(decoding: unixAddress, as: UTF8.self) }

    /// checkpointctl's "send_buf", e.g. `16.0 KB`.
    public var sendBufferText: String { Self.bufferSizeText(UInt64(sendBufferSize)) }
    /// checkpointctl's "recv_buf", e.g. `128.0 KB`.
    public var receiveBufferText: String { Self.bufferSizeText(UInt64(receiveBufferSize)) }

    /// go-criu's `countBytes`: below 1024 `N B`, else one decimal and a 1024-based unit letter followed by `B`
    /// (`16.0 KB`, `3.8 MB`: KB, not KiB). Ties round to even, as Go's `%.1f` does for these exact quotients.
    public static func bufferSizeText(_ bytes: UInt64) -> String {
        guard bytes >= 1024 else { return "\(bytes) B" }
        let units: [Character] = ["K", "M", "G", "T", "P", "E"]
        var divisor: UInt64 = 1024
        var exponent = 0
        var rest = bytes / 1024
        while rest >= 1024 {
            divisor *= 1024
            exponent += 1
            rest /= 1024
        }
        // Tenths of the unit, rounded half to even, in 128-bit-safe steps.
        let whole = bytes / divisor
        let remainder = bytes % divisor
        let scaled = remainder.multipliedFullWidth(by: 10)
        let (tenthsDigit, tenthsRemainder) = divisor.dividingFullWidth(scaled)
        var tenths = whole * 10 + tenthsDigit
        let above = divisor - tenthsRemainder
        if tenthsRemainder > above || (tenthsRemainder == above && tenths % 2 == 1) {
            tenths += 1
        }
        return "\(tenths / 10).\(tenths % 10) \(units[exponent])B"
    }
}

/// The sockets of one process, in descriptor order.
public struct ProcessSockets: Sendable, Hashable {
    public var pid: UInt32
    public var sockets: [OpenSocket]

    public init(pid: UInt32, sockets: [OpenSocket]) {
        self.pid = pid
        self.sockets = sockets
    }
}
