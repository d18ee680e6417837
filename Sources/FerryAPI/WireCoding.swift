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
