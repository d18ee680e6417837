/// What the access log may show of a request target: the path and query as sent, with the values of secret-bearing
/// query parameters replaced and control characters neutralised. Bodies and headers (Authorization) are never logged.
enum AccessLog {
    /// Query parameter names whose values are never logged (compared lowercased; any name ending in "token" too).
    static let secretParameters: Set<String> = ["token", "password", "secret", "api_key", "apikey", "signature"]

    static func redactedTarget(_ target: String) -> String {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var result = String(parts[0])
        if parts.count == 2 {
            let pairs = parts[1].split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
                let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
                let decoded = PercentDecoding.decode(name, plusIsSpace: true).lowercased()
                guard secretParameters.contains(decoded) || decoded.hasSuffix("token") else { return String(pair) }
                return "\(name)=REDACTED"
            }
            result += "?" + pairs.joined(separator: "&")
        }
        return sanitized(result)
    }

    /// Control characters and spaces become `?`, so one request is one log line whatever the client sent.
    static func sanitized(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return text }
        return String(decoding: text.utf8.map { $0 <= 0x20 || $0 == 0x7F ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }
}
