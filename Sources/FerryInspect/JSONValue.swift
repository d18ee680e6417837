/// A JSON value whose objects keep their key order, so reports come out in checkpointctl's field order and
/// byte-for-byte the same on every run.
public indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    /// Written as Go writes a float64 that needs no exponent: integral values without a fraction (`1`), others
    /// in their shortest form (`0.1171875`).
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case let (.string(a), .string(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case (.null, .null): return true
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Serialises with two-space indentation, as `json.MarshalIndent(v, "", "  ")` does, including Go's escaping of
    /// `<`, `>` and `&`.
    public func serialized() -> String {
        var out = ""
        write(to: &out, depth: 0)
        return out
    }

    private func write(to out: inout String, depth: Int) {
        switch self {
        case .string(let text): Self.writeString(text, to: &out)
        case .int(let number): out += String(number)
        case .double(let number):
            if number.rounded() == number, abs(number) < 1e18 { out += String(Int64(number)) } else { out += "\(number)" }
        case .bool(let flag): out += flag ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "[\n"
            for (index, item) in items.enumerated() {
                out += String(repeating: "  ", count: depth + 1)
                item.write(to: &out, depth: depth + 1)
                out += index == items.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: "  ", count: depth) + "]"
        case .object(let members):
            guard !members.isEmpty else { out += "{}"; return }
            out += "{\n"
            for (index, (key, value)) in members.enumerated() {
                out += String(repeating: "  ", count: depth + 1)
                Self.writeString(key, to: &out)
                out += ": "
                value.write(to: &out, depth: depth + 1)
                out += index == members.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: "  ", count: depth) + "}"
        }
    }

    private static func writeString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += "\\u" + hex4(scalar.value)
            case _ where scalar.value < 0x20:
                out += "\\u" + hex4(scalar.value)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// Builds an object, leaving out members whose value is nil (Go's `omitempty`).
struct JSONObjectBuilder {
    private(set) var members: [(String, JSONValue)] = []

    mutating func add(_ key: String, _ value: JSONValue?) {
        if let value { members.append((key, value)) }
    }

    mutating func add(_ key: String, nonEmpty text: String?) {
        if let text, !text.isEmpty { members.append((key, .string(text))) }
    }

    var value: JSONValue { .object(members) }
}
