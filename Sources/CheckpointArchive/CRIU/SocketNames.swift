/// The names go-criu's `ExploreSk` gives socket numbers (`crit/utils.go`), which checkpointctl prints: Linux
/// constants by their short name, and "" for a value it does not list.
enum SocketNames {
    /// `include/net/tcp_states.h`. go-criu applies this table to every socket kind's state, UNIX and netlink
    /// included, after narrowing the value to 8 bits.
    static func state(_ value: UInt32) -> String {
        let names = [
            "", "ESTABLISHED", "SYN_SENT", "SYN_RECEIVED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT", "CLOSE",
            "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
        ]
        let narrowed = Int(UInt8(truncatingIfNeeded: value))
        return narrowed < names.count ? names[narrowed] : ""
    }

    static func family(_ value: UInt32) -> String {
        switch value {
        case 1: "UNIX"
        case 2: "IPV4"
        case 7: "BRIDGE"
        case 10: "IPV6"
        case 15: "KEY"
        case 16: "NETLINK"
        case 17: "PACKET"
        default: ""
        }
    }

    static func type(_ value: UInt32) -> String {
        switch value {
        case 1: "STREAM"
        case 2: "DGRAM"
        case 3: "RAW"
        case 4: "RDM"
        case 5: "SEQPACKET"
        case 10: "PACKET"
        default: ""
        }
    }

    static func proto(_ value: UInt32) -> String {
        switch value {
        case 1: "ICMP"
        case 2: "IGMP"
        case 6: "TCP"
        case 17: "UDP"
        case 58: "ICMPV6"
        case 136: "UDPLITE"
        case 255: "RAW"
        default: ""
        }
    }
}

/// Text forms of the IP addresses CRIU stores as 32-bit words (`inet_sk_entry.src_addr`/`dst_addr`).
public enum InetAddressText {
    /// The address written correctly: dotted quad for one word, RFC 5952 for four (lower-case hex, the longest
    /// run of two or more zero groups as `::`), with IPv4-mapped addresses as `::ffff:a.b.c.d`. Any other word
    /// count gives "", as go-criu does.
    public static func string(fromWords words: [UInt32]) -> String {
        switch words.count {
        case 1: return dotted(bytes(of: words)[...])
        case 4: return ipv6(bytes(of: words))
        default: return ""
        }
    }

    /// The address as checkpointctl 1.5 (go-criu `processIP`) prints it. For four words go-criu writes every word
    /// over the first four bytes, so only the last word survives: `::ffff:127.0.0.1` comes out as `7f00:1::`.
    /// Kept only so a renderer can reproduce checkpointctl's output byte for byte.
    public static func checkpointctlString(fromWords words: [UInt32]) -> String {
        switch words.count {
        case 1: return dotted(bytes(of: words)[...])
        case 4:
            var mangled = [UInt8](repeating: 0, count: 16)
            let last = bytes(of: [words[3]])
            mangled.replaceSubrange(0..<4, with: last)
            return ipv6(mangled)
        default: return ""
        }
    }

    /// The words hold the address in network order, each read as a little-endian u32.
    private static func bytes(of words: [UInt32]) -> [UInt8] {
        words.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * UInt32($0))) } }
    }

    private static func dotted(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map(String.init).joined(separator: ".")
    }

    private static func ipv6(_ bytes: [UInt8]) -> String {
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return "::ffff:" + dotted(bytes[12..<16])
        }
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        // The first longest run of at least two zero groups becomes "::".
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = end
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestStart >= 0 else { return hex.joined(separator: ":") }
        let head = hex[..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }
}
