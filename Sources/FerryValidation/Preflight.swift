internal import CheckpointArchive

/// Whether a checkpoint can be restored on a particular node: the compatibility checks of reference §7, judged
/// from ``CheckpointFacts`` and ``TargetFacts`` under the ``RestoreOptions`` the restore will use.
///
/// Each finding names the restore option that waives it, and a finding the options already waive is not
/// reported. Static IP, MAC, name and ID rules apply to Podman only: a Kubernetes restore (CRI-O, containerd)
/// creates a new container with a new pod IP.
public enum Preflight {
    /// Oldest CRIU Podman restores with (3.11).
    public static let podmanMinimumCRIU = 31100
    /// Oldest CRIU for Podman's `--pod` restores, CRI-O and containerd (3.16).
    public static let podMinimumCRIU = 31600

    /// Every finding for restoring `checkpoint` on `target` with `options`, in a fixed order: architecture, CRIU,
    /// runtime, kernel, cgroup, base image, name and ID, networks, TCP. Rules whose target fact is unknown (nil) are
    /// skipped.
    public static func findings(checkpoint: CheckpointFacts, target: TargetFacts, options: RestoreOptions) -> [Finding] {
        var findings: [Finding] = []
        findings += hostFindings(checkpoint: checkpoint, target: target, options: options)
        findings += imageFindings(checkpoint: checkpoint, target: target)
        if checkpoint.engine == .podman {
            findings += nameFindings(checkpoint: checkpoint, target: target, options: options)
            findings += networkFindings(checkpoint: checkpoint, target: target, options: options)
        }
        findings += tcpFindings(checkpoint: checkpoint, options: options)
        return findings
    }

    // MARK: Host: architecture, CRIU, runtime, kernel, cgroup

    static func hostFindings(checkpoint: CheckpointFacts, target: TargetFacts, options: RestoreOptions) -> [Finding] {
        var findings: [Finding] = []
        if let dumped = checkpoint.architecture, let targetArchitecture = target.architecture,
           normalizedArchitecture(dumped) != normalizedArchitecture(targetArchitecture) {
            findings.append(Finding(
                .architectureMismatch, .error, path: CheckpointLayout.checkpointDirectory,
                "the checkpoint was dumped on \(normalizedArchitecture(dumped)); the target is "
                    + "\(normalizedArchitecture(targetArchitecture)), and CRIU images only restore on their own architecture"))
        }
        if let criu = target.criuVersion {
            let minimum = checkpoint.engine == .podman && options.pod == nil ? podmanMinimumCRIU : podMinimumCRIU
            if criu < minimum {
                findings.append(Finding(
                    .criuVersionTooOld, .error, path: nil,
                    "the target's CRIU \(versionText(criu)) is older than the \(versionText(minimum)) "
                        + "\(checkpoint.engine.rawValue) needs to restore"))
            } else if let dumped = checkpoint.criuVersion, criu < dumped {
                findings.append(Finding(
                    .criuVersionOlderThanDump, .warning, path: nil,
                    "the target's CRIU \(versionText(criu)) is older than the CRIU \(versionText(dumped)) that dumped the "
                        + "checkpoint; images may use features it lacks"))
            }
        }
        if let runtime = checkpoint.runtime, let runtimes = target.runtimes,
           !runtimes.map(lastPathComponent).contains(lastPathComponent(runtime)) {
            let present = runtimes.isEmpty ? "none" : runtimes.joined(separator: ", ")
            findings.append(Finding(
                .runtimeMissing, .error, path: "\(CheckpointLayout.configDump):runtime",
                "the checkpoint was made with the OCI runtime \(runtime), which the target lacks (it has \(present)); "
                    + "checkpoints do not move between runtimes"))
        }
        if let dumped = checkpoint.hostKernel, let targetKernel = target.kernel,
           let difference = kernelDifference(dumped: dumped, target: targetKernel) {
            findings.append(Finding(
                .kernelVersionDiffers, .warning, path: nil,
                "the checkpoint was dumped on kernel \(dumped); the target runs \(targetKernel)\(difference)"))
        }
        if let dumped = checkpoint.cgroupVersion, let targetCgroup = target.cgroupVersion,
           normalizedCgroupVersion(dumped) != normalizedCgroupVersion(targetCgroup) {
            findings.append(Finding(
                .cgroupVersionDiffers, .warning, path: nil,
                "the checkpoint was dumped under cgroup \(normalizedCgroupVersion(dumped)); the target uses cgroup "
                    + "\(normalizedCgroupVersion(targetCgroup))"))
        }
        return findings
    }

    /// `uname -m` names for Go's `GOARCH` ones, so `amd64` and `x86_64` compare equal.
    static func normalizedArchitecture(_ text: String) -> String {
        let lowered = text.lowercased()
        for raw in UInt32(1)...8 {
            let architecture = CPUArchitecture(rawValue: raw)
            if lowered == architecture.name || lowered == architecture.goArchitecture { return architecture.name }
        }
        return lowered
    }

