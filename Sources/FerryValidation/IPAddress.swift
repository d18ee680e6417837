/// An IPv4 or IPv6 address parsed from text, in the forms Podman, CNI and CRI-O write (dotted quad; RFC 4291
/// hex groups with at most one `::` and an optional dotted-quad tail). Zone IDs (`%eth0`) and octets with
/// leading zeros (`010.0.0.1`, read as octal by some parsers) are refused.
struct IPAddress: Hashable, Sendable {
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    let bytes: [UInt8]

    var isIPv4: Bool { bytes.count == 4 }

    init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let bytes = Self.parseIPv6(utf8) else { return nil }
            self.bytes = bytes
        } else {
            guard let bytes = Self.parseIPv4(utf8) else { return nil }
            self.bytes = bytes
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:10.0.0.1`), else the address itself. Properties
    /// below look through the mapping, as the kernel does for a dual-stack socket.
    var unmapped: IPAddress {
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return IPAddress(bytes: Array(bytes[12..<16]))
        }
        return self
    }

    var isUnspecified: Bool { unmapped.bytes.allSatisfy { $0 == 0 } }

    var isLoopback: Bool {
        let address = unmapped
        if address.isIPv4 { return address.bytes[0] == 127 }
        return address.bytes[0..<15].allSatisfy { $0 == 0 } && address.bytes[15] == 1
    }

    var isLinkLocal: Bool {
        let address = unmapped
        if address.isIPv4 { return address.bytes[0] == 169 && address.bytes[1] == 254 }
        return address.bytes[0] == 0xfe && address.bytes[1] & 0xc0 == 0x80
    }

    var isMulticast: Bool {
        let address = unmapped
        if address.isIPv4 { return address.bytes[0] & 0xf0 == 0xe0 }
        return address.bytes[0] == 0xff
    }

    var isLimitedBroadcast: Bool {
        let address = unmapped
        return address.isIPv4 && address.bytes.allSatisfy { $0 == 0xff }
    }

    /// What makes the address unusable as a container's own, or nil when it is usable.
    var reservedKind: String? {
        if isUnspecified { return "the unspecified address" }
        if isLoopback { return "a loopback address" }
        if isLinkLocal { return "a link-local address" }
        if isMulticast { return "a multicast address" }
        if isLimitedBroadcast { return "the broadcast address" }
        return nil
    }

    private static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            if part.count > 1 && part.first == UInt8(ascii: "0") { return nil }
            let value = part.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard value <= 255 else { return nil }
            bytes.append(UInt8(value))
        }
        return bytes
    }

    private static func parseIPv4(_ text: [UInt8]) -> [UInt8]? { parseIPv4(text[...]) }

    private static func parseIPv6(_ text: [UInt8]) -> [UInt8]? {
        let colon = UInt8(ascii: ":")
        var doubleColon: Int?
        var index = 0
        while index + 1 < text.count {
            if text[index] == colon && text[index + 1] == colon {
                guard doubleColon == nil else { return nil }
                doubleColon = index
                index += 2
            } else {
                index += 1
            }
        }
        let head: [UInt16], tail: [UInt16]
        if let doubleColon {
            guard let parsedHead = groups(text[..<doubleColon], dottedTailAllowed: false),
                  let parsedTail = groups(text[(doubleColon + 2)...], dottedTailAllowed: true),
                  parsedHead.count + parsedTail.count <= 7
            else { return nil }
            head = parsedHead
            tail = parsedTail
        } else {
            guard let all = groups(text[...], dottedTailAllowed: true), all.count == 8 else { return nil }
            head = all
            tail = []
        }
        let words = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    /// Colon-separated hex groups; the last may be a dotted quad (two groups). Empty text is no groups.
    private static func groups(_ text: ArraySlice<UInt8>, dottedTailAllowed: Bool) -> [UInt16]? {
        guard !text.isEmpty else { return [] }
        let parts = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var words: [UInt16] = []
        for (position, part) in parts.enumerated() {
            if part.contains(UInt8(ascii: ".")) {
                guard dottedTailAllowed, position == parts.count - 1, let quad = parseIPv4(part) else { return nil }
                words.append(UInt16(quad[0]) << 8 | UInt16(quad[1]))
                words.append(UInt16(quad[2]) << 8 | UInt16(quad[3]))
                continue
            }
            guard (1...4).contains(part.count) else { return nil }
            var value: UInt16 = 0
            for byte in part {
                guard let digit = hexValue(byte) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            words.append(value)
        }
        return words
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}

/// An interface address with its prefix, as CIDR text (`10.88.0.6/16`): the host address, not the network.
struct IPSubnet: Hashable, Sendable {
    let address: IPAddress
    let prefixLength: Int

    /// Parses `address/prefix`; the prefix must be 1…32 for IPv4 and 1…128 for IPv6 (a /0 "subnet" would put
    /// the whole internet on-link, which no container network does).
    init?(cidr text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(parts[0]),
              !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy({ $0 >= "0" && $0 <= "9" }), let prefix = Int(parts[1]),
              (1...(address.bytes.count * 8)).contains(prefix)
        else { return nil }
        self.address = address
        self.prefixLength = prefix
    }

    init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Whether `other` is in this subnet (same family after unmapping IPv4-mapped IPv6, same leading bits).
    func contains(_ other: IPAddress) -> Bool {
        let candidate = address.isIPv4 ? other.unmapped : other
        guard candidate.bytes.count == address.bytes.count else { return false }
        for bit in 0..<prefixLength {
            let mask = UInt8(0x80) >> UInt8(bit % 8)
            if candidate.bytes[bit / 8] & mask != address.bytes[bit / 8] & mask { return false }
        }
        return true
    }

    /// The host bits of the address, all zero (`network`) or all one (`broadcast`, IPv4 only); nil for an ordinary
    /// host address. /31 and /32 (and IPv6 /127, /128) have no such addresses.
    var specialHostKind: String? {
        let width = address.bytes.count * 8
        guard width - prefixLength >= 2 else { return nil }
        var allZero = true, allOne = true
        for bit in prefixLength..<width {
            let set = address.bytes[bit / 8] & (UInt8(0x80) >> UInt8(bit % 8)) != 0
            if set { allZero = false } else { allOne = false }
        }
        if allZero { return "the network address of its subnet" }
        if allOne && address.isIPv4 { return "the broadcast address of its subnet" }
        return nil
    }
}

/// A 48-bit MAC address written as six hex octets separated by `:` or `-`.
struct MACAddress: Hashable, Sendable {
    let bytes: [UInt8]

    init?(_ text: some StringProtocol) {
        let separator: Character = text.contains("-") ? "-" : ":"
        let parts = text.split(separator: separator, omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            let utf8 = Array(part.utf8)
            guard utf8.count == 2, let high = IPAddress.hexValue(utf8[0]), let low = IPAddress.hexValue(utf8[1]) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        self.bytes = bytes
    }

    /// The group bit of the first octet: a multicast (or broadcast) address, never an interface's own.
    var isMulticast: Bool { bytes[0] & 1 == 1 }
    var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
}
