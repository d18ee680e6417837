/// One thing validation found about a checkpoint archive, or about restoring it on a particular node.
///
/// Errors make the archive unfit to restore (or unfit to restore *there*); warnings point at something that may
/// go wrong or needs a step first; infos only describe. `path` names what the finding concerns inside the archive
/// (`rootfs-diff.tar:etc/../../x`, `network.status:podman/eth0`, `spec.dump:io.kubernetes.cri-o.Labels`), and
/// `waiver` the restore option that makes the finding moot, when there is one.
public struct Finding: Codable, Sendable, Equatable, CustomStringConvertible {
    /// How much a finding matters.
    public enum Severity: String, Codable, Sendable, CaseIterable {
        /// The archive cannot, or must not, be restored (on that target).
        case error
        /// The restore may fail or needs a step first; the archive itself is usable.
        case warning
        /// Worth knowing; nothing to fix.
        case info
    }

    /// A ``FindingCode`` raw value, e.g. `INNER_ENTRY_PATH_TRAVERSAL`.
    public var code: String
    public var severity: Severity
    /// The archive path the finding concerns; nil when it concerns the archive as a whole.
    public var path: String?
    public var message: String
    /// The restore option (or step) that waives the finding, e.g. `--ignore-static-ip`.
    public var waiver: String?

    public init(code: String, severity: Severity, path: String?, message: String, waiver: String? = nil) {
        self.code = code
        self.severity = severity
        self.path = path
        self.message = message
        self.waiver = waiver
    }

    public init(_ code: FindingCode, _ severity: Severity, path: String?, _ message: String, waiver: String? = nil) {
        self.init(code: code.rawValue, severity: severity, path: path, message: message, waiver: waiver)
    }

    enum CodingKeys: String, CodingKey {
        case code, severity, path, message, waiver
    }

    // Absent values are written as `null`, so every finding in the JSON has the same five keys.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(severity, forKey: .severity)
        try container.encode(path, forKey: .path)
        try container.encode(message, forKey: .message)
        try container.encode(waiver, forKey: .waiver)
    }

    /// One line: `error CODE path: message (waive with --flag)`, or `(waive: step)` when the waiver is a step.
    /// Control characters (a hostile entry name may hold a newline) are escaped so the finding stays on its line.
    public var description: String {
        var line = "\(severity.rawValue) \(code)"
        line += path.map { " \(Self.escaped($0)): " } ?? ": "
        line += Self.escaped(message)
        if let waiver { line += waiver.hasPrefix("--") ? " (waive with \(waiver))" : " (waive: \(waiver))" }
        return line
    }

    static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7f {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension Array where Element == Finding {
    /// How many findings have `severity`.
    public func count(of severity: Finding.Severity) -> Int {
        lazy.filter { $0.severity == severity }.count
    }
}
