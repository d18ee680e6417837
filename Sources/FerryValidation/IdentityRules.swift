internal import CheckpointArchive
internal import Foundation

/// The identity rules: well-formed IDs, and one namespace/pod/container/pod UID whichever record names them.
///
/// Every source an archive can carry is read: CRI-O's `io.kubernetes.cri-o.Labels` JSON, the kubelet's
/// `io.kubernetes.pod.*` annotations, containerd's `io.kubernetes.cri.*`, checkpointctl's `org.criu.checkpoint.*`,
/// CRI-O's `Metadata.name`, and the `k8s_…` names CRI-O builds (`config.dump` name, `io.kubernetes.cri-o.Name`,
/// `io.kubernetes.cri-o.SandboxName`). As the checkpoint-restore-operator does, two sources that disagree are an
/// error and a source that names only part of the namespace/pod/container triple is reported (here as a warning).
enum IdentityRules {
    enum Field: String, CaseIterable {
        case namespace = "pod namespace"
        case pod = "pod name"
        case container = "container name"
        case podUID = "pod UID"
    }

    /// One value a source gives for one field, and where it sits.
    struct Claim {
        var field: Field
        var value: String
        var location: String
    }

    /// One record of identity. `expectsTriple` marks sources that always carry namespace, pod and container.
    struct Source {
        var name: String
        var claims: [Claim]
        var expectsTriple: Bool
    }

    static let checkpointctlPodUID = "org.criu.checkpoint.pod.uid"

    static func findings(for manifest: CheckpointManifest) -> [Finding] {
        var findings: [Finding] = []
        let annotations = manifest.annotations

        let id = manifest.container.id
        if !isContainerID(id) {
            findings.append(Finding(
                .containerIDInvalid, .error, path: "\(CheckpointLayout.configDump):id",
                "container ID \"\(id)\" is not 64 lowercase hex digits"))
        }
        if let crioID = annotations[AnnotationKey.crioContainerID], crioID != id {
            findings.append(Finding(
                .containerIDMismatch, .error, path: "\(CheckpointLayout.specDump):\(AnnotationKey.crioContainerID)",
                "container ID \"\(crioID)\" differs from config.dump's \"\(id)\""))
        }
        if let statusID = manifest.container.statusID, statusID != id {
            findings.append(Finding(
                .containerIDMismatch, .error, path: "\(CheckpointLayout.statusDump):id",
                "container ID \"\(statusID)\" differs from config.dump's \"\(id)\""))
        }
        for key in [AnnotationKey.crioSandboxID, AnnotationKey.containerdSandboxID] {
            if let sandboxID = annotations[key], !isContainerID(sandboxID) {
                findings.append(Finding(
                    .sandboxIDInvalid, .error, path: "\(CheckpointLayout.specDump):\(key)",
                    "sandbox ID \"\(sandboxID)\" is not 64 lowercase hex digits"))
            }
        }

        var sources: [Source] = []
        let labelsLocation = "\(CheckpointLayout.specDump):\(AnnotationKey.crioLabels)"
        if let labelsJSON = annotations[AnnotationKey.crioLabels] {
            if let labels = stringMap(fromJSON: labelsJSON) {
                sources.append(source(
                    named: labelsLocation, expectsTriple: true,
                    [(.namespace, labels[AnnotationKey.podNamespace], labelsLocation),
                     (.pod, labels[AnnotationKey.podName], labelsLocation),
                     (.container, labels[AnnotationKey.containerName], labelsLocation),
                     (.podUID, labels[AnnotationKey.podUID], labelsLocation)]))
            } else {
                findings.append(Finding(
                    .identityAnnotationInvalid, .error, path: labelsLocation, "is not a JSON object of string labels"))
            }
        }
        sources.append(annotationSource(
            named: "\(CheckpointLayout.specDump):io.kubernetes.pod.*", annotations,
            [(.namespace, AnnotationKey.podNamespace), (.pod, AnnotationKey.podName),
             (.container, AnnotationKey.containerName), (.podUID, AnnotationKey.podUID)]))
        sources.append(annotationSource(
            named: "\(CheckpointLayout.specDump):io.kubernetes.cri.*", annotations,
            [(.namespace, AnnotationKey.containerdSandboxNamespace), (.pod, AnnotationKey.containerdSandboxName),
             (.container, AnnotationKey.containerdContainerName), (.podUID, AnnotationKey.containerdSandboxUID)]))
        sources.append(annotationSource(
            named: "\(CheckpointLayout.specDump):org.criu.checkpoint.*", annotations,
            [(.namespace, AnnotationKey.checkpointPodNamespace), (.pod, AnnotationKey.checkpointPodName),
             (.container, AnnotationKey.checkpointContainerName), (.podUID, checkpointctlPodUID)]))

        let metadataLocation = "\(CheckpointLayout.specDump):\(AnnotationKey.crioMetadata)"
        if let metadataJSON = annotations[AnnotationKey.crioMetadata] {
            if let metadata = try? JSONSerialization.jsonObject(with: Data(metadataJSON.utf8)) as? [String: Any] {
                sources.append(source(
                    named: metadataLocation, expectsTriple: false,
                    [(.container, metadata["name"] as? String, metadataLocation)]))
            } else {
                findings.append(Finding(.identityAnnotationInvalid, .error, path: metadataLocation, "is not a JSON object"))
            }
        }
        // Only CRI-O builds `config.dump`'s name this way; a Podman user may name a container anything.
        if manifest.engine == .crio, let configName = manifest.container.configName {
            sources.append(kubernetesNameSource(configName, location: "\(CheckpointLayout.configDump):name", sandbox: false))
        }
        if let name = annotations["io.kubernetes.cri-o.Name"] {
            sources.append(kubernetesNameSource(
                name, location: "\(CheckpointLayout.specDump):io.kubernetes.cri-o.Name", sandbox: false))
        }
        if let name = annotations[AnnotationKey.crioSandboxName] {
            sources.append(kubernetesNameSource(
                name, location: "\(CheckpointLayout.specDump):\(AnnotationKey.crioSandboxName)", sandbox: true))
        }
        sources.removeAll { $0.claims.isEmpty }

        for source in sources where source.expectsTriple {
            let present = Set(source.claims.map(\.field))
            let triple: [Field] = [.namespace, .pod, .container]
            let missing = triple.filter { !present.contains($0) }
            if !missing.isEmpty && missing.count < triple.count {
                findings.append(Finding(
                    .identityIncomplete, .warning, path: source.name,
                    "names the \(triple.filter(present.contains).map(\.rawValue).joined(separator: " and ")) but not the "
                        + "\(missing.map(\.rawValue).joined(separator: " and ")): a partial identity record"))
            }
        }

        let claims = sources.flatMap(\.claims)
        var reportedUIDs: Set<String> = []
        for claim in claims where claim.field == .podUID && !isUUID(claim.value) && reportedUIDs.insert(claim.value).inserted {
            findings.append(Finding(
                .podUIDInvalid, .error, path: claim.location, "pod UID \"\(claim.value)\" is not a UUID"))
        }
        for field in Field.allCases {
            let fieldClaims = claims.filter { $0.field == field }
            guard let reference = fieldClaims.first else { continue }
            var reported: Set<String> = []
            for claim in fieldClaims.dropFirst() where claim.value != reference.value && reported.insert(claim.location).inserted {
                findings.append(Finding(
                    .identityConflict, .error, path: claim.location,
                    "\(field.rawValue) \"\(claim.value)\" differs from \"\(reference.value)\" in \(reference.location)"))
            }
        }
        return findings
    }

