/// The Pod that restores a checkpoint in Kubernetes (CRI-O, containerd 2.0–2.3): its container's image is the
/// checkpoint's `oci_reference`, which the runtime recognises as a checkpoint image by its annotations and restores
/// instead of starting; `nodeName` pins it to the node chosen to restore on (the scheduler is bypassed, so the
/// node's runtime and CRIU are the ones preflight judged). `restartPolicy: Never`: a restored container that ends
/// is not restored again from the same checkpoint behind the user's back.
public struct RestorePod: Codable, Sendable, Equatable {
    public struct Metadata: Codable, Sendable, Equatable {
        public var name: String
        public var namespace: String
        public var labels: [String: String]
        public var annotations: [String: String]
    }

    public struct Container: Codable, Sendable, Equatable {
        public var name: String
        public var image: String
        public var imagePullPolicy: String
    }

    public struct SecretReference: Codable, Sendable, Equatable {
        public var name: String
    }

    public struct Spec: Codable, Sendable, Equatable {
        public var nodeName: String
        public var restartPolicy: String
        public var imagePullSecrets: [SecretReference]?
        public var containers: [Container]
    }

    public var apiVersion = "v1"
    public var kind = "Pod"
    public var metadata: Metadata
    public var spec: Spec

    /// The Pod for a checkpoint.
    /// - Parameters:
    ///   - reference: the checkpoint's `oci_reference`.
    ///   - container: the checkpointed container's name (the Pod's container gets it too).
    ///   - podName: nil for `<the checkpointed pod, or the container>-restored`.
    ///   - namespace: nil for the checkpointed pod's namespace, else `default`.
    public init(checkpoint id: String, reference: String, container: String, originalPod: String?, originalNamespace: String?,
                sourceNode: String?, node: String, podName: String? = nil, namespace: String? = nil, pullSecret: String? = nil) {
        let name = podName ?? Self.dnsLabel((originalPod ?? container) + "-restored")
        var annotations = ["ferry.io/checkpoint": "sha256:" + id, "ferry.io/image": reference]
        if let sourceNode { annotations["ferry.io/source-node"] = sourceNode }
        if let originalPod { annotations["ferry.io/source-pod"] = (originalNamespace.map { $0 + "/" } ?? "") + originalPod }
        metadata = Metadata(name: name, namespace: namespace ?? originalNamespace ?? "default",
                            labels: ["app.kubernetes.io/managed-by": "ferry", "ferry.io/checkpoint": String(id.prefix(12))],
                            annotations: annotations)
        spec = Spec(nodeName: node, restartPolicy: "Never", imagePullSecrets: pullSecret.map { [SecretReference(name: $0)] },
                    containers: [Container(name: Self.dnsLabel(container), image: reference, imagePullPolicy: "IfNotPresent")])
    }

    /// A name Kubernetes takes for a pod or container: lowercase letters, digits and '-', at most 63, starting and
    /// ending with a letter or digit.
    public static func dnsLabel(_ text: String) -> String {
        var result = ""
        for scalar in text.lowercased().unicodeScalars {
            let ok = ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
            if ok { result.unicodeScalars.append(scalar) } else if !result.isEmpty && !result.hasSuffix("-") { result += "-" }
        }
        result = String(result.prefix(63))
        while result.hasSuffix("-") { result.removeLast() }
        return result.isEmpty ? "restored" : result
    }

    /// The manifest as YAML (every string double-quoted, so no value is read as another type).
    public func yaml() -> String {
        var lines = ["apiVersion: \(Self.quoted(apiVersion))", "kind: \(Self.quoted(kind))", "metadata:",
                     "  name: \(Self.quoted(metadata.name))", "  namespace: \(Self.quoted(metadata.namespace))", "  labels:"]
        lines += metadata.labels.sorted { $0.key < $1.key }.map { "    \(Self.quoted($0.key)): \(Self.quoted($0.value))" }
        lines.append("  annotations:")
        lines += metadata.annotations.sorted { $0.key < $1.key }.map { "    \(Self.quoted($0.key)): \(Self.quoted($0.value))" }
        lines += ["spec:", "  nodeName: \(Self.quoted(spec.nodeName))", "  restartPolicy: \(Self.quoted(spec.restartPolicy))"]
        if let secrets = spec.imagePullSecrets {
            lines.append("  imagePullSecrets:")
            lines += secrets.map { "  - name: \(Self.quoted($0.name))" }
        }
        lines.append("  containers:")
        for container in spec.containers {
            lines += ["  - name: \(Self.quoted(container.name))", "    image: \(Self.quoted(container.image))",
                      "    imagePullPolicy: \(Self.quoted(container.imagePullPolicy))"]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A YAML double-quoted scalar (JSON's string escapes are YAML's).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
