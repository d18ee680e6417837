internal import CheckpointArchive

/// The rules for what a restore writes onto the target host: inner tars (`rootfs-diff.tar`,
/// `devshm-checkpoint.tar`, `volumes/*.tar`), the paths in `deleted.files` it removes, and the host paths in
/// `bind.mounts` it creates (cri-o#10106: a crafted `bind.mounts` could create arbitrary host files).
enum ContentRules {
    static func findings(for manifest: CheckpointManifest, policy: ValidationPolicy) -> [Finding] {
        var findings: [Finding] = []
        if let rootfsDiff = manifest.rootfsDiff {
            findings += innerTarFindings(rootfsDiff, name: CheckpointLayout.rootfsDiff, policy: policy)
        }
        if let devShm = manifest.devShm {
            findings += innerTarFindings(devShm, name: CheckpointLayout.devShm, policy: policy)
        }
        for name in manifest.volumes.keys.sorted() {
            findings += innerTarFindings(
                manifest.volumes[name]!, name: "\(CheckpointLayout.volumesDirectory)/\(name).tar", policy: policy)
        }
        for (index, path) in manifest.deletedFiles.enumerated() {
            if let problem = cleanAbsolutePathProblem(path) {
                findings.append(Finding(
                    .deletedFileInvalid, .error, path: "\(CheckpointLayout.deletedFiles)[\(index)]",
                    "\"\(path)\" \(problem); a restore removes this path"))
            }
        }
        for (index, mount) in manifest.bindMounts.enumerated() {
            findings += bindMountFindings(mount, location: "\(CheckpointLayout.bindMounts)[\(index)]", policy: policy)
        }
        return findings
    }

    static func innerTarFindings(_ summary: TarSummary, name: String, policy: ValidationPolicy) -> [Finding] {
        var findings: [Finding] = []
        if let error = summary.error {
            findings.append(Finding(.innerTarUnreadable, .error, path: name, "cannot be read to the end: \(error)"))
        }
        let entries = summary.regularFiles + summary.directories + summary.otherEntries
        if entries > policy.maxInnerTarEntries {
            findings.append(Finding(
                .innerTarTooManyEntries, .error, path: name,
                "has \(entries) entries, more than the \(policy.maxInnerTarEntries) the policy allows"))
        }
        if summary.fileBytes > policy.maxInnerTarBytes {
            findings.append(Finding(
                .innerTarTooLarge, .error, path: name,
                "holds \(summary.fileBytes) bytes of files, more than the \(policy.maxInnerTarBytes) the policy allows"))
        }
        for issue in summary.issues {
            let location = "\(name):\(issue.path)"
            switch issue.kind {
            case .absolutePath:
                findings.append(Finding(.innerEntryAbsolutePath, .error, path: location, "has an absolute path"))
            case .pathTraversal:
                findings.append(Finding(
                    .innerEntryPathTraversal, .error, path: location, "has a .. component and could land outside the root"))
            case .deviceNode:
                findings.append(Finding(.innerEntryDeviceNode, .error, path: location, "is a device node"))
            case .specialFile:
                findings.append(Finding(.innerEntrySpecialFile, .error, path: location, "is a FIFO or a socket"))
            case .symlinkEscapes:
                findings.append(Finding(
                    .innerEntrySymlinkEscapes, .error, path: location,
                    "is a symlink to \(issue.target ?? "?") that climbs above the root"))
            case .hardlinkEscapes:
                findings.append(Finding(
                    .innerEntryHardlinkEscapes, .error, path: location,
                    "is a hard link to \(issue.target ?? "?") outside the tar's root"))
            case .setuidOrSetgid:
                if !policy.allowSetuid {
                    findings.append(Finding(
                        .innerEntrySetuid, .warning, path: location, "has the setuid or setgid bit",
                        waiver: "--allow-setuid"))
                }
            }
        }
        // The reader lists the first unsafe entries only; what it did not list cannot be judged, so it fails.
        if summary.issueCount > summary.issues.count {
            findings.append(Finding(
                .innerTarTooManyIssues, .error, path: name,
                "has \(summary.issueCount - summary.issues.count) more unsafe entries than the "
                    + "\(summary.issues.count) listed; the tar cannot be vetted"))
        }
        return findings
    }

