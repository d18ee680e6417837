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
        public var resources: Resources?
    }

    /// `limits` and `requests` as Kubernetes quantities (`"536870912"` bytes, `"500m"` CPU).
    public struct Resources: Codable, Sendable, Equatable {
        public var limits: [String: String]?
        public var requests: [String: String]?
    }

    /// What the checkpointed container's OCI spec limited, as the Pod's resources: `memory.limit` → the memory
    /// limit; `cpu.quota`/`cpu.period` → the CPU limit; `cpu.shares` → the CPU request (the kubelet writes 1024
    /// shares per CPU requested). Nil when the spec set none.
    public static func resources(memoryLimitBytes: Int64?, cpuQuota: Int64?, cpuPeriod: Int64?, cpuShares: Int64?) -> Resources? {
        var limits: [String: String] = [:]
        var requests: [String: String] = [:]
        if let memory = memoryLimitBytes, memory > 0 { limits["memory"] = String(memory) }
        if let quota = cpuQuota, let period = cpuPeriod, quota > 0, period > 0 {
            limits["cpu"] = "\(max(1, quota * 1000 / period))m"
        }
        // 2 shares is the kubelet's value for no request at all.
        if let shares = cpuShares, shares > 2 { requests["cpu"] = "\(max(1, shares * 1000 / 1024))m" }
        if limits.isEmpty && requests.isEmpty { return nil }
        return Resources(limits: limits.isEmpty ? nil : limits, requests: requests.isEmpty ? nil : requests)
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
    ///   - labels: labels the archive recorded for the original pod; Ferry's own are added (and win).
    ///   - resources: the original container's limits (`resources(memoryLimitBytes:…)`).
    ///   - migration: the Ferry migration this Pod is the outcome of (annotation `ferry.io/migration`).
    public init(checkpoint id: String, reference: String, container: String, originalPod: String?, originalNamespace: String?,
                sourceNode: String?, node: String, podName: String? = nil, namespace: String? = nil, pullSecret: String? = nil,
                labels: [String: String] = [:], resources: Resources? = nil, migration: String? = nil) {
        let name = podName ?? Self.dnsLabel((originalPod ?? container) + "-restored")
        var annotations = ["ferry.io/checkpoint": "sha256:" + id, "ferry.io/image": reference]
        if let sourceNode { annotations["ferry.io/source-node"] = sourceNode }
        if let originalPod { annotations["ferry.io/source-pod"] = (originalNamespace.map { $0 + "/" } ?? "") + originalPod }
        if let migration { annotations["ferry.io/migration"] = migration }
        let ownLabels = ["app.kubernetes.io/managed-by": "ferry", "ferry.io/checkpoint": String(id.prefix(12))]
        metadata = Metadata(name: name, namespace: namespace ?? originalNamespace ?? "default",
                            labels: labels.merging(ownLabels) { _, ferry in ferry },
                            annotations: annotations)
        spec = Spec(nodeName: node, restartPolicy: "Never", imagePullSecrets: pullSecret.map { [SecretReference(name: $0)] },
                    containers: [Container(name: Self.dnsLabel(container), image: reference, imagePullPolicy: "IfNotPresent",
                                           resources: resources)])
    }

    /// Whether `text` is already such a name (RFC 1123 label).
    public static func isDNSLabel(_ text: String) -> Bool {
        !text.isEmpty && dnsLabel(text) == text
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
            if let resources = container.resources {
                lines.append("    resources:")
                for (key, values) in [("limits", resources.limits), ("requests", resources.requests)] {
                    guard let values else { continue }
                    lines.append("      \(key):")
                    lines += values.sorted { $0.key < $1.key }.map { "        \(Self.quoted($0.key)): \(Self.quoted($0.value))" }
                }
            }
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
