import Foundation

/// Whether a Kubernetes node can restore a checkpoint as a Pod, judged before the Pod is created from what the API
/// server says of the node (and, when readable, its kubelet's live configuration) and what the catalog says of the
/// checkpoint. Errors block the restore unless waived; warnings are printed.
public enum KubernetesPreflight {
    public struct Finding: Sendable, Equatable, Codable {
        public var code: String
        /// `error` or `warning`.
        public var severity: String
        public var message: String
    }

    /// What the catalog knows of the checkpoint (its `facts`).
    public struct Checkpoint: Sendable {
        public var imageDigestReference: String?
        public var imageID: String?
        public var image: String?
        public var architecture: String?

        public init(imageDigestReference: String?, imageID: String?, image: String?, architecture: String?) {
            self.imageDigestReference = imageDigestReference
            self.imageID = imageID
            self.image = image
            self.architecture = architecture
        }
    }

    public static func findings(node: KubernetesObjects.Node, featureGates: [String: Bool]?,
                                checkpoint: Checkpoint) -> [Finding] {
        var findings: [Finding] = []
        func error(_ code: String, _ message: String) { findings.append(Finding(code: code, severity: "error", message: message)) }
        func warning(_ code: String, _ message: String) { findings.append(Finding(code: code, severity: "warning", message: message)) }
        let name = node.metadata.name ?? "the node"

        let ready = node.status?.conditions?.first { $0.type == "Ready" }
        if ready?.status != "True" {
            error("NODE_NOT_READY", "\(name) is not Ready (\(ready.map { "Ready=\($0.status)" + ($0.message.map { ": " + $0 } ?? "") } ?? "no Ready condition"))")
        }

        let runtime = node.status?.nodeInfo?.containerRuntimeVersion ?? ""
        switch runtimeVerdict(runtime) {
        case .restores: break
        case .refuses(let why): error("RUNTIME_CANNOT_RESTORE", "\(name) runs \(runtime.isEmpty ? "an unknown runtime" : runtime): \(why)")
        }

        let kubelet = node.status?.nodeInfo?.kubeletVersion ?? ""
        if let gates = featureGates, gates["ContainerCheckpoint"] == false {
            error("CHECKPOINT_RESTORE_DISABLED", "the kubelet on \(name) runs with the ContainerCheckpoint feature gate off")
        } else if featureGates == nil, let minor = minorVersion(kubelet), minor < 30 {
            // ContainerCheckpoint is on by default from 1.30 (beta); before, only if the kubelet was started with it.
            warning("CHECKPOINT_SETTING_UNKNOWN",
                    "the kubelet on \(name) is \(kubelet), where ContainerCheckpoint is off unless enabled, and its configuration cannot be read (nodes/proxy)")
        }

        if checkpoint.imageDigestReference == nil {
            let named = [checkpoint.imageID, checkpoint.image].compactMap { $0 }.joined(separator: ", ")
            error("BASE_IMAGE_NOT_PINNED",
                  "the archive names its base image only as \(named.isEmpty ? "nothing" : named), not by digest: a node without that exact image cannot pull it, and a tag may have moved")
        }

        if let wanted = checkpoint.architecture.map(goArchitecture), let has = node.status?.nodeInfo?.architecture,
           !wanted.isEmpty, wanted != has {
            error("ARCHITECTURE_MISMATCH", "the checkpoint is \(wanted) memory; \(name) is \(has)")
        }
        return findings
    }

    enum RuntimeVerdict: Equatable {
        case restores
        case refuses(String)
    }

    /// CRI-O restores a container whose image is a checkpoint image; containerd from 2.0 until 2.3 (2.4 removed it).
    static func runtimeVerdict(_ version: String) -> RuntimeVerdict {
        if version.hasPrefix("cri-o://") { return .restores }
        guard version.hasPrefix("containerd://") else {
            return .refuses("only CRI-O and containerd 2.0 to 2.3 restore a checkpoint image")
        }
        let number = version.dropFirst("containerd://".count).drop { $0 == "v" }
        let parts = number.split(separator: ".").compactMap { Int($0.prefix { $0.isNumber }) }
        guard parts.count >= 2 else { return .refuses("its version cannot be read") }
        let (major, minor) = (parts[0], parts[1])
        if major < 2 { return .refuses("containerd restores checkpoint images from 2.0") }
        if major > 2 || minor >= 4 { return .refuses("containerd 2.4 removed restoring from checkpoint images (deprecated in 2.3)") }
        return .restores
    }

    /// `v1.31.2` → 31.
    static func minorVersion(_ version: String) -> Int? {
        let parts = version.drop { $0 == "v" }.split(separator: ".")
        guard parts.count >= 2, parts[0] == "1" else { return nil }
        return Int(parts[1].prefix { $0.isNumber })
    }

    /// CRIU's and uname's architecture names as Kubernetes (Go) spells them.
    static func goArchitecture(_ name: String) -> String {
        switch name {
        case "x86_64", "x86-64", "amd64": "amd64"
        case "aarch64", "arm64": "arm64"
        case "ppc64le", "ppc64el": "ppc64le"
        case "s390x": "s390x"
        default: name
        }
    }
}