    static func bindMountFindings(_ mount: BindMount, location: String, policy: ValidationPolicy) -> [Finding] {
        var findings: [Finding] = []
        if let problem = cleanAbsolutePathProblem(mount.source) {
            findings.append(Finding(.bindMountPathInvalid, .error, path: location, "source \"\(mount.source)\" \(problem)"))
        }
        if let problem = cleanAbsolutePathProblem(mount.destination) {
            findings.append(Finding(
                .bindMountPathInvalid, .error, path: location, "destination \"\(mount.destination)\" \(problem)"))
        }
        if mount.fileType != "file" && mount.fileType != "directory" {
            let shown = mount.fileType.map { "\"\($0)\"" } ?? "missing"
            findings.append(Finding(
                .bindMountTypeInvalid, .error, path: location, "file_type is \(shown), not \"file\" or \"directory\""))
        }
        if mount.source.hasPrefix("/"), let sensitive = sensitivePath(containing: mount.source, in: policy.sensitiveHostPaths) {
            let relation = lexicallyCleaned(mount.source) == sensitive ? "is" : "lies under"
            findings.append(Finding(
                .bindMountSensitiveSource, .error, path: location,
                "source \"\(mount.source)\" \(relation) the host-sensitive path \(sensitive); a restore would bind-mount "
                    + "or create it on the host"))
        }
        if let permissions = mount.permissions {
            if permissions & ~0o7777 != 0 {
                findings.append(Finding(
                    .bindMountPermissionsInvalid, .error, path: location,
                    "permissions 0o\(String(permissions, radix: 8)) have bits beyond 0o7777"))
            } else if permissions & 0o002 != 0 && permissions & 0o1000 == 0 {
                findings.append(Finding(
                    .bindMountWorldWritable, .warning, path: location,
                    "a missing source would be created world-writable (0o\(String(permissions, radix: 8)))"))
            }
        }
        return findings
    }

    /// Why `path` is not a clean absolute path, or nil when it is one: absolute, not `/`, no empty, `.` or `..`
    /// component, no trailing `/`, no NUL.
    static func cleanAbsolutePathProblem(_ path: String) -> String? {
        if path.isEmpty { return "is empty" }
        if path.utf8.contains(0) { return "contains a NUL byte" }
        if !path.hasPrefix("/") { return "is not absolute" }
        if path == "/" { return "is the root directory" }
        if path.hasSuffix("/") { return "ends with /" }
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        if components.contains("") { return "has an empty component (//)" }
        if components.contains("..") { return "has a .. component" }
        if components.contains(".") { return "has a . component" }
        return nil
    }

    /// The first entry of `sensitive` that `path` is or lies under, after resolving `.`, `..` and `//` lexically.
    /// `/` matches only itself.
    static func sensitivePath(containing path: String, in sensitive: [String]) -> String? {
        let cleaned = lexicallyCleaned(path)
        return sensitive.first { entry in
            let root = lexicallyCleaned(entry)
            return root == "/" ? cleaned == "/" : cleaned == root || cleaned.hasPrefix(root + "/")
        }
    }

    /// An absolute path with `.`, `..` (never above `/`) and empty components resolved, as Go's `filepath.Clean`.
    static func lexicallyCleaned(_ path: String) -> String {
        var stack: [Substring] = []
        for component in path.split(separator: "/") {
            switch component {
            case ".": continue
            case "..": _ = stack.popLast()
            default: stack.append(component)
            }
        }
        return "/" + stack.joined(separator: "/")
    }
}
