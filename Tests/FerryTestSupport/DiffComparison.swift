public import Foundation

/// Compares `diff` output with checkpointctl's, which walks Go maps and so prints its lines, and lists its JSON
/// arrays, in a different order on every run: text as a multiset of lines, JSON with every array as a multiset of
/// its elements. Nothing else is normalised.
public enum DiffComparison {
    /// The shipped checkpointctl output of `diff podman-series-1.tar podman-series-2.tar` (`.txt` or `.json`).
    public static func reference(_ ending: String) throws -> Data {
        try Data(contentsOf: Fixtures.archivesDirectory.appendingPathComponent("podman-series-1-vs-2.diff.\(ending)"))
    }

    /// Lines and how often each occurs.
    public static func lines(_ text: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) { counts[String(line), default: 0] += 1 }
        return counts
    }

    /// The lines whose counts differ, for a failure message.
    public static func lineDifferences(_ ours: String, _ theirs: String) -> [String] {
        let (mine, reference) = (lines(ours), lines(theirs))
        return Set(mine.keys).union(reference.keys).sorted().compactMap { line in
            mine[line] == reference[line] ? nil : "\(mine[line] ?? 0)× ours, \(reference[line] ?? 0)× checkpointctl: \(line)"
        }
    }

    /// A canonical text for a parsed JSON value: object keys sorted, array elements sorted (a multiset).
    public static func canonical(_ value: Any) -> String {
        switch value {
        case let object as [String: Any]:
            return "{" + object.keys.sorted().map { "\($0):\(canonical(object[$0]!))" }.joined(separator: ",") + "}"
        case let array as [Any]:
            return "[" + array.map(canonical).sorted().joined(separator: ",") + "]"
        case let text as String:
            return "\"\(text)\""
        case is NSNull:
            return "null"
        default:
            return "\(value)"
        }
    }

    /// The canonical text of JSON bytes.
    public static func canonicalJSON(_ data: Data) throws -> String {
        canonical(try JSONSerialization.jsonObject(with: data))
    }
}