    private static func source(named name: String, expectsTriple: Bool, _ values: [(Field, String?, String)]) -> Source {
        Source(
            name: name,
            claims: values.compactMap { field, value, location in
                guard let value, !value.isEmpty else { return nil }
                return Claim(field: field, value: value, location: location)
            },
            expectsTriple: expectsTriple)
    }

    private static func annotationSource(named name: String, _ annotations: [String: String], _ keys: [(Field, String)]) -> Source {
        source(
            named: name, expectsTriple: true,
            keys.map { field, key in (field, annotations[key], "\(CheckpointLayout.specDump):\(key)") })
    }

    /// `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>` (containers) or `k8s_<pod>_<namespace>_<uid>_<attempt>`
    /// (sandboxes). Kubernetes names cannot hold `_`, so splitting is exact; a name of another form is no source.
    private static func kubernetesNameSource(_ name: String, location: String, sandbox: Bool) -> Source {
        let parts = name.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        let expected = sandbox ? 5 : 6
        guard parts.count == expected, parts[0] == "k8s", let attempt = parts.last, !attempt.isEmpty,
              attempt.allSatisfy({ $0 >= "0" && $0 <= "9" })
        else { return Source(name: location, claims: [], expectsTriple: false) }
        let fields: [Field] = sandbox ? [.pod, .namespace, .podUID] : [.container, .pod, .namespace, .podUID]
        return source(
            named: location, expectsTriple: false,
            zip(fields, parts.dropFirst()).map { field, value in (field, value, location) })
    }

    private static func stringMap(fromJSON text: String) -> [String: String]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
        var map: [String: String] = [:]
        for (key, value) in object {
            guard let string = value as? String else { return nil }
            map[key] = string
        }
        return map
    }

    /// 64 lowercase hex digits: the container and sandbox IDs every engine generates.
    static func isContainerID(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// `8-4-4-4-12` hex digits, either case.
    static func isUUID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else if IPAddress.hexValue(byte) == nil {
                return false
            }
        }
        return true
    }
}
