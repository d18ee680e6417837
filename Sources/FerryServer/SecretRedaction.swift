import Foundation

/// Environment values read from an archive's memory pages hold secrets (tokens, passwords). Only callers allowed
/// to see secrets (an admin token, or the loopback-only service without tokens) get them; everyone else sees each
/// variable's name with its value replaced.
enum SecretRedaction {
    static let placeholder = "[REDACTED]"

    /// Whether `identity` may see secret values: admins, and anyone when the service has no tokens (loopback only).
    static func allowsSecrets(_ identity: TokenIdentity?, tokensConfigured: Bool) -> Bool {
        guard tokensConfigured else { return true }
        return identity?.role == .admin
    }

    /// The inspection JSON with every `environment_variables` value replaced.
    static func redactedInspection(_ text: String) -> String {
        guard text.contains("\"environment_variables\""),
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
              let data = try? JSONSerialization.data(withJSONObject: redact(object), options: [.sortedKeys]) else { return text }
        return String(decoding: data, as: UTF8.self)
    }

    static func redact(_ value: Any) -> Any {
        if let object = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (key, item) in object {
                if key == "environment_variables", let variables = item as? [String: Any] {
                    result[key] = variables.mapValues { _ in placeholder }
                } else {
                    result[key] = redact(item)
                }
            }
            return result
        }
        if let array = value as? [Any] { return array.map(redact) }
        return value
    }
}