    /// `40201` → `4.2.1`, `31100` → `3.11`.
    static func versionText(_ version: Int) -> String {
        let patch = version % 100
        let base = "\(version / 10000).\(version / 100 % 100)"
        return patch == 0 ? base : "\(base).\(patch)"
    }

    /// Nil when the kernels match in major.minor (patch levels do not change CRIU's features), else how they differ.
    static func kernelDifference(dumped: String, target: String) -> String? {
        guard let dumpedVersion = majorMinor(dumped), let targetVersion = majorMinor(target) else {
            return dumped == target ? nil : ""
        }
        if dumpedVersion == targetVersion { return nil }
        return targetVersion.lexicographicallyPrecedes(dumpedVersion) ? " (older)" : " (newer)"
    }

    private static func majorMinor(_ kernel: String) -> [Int]? {
        let numbers = kernel.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return numbers.count == 2 && kernel.first?.isNumber == true ? numbers : nil
    }

    static func normalizedCgroupVersion(_ text: String) -> String {
        let lowered = text.lowercased()
        if lowered.contains("2") || lowered == "unified" { return "v2" }
        if lowered.contains("1") || lowered == "legacy" { return "v1" }
        return lowered
    }

    private static func lastPathComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    // MARK: Base image

    static func imageFindings(checkpoint: CheckpointFacts, target: TargetFacts) -> [Finding] {
        guard let images = target.images else { return [] }
        let names = [checkpoint.image, checkpoint.imageRequested].compactMap { $0 }.filter { !$0.isEmpty }
        let imageID = checkpoint.imageID.flatMap(imageIDDigits)
        guard !names.isEmpty || imageID != nil else { return [] }

        let targetIDs = images.compactMap(imageIDDigits)
        let targetNames = Set(images.map(normalizedImageName))
        // Targets often list short IDs (12 digits); a checkpoint ID starting with one is the same image.
        let idPresent = imageID.map { id in targetIDs.contains { id.hasPrefix($0) } } ?? false
        let namePresent = names.contains { targetNames.contains(normalizedImageName($0)) }
        let shownName = names.first ?? checkpoint.imageID ?? "?"
        let path = "\(CheckpointLayout.configDump):rootfsImageName"

        if idPresent || (imageID == nil && namePresent) { return [] }
        if namePresent, let id = checkpoint.imageID {
            return [Finding(
                .baseImageIDMismatch, .error, path: path,
                "the target has \(shownName) but not image \(id): another build of the image, and Podman looks the "
                    + "base image up by ID, so the restore would fail",
                waiver: "pull the exact image (by digest) first")]
        }
        let idText = checkpoint.imageID.map { " (\($0))" } ?? ""
        return [Finding(
            .baseImageMissing, .warning, path: path,
            "the base image \(shownName)\(idText) is not on the target",
            waiver: "pull the image first")]
    }

    /// The hex digits of an image ID (`sha256:…`, bare, or a short prefix of at least 12), or nil for a name.
    static func imageIDDigits(_ text: String) -> String? {
        let lowered = text.lowercased()
        let digits = lowered.hasPrefix("sha256:") ? String(lowered.dropFirst(7)) : lowered
        guard digits.count >= 12, digits.count <= 64, digits.allSatisfy(\.isHexDigit) else { return nil }
        return digits
    }

    /// Docker Hub's implied registry and `library/` dropped, `:latest` added to an untagged name.
    static func normalizedImageName(_ text: String) -> String {
        var name = text
        for prefix in ["docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"]
        where name.hasPrefix(prefix) {
            name = String(name.dropFirst(prefix.count))
            break
        }
        let lastComponent = name.split(separator: "/").last ?? Substring(name)
        if !lastComponent.contains(":") && !name.contains("@") { name += ":latest" }
        return name
    }

    // MARK: Name and ID (Podman)

    static func nameFindings(checkpoint: CheckpointFacts, target: TargetFacts, options: RestoreOptions) -> [Finding] {
        var findings: [Finding] = []
        let names = target.containerNames ?? []
        if let newName = options.name {
            if names.contains(newName) {
                findings.append(Finding(
                    .containerNameInUse, .error, path: nil, "the name \(newName) given with --name is taken on the target",
                    waiver: "--name with an unused name"))
            }
            return findings
        }
        if names.contains(checkpoint.containerName) {
            findings.append(Finding(
                .containerNameInUse, .error, path: "\(CheckpointLayout.configDump):name",
                "a container named \(checkpoint.containerName) exists on the target; Podman restores under the same name",
                waiver: "--name"))
        }
        let id = checkpoint.containerID.lowercased()
        if let ids = target.containerIDs, ids.contains(where: { $0.count >= 12 && id.hasPrefix($0.lowercased()) }) {
            findings.append(Finding(
                .containerIDInUse, .error, path: "\(CheckpointLayout.configDump):id",
                "container ID \(checkpoint.containerID) is taken on the target; Podman restores with the same ID",
                waiver: "--name"))
        }
        return findings
    }

