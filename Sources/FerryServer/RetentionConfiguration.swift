public import FerryAPI
import Foundation
internal import Yams

/// Reads `--retention FILE`: the policies as YAML or JSON (JSON is YAML), with the operator's field names, either
/// bare (`globalPolicy: …`) or as a whole `CheckpointRestoreOperator` resource (its `spec`). A field Ferry does not
/// know is refused rather than ignored, so a misspelt limit never silently keeps everything.
public enum RetentionConfiguration {
    public struct Invalid: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    static let globalFields: Set<String> = [
        "retainOrphan", "maxCheckpointsPerNamespace", "maxCheckpointsPerPod", "maxCheckpointsPerContainer",
        "maxCheckpointSize", "maxTotalSizePerNamespace", "maxTotalSizePerPod", "maxTotalSizePerContainer",
    ]
    static let scopedFields: Set<String> = ["namespace", "pod", "container", "retainOrphan", "maxCheckpoints", "maxCheckpointSize", "maxTotalSize"]
    /// The operator's own settings, meaningless for a catalog: accepted and ignored.
    static let operatorOnly: Set<String> = ["checkpointDirectory"]

    public static func load(path: String) throws(Invalid) -> RetentionPolicies {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Invalid(message: "cannot read the retention file \(path)")
        }
        return try parse(text, source: path)
    }

    public static func parse(_ text: String, source: String = "the retention policies") throws(Invalid) -> RetentionPolicies {
        let tree: Any?
        do {
            tree = try Yams.load(yaml: text)
        } catch {
            throw Invalid(message: "\(source) is not YAML or JSON: \(error)")
        }
        guard var root = tree as? [String: Any] else { throw Invalid(message: "\(source) must be a mapping of policies") }
        if root["kind"] as? String == "CheckpointRestoreOperator" || root["spec"] != nil {
            guard let spec = root["spec"] as? [String: Any] else { throw Invalid(message: "\(source): spec must be a mapping") }
            root = spec
        }
        let topLevel: Set<String> = ["applyPoliciesImmediately", "globalPolicy", "namespacePolicies", "podPolicies", "containerPolicies"]
        try check(root, allowed: topLevel.union(operatorOnly), at: source)
        if let global = root["globalPolicy"] {
            guard let mapping = global as? [String: Any] else { throw Invalid(message: "\(source): globalPolicy must be a mapping") }
            try check(mapping, allowed: globalFields, at: "globalPolicy")
        }
        for (list, required) in [("namespacePolicies", ["namespace"]), ("podPolicies", ["namespace", "pod"]),
                                 ("containerPolicies", ["namespace", "pod", "container"])] {
            guard let value = root[list] else { continue }
            guard let entries = value as? [Any] else { throw Invalid(message: "\(source): \(list) must be a list") }
            for (index, entry) in entries.enumerated() {
                guard let mapping = entry as? [String: Any] else { throw Invalid(message: "\(list)[\(index)] must be a mapping") }
                let allowed = scopedFields.subtracting(["namespace", "pod", "container"]).union(required)
                try check(mapping, allowed: allowed, at: "\(list)[\(index)]")
                for field in required where !(mapping[field] is String) {
                    throw Invalid(message: "\(list)[\(index)] needs \(field) (a string; \"\" for a Podman checkpoint's namespace and pod)")
                }
            }
        }
        root = root.filter { !operatorOnly.contains($0.key) }
        let policies: RetentionPolicies
        do {
            let data = try JSONSerialization.data(withJSONObject: root)
            policies = try JSONDecoder().decode(RetentionPolicies.self, from: data)
        } catch let error as DecodingError {
            throw Invalid(message: "\(source): \(describe(error))")
        } catch {
            throw Invalid(message: "\(source): \(error)")
        }
        try validate(policies)
        return policies
    }

    private static func check(_ mapping: [String: Any], allowed: Set<String>, at place: String) throws(Invalid) {
        if let unknown = mapping.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw Invalid(message: "\(place): unknown field \(unknown) (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    /// Counts at least 1, sizes at least 1 byte: leave a limit out for none.
    private static func validate(_ policies: RetentionPolicies) throws(Invalid) {
        var counts: [(String, Int?)] = []
        var sizes: [(String, ByteQuantity?)] = []
        if let global = policies.globalPolicy {
            counts += [("globalPolicy.maxCheckpointsPerNamespace", global.maxCheckpointsPerNamespace),
                       ("globalPolicy.maxCheckpointsPerPod", global.maxCheckpointsPerPod),
                       ("globalPolicy.maxCheckpointsPerContainer", global.maxCheckpointsPerContainer)]
            sizes += [("globalPolicy.maxCheckpointSize", global.maxCheckpointSize),
                      ("globalPolicy.maxTotalSizePerNamespace", global.maxTotalSizePerNamespace),
                      ("globalPolicy.maxTotalSizePerPod", global.maxTotalSizePerPod),
                      ("globalPolicy.maxTotalSizePerContainer", global.maxTotalSizePerContainer)]
        }
        for (list, entries) in [("namespacePolicies", policies.namespacePolicies), ("podPolicies", policies.podPolicies),
                                ("containerPolicies", policies.containerPolicies)] {
            for (index, entry) in (entries ?? []).enumerated() {
                counts.append(("\(list)[\(index)].maxCheckpoints", entry.maxCheckpoints))
                sizes += [("\(list)[\(index)].maxCheckpointSize", entry.maxCheckpointSize),
                          ("\(list)[\(index)].maxTotalSize", entry.maxTotalSize)]
            }
        }
        for (name, value) in counts {
            if let value, value < 1 { throw Invalid(message: "\(name) must be at least 1 (leave it out for no limit)") }
        }
        for (name, value) in sizes {
            if let value, value.bytes < 1 { throw Invalid(message: "\(name) must be at least 1 byte (leave it out for no limit)") }
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return "\(path.isEmpty ? "" : String(path.dropFirst()) + ": ")\(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
