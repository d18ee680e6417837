public import Foundation

extension JSONEncoder {
    /// The encoder of every wire message: sorted keys, slashes unescaped (so output is stable and diffable).
    public static var wire: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// RFC 3339 timestamps with milliseconds, UTC: the form of every `*_at` field on the wire.
public enum WireTime {
    public static func string(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    public static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// Milliseconds from `start` to `end`, when both parse.
    public static func milliseconds(from start: String?, to end: String?) -> Int64? {
        guard let start, let end, let from = date(start), let to = date(end) else { return nil }
        return Int64((to.timeIntervalSince(from) * 1000).rounded())
    }
}

/// Lower-case hex, two digits a byte: how digests (`sha256:<hex>`), checkpoint IDs and key IDs are written
/// everywhere in Ferry.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func string(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