    // MARK: Networks, static IPs and MACs (Podman)

    static func networkFindings(checkpoint: CheckpointFacts, target: TargetFacts, options: RestoreOptions) -> [Finding] {
        var findings: [Finding] = []
        // Podman drops the static addresses when restoring under a new name.
        let requestsIPs = options.name == nil && !options.ignoreStaticIP
        let requestsMACs = options.name == nil && !options.ignoreStaticMAC
        let ipsInUse = Set((target.ipsInUse ?? []).compactMap { IPAddress($0) ?? IPSubnet(cidr: $0)?.address }.map(\.unmapped))
        let macsInUse = Set((target.macsInUse ?? []).compactMap { MACAddress($0) })

        for network in checkpoint.networks {
            let subnets = target.networks.map { networks in
                networks.filter { $0.name == network.name }.compactMap { IPSubnet(cidr: $0.subnet) }
            }
            let networkExists = target.networks.map { $0.contains { $0.name == network.name } }
            if networkExists == false {
                findings.append(Finding(
                    .networkMissing, .error, path: "\(CheckpointLayout.networkStatus):\(network.name)",
                    "the container was attached to network \(network.name), which the target lacks; create it first"))
            }
            for interface in network.interfaces {
                let location = "\(CheckpointLayout.networkStatus):\(network.name)/\(interface.name)"
                for text in interface.addresses where requestsIPs {
                    guard let address = IPSubnet(cidr: text)?.address else { continue }
                    if ipsInUse.contains(address.unmapped) {
                        findings.append(Finding(
                            .staticIPInUse, .error, path: location,
                            "address \(text) is already in use on the target", waiver: "--ignore-static-ip"))
                    }
                    if networkExists == true, let subnets, !subnets.contains(where: { $0.contains(address) }) {
                        let shown = target.networks?.filter { $0.name == network.name }.map(\.subnet) ?? []
                        findings.append(Finding(
                            .staticIPOutsideNetworks, .error, path: location,
                            "address \(text) lies outside network \(network.name)'s subnets on the target "
                                + "(\(shown.joined(separator: ", ")))",
                            waiver: "--ignore-static-ip"))
                    }
                }
                if requestsMACs, let text = interface.mac, let mac = MACAddress(text), macsInUse.contains(mac) {
                    findings.append(Finding(
                        .staticMACInUse, .error, path: location, "MAC address \(text) is already in use on the target",
                        waiver: "--ignore-static-mac"))
                }
            }
        }
        return findings
    }

    // MARK: Source container

    /// Findings about the container a live migration would checkpoint, from its agent's report at this moment.
    public static func sourceFindings(container: String, exists: Bool, running: Bool, status: String?) -> [Finding] {
        if !exists {
            return [Finding(.sourceContainerMissing, .error, path: nil, "no container \(container) on the source node")]
        }
        if !running {
            return [Finding(
                .sourceContainerNotRunning, .error, path: nil,
                "container \(container) is \(status ?? "not running") on the source node; only a running container can be checkpointed")]
        }
        return []
    }

    // MARK: Established TCP connections

    static func tcpFindings(checkpoint: CheckpointFacts, options: RestoreOptions) -> [Finding] {
        if checkpoint.engine == .podman, options.tcpEstablished, let name = options.name, !name.isEmpty {
            return [Finding(
                .nameWithTCPEstablished, .error, path: nil,
                "Podman refuses --tcp-established together with --name (\(name)): established connections are tied "
                    + "to the container's identity",
                waiver: "drop --name, or --tcp-close instead of --tcp-established")]
        }
        guard checkpoint.hasEstablishedTCP == true, checkpoint.tcpClose != true, !options.tcpClose else { return [] }
        guard options.tcpEstablished else {
            return [Finding(
                .tcpEstablishedFlagMissing, .error, path: CheckpointLayout.checkpointDirectory,
                "the checkpoint holds established TCP connections; CRIU refuses to restore them unless asked to",
                waiver: "--tcp-established or --tcp-close")]
        }
        // Connections on loopback stay valid whatever address the container gets.
        let exposed = checkpoint.establishedTCPAddresses.filter { IPAddress($0)?.isLoopback != true }
        let reason: String? = if checkpoint.engine != .podman {
            "a Kubernetes restore gets a new pod IP"
        } else if options.name != nil {
            "--name drops the static IPs"
        } else if options.ignoreStaticIP {
            "--ignore-static-ip drops the static IPs"
        } else {
            nil
        }
        guard let reason, !exposed.isEmpty else { return [] }
        return [Finding(
            .tcpEstablishedIPChanges, .error, path: CheckpointLayout.checkpointDirectory,
            "established TCP connections on \(exposed.joined(separator: ", ")) cannot be restored onto a different IP, "
                + "and \(reason)",
            waiver: "--tcp-close")]
    }
}
