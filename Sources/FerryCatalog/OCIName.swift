/// Names in the registry view (`/v2/`): every checkpoint is an image in a repository named after what it
/// checkpointed, tagged with its short ID, and the newest in each repository is also `latest`.
///
/// - A Kubernetes container: `checkpoints/NAMESPACE/POD/CONTAINER`
/// - A container in a Podman pod: `checkpoints/POD/CONTAINER`
/// - Any other container: `checkpoints/CONTAINER`
///
/// Each part is made to fit the distribution spec's path component (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`):
/// lowercased, and every other run of characters becomes one `-`.
public enum OCIName {
    /// Where the registry view serves a checkpoint.
    public static func repository(containerName: String, podName: String?, podNamespace: String?) -> String {
        var parts: [String] = []
        if let podNamespace, !podNamespace.isEmpty, let podName, !podName.isEmpty { parts.append(podNamespace) }
        if let podName, !podName.isEmpty { parts.append(podName) }
        parts.append(containerName)
        return (["checkpoints"] + parts.map { component($0, maximumLength: maximumComponentLength) }).joined(separator: "/")
    }

    /// Each part is cut to this many characters: at most 12 + 3 × 64 < 255, the name length registries accept.
    static let maximumComponentLength = 63

    /// The tag of one checkpoint: the first 12 hex digits of its ID.
    public static func tag(of id: String) -> String { String(id.prefix(12)) }

    /// One path component: lowercase letters and digits, with `.`, `_`, `__` or `-` only between them.
    static func component(_ text: String, maximumLength: Int = .max) -> String {
        var result = ""
        var separator = ""
        for scalar in text.lowercased().unicodeScalars {
            if result.unicodeScalars.count >= maximumLength { break }
            let isAlphanumeric = ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
            if isAlphanumeric {
                if !result.isEmpty && !separator.isEmpty {
                    result += ["." , "_", "__"].contains(separator) || separator.allSatisfy({ $0 == "-" }) ? separator : "-"
                }
                separator = ""
                result.unicodeScalars.append(scalar)
            } else {
                separator.unicodeScalars.append(scalar)
            }
        }
        return result.isEmpty ? "unnamed" : result
    }

    /// Whether `name` is a repository name the distribution spec allows.
    public static func isValidRepository(_ name: String) -> Bool {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        return !parts.isEmpty && name.utf8.count <= 255 && parts.allSatisfy { component(String($0)) == $0 }
    }

    /// Whether `tag` is a tag the distribution spec allows (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
    public static func isValidTag(_ tag: String) -> Bool {
        guard let first = tag.unicodeScalars.first, tag.unicodeScalars.count <= 128 else { return false }
        func word(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_"
        }
        return word(first) && tag.unicodeScalars.allSatisfy { word($0) || $0 == "." || $0 == "-" }
    }
}
