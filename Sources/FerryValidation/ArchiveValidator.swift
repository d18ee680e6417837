public import CheckpointArchive

/// The rules an archive must pass before Ferry stores, serves or restores it, judged from the archive alone:
/// identity, CRIU images, network addresses, inner tars, `deleted.files`, `bind.mounts` and the archive's shape.
///
/// Reader failures (a corrupt archive, a decompression bomb, too many entries) are thrown by
/// ``CheckpointReader`` and never become findings; a broken *inner* tar is recorded by the reader and becomes
/// ``FindingCode/innerTarUnreadable`` here. Target-node compatibility is ``Preflight``'s job.
public enum ArchiveValidator {
    /// Every finding for `manifest`, in a fixed order: identity, CRIU, network, inner tars, `deleted.files`,
    /// `bind.mounts`, archive shape; within each, in archive order.
    public static func findings(for manifest: CheckpointManifest, policy: ValidationPolicy = .init()) -> [Finding] {
        IdentityRules.findings(for: manifest)
            + CRIURules.findings(for: manifest)
            + NetworkRules.findings(for: manifest)
            + ContentRules.findings(for: manifest, policy: policy)
            + shapeFindings(for: manifest.archive)
            + manifest.metadataIssues.map { issue in
                Finding(.metadataFieldInvalid, .warning, path: issue.field.isEmpty ? issue.file : "\(issue.file):\(issue.field)",
                        "\(issue.problem); Ferry only shows this field, and ignores it")
            }
    }

    /// Root entries some engine writes (reference §1.2); anything else is reported as info.
    static let knownRootEntries: Set<String> = [
        CheckpointLayout.checkpointDirectory, CheckpointLayout.preCheckpointDirectory, CheckpointLayout.configDump,
        CheckpointLayout.specDump, CheckpointLayout.networkStatus, CheckpointLayout.rootfsDiff,
        CheckpointLayout.deletedFiles, CheckpointLayout.statsDump, CheckpointLayout.dumpLog, CheckpointLayout.devShm,
        CheckpointLayout.volumesDirectory, CheckpointLayout.bindMounts, CheckpointLayout.statusDump,
        CheckpointLayout.containerdStatus, CheckpointLayout.podOptions, CheckpointLayout.podDump,
        CheckpointLayout.crioLogFile, "artifacts", "ctr.log", "container.log",
    ]

    static func kindName(_ kind: ArchiveEntry.Kind) -> String {
        switch kind {
        case .characterDevice: "character device"
        case .blockDevice: "block device"
        case .fifo: "FIFO"
        case .socket: "socket"
        default: "special file"
        }
    }

    static func shapeFindings(for archive: ArchiveFacts) -> [Finding] {
        var findings: [Finding] = []
        for path in archive.duplicateEntries {
            findings.append(Finding(
                .archiveDuplicateEntry, .error, path: path,
                "appears more than once in the archive; which copy a restore uses depends on the extracting tool"))
        }
        for path in archive.unsafePaths {
            findings.append(Finding(
                .archiveUnsafePath, .error, path: path,
                "has an absolute path or a .. component and could be extracted outside the restore directory"))
        }
        for entry in archive.specialEntries {
            switch entry.kind {
            case .symlink, .hardlink:
                findings.append(Finding(
                    .archiveLinkEntry, .error, path: entry.path,
                    "is a \(entry.kind == .symlink ? "symbolic" : "hard") link\(entry.target.map { " to \($0)" } ?? ""); no engine writes links at the archive's level, and an extraction would follow it"))
            default:
                findings.append(Finding(
                    .archiveSpecialFile, .error, path: entry.path,
                    "is a \(kindName(entry.kind)); no engine writes one at the archive's level, and extracting it creates one on the host"))
            }
        }
        for path in archive.pathsThroughSymlinks {
            findings.append(Finding(
                .archivePathThroughSymlink, .error, path: path,
                "lies under an earlier symlink entry; extracting it would write wherever that link points"))
        }
        // Zeros after a plain tar are its record padding; anything else after the end is data no engine reads.
        if archive.trailing.count > 0 && !(archive.trailing.allZero && archive.compression == "none") {
            let stream = archive.compression == "none" ? "the tar archive" : "the \(archive.compression) stream"
            // Data no check has seen rides along with the archive: an error, like the other hostile shapes; zeros
            // after a compressed stream carry nothing, and only warn.
            findings.append(Finding(
                .archiveTrailingData, archive.trailing.allZero ? .warning : .error, path: nil,
                "\(archive.trailing.count) bytes\(archive.trailing.allZero ? " of zeros" : "") follow the end of \(stream); no engine reads them, but they are stored and served with the archive"))
        }
        for root in archive.rootEntries where !knownRootEntries.contains(root) && root != "." && root != ".." {
            findings.append(Finding(.archiveUnknownEntry, .info, path: root, "is not an entry any container engine writes"))
        }
        return findings
    }
}

/// The CRIU image rules: an inventory in a format CRIU restores, and a process tree with one root.
enum CRIURules {
    static func findings(for manifest: CheckpointManifest) -> [Finding] {
        guard let criu = manifest.criu else {
            return [Finding(
                .criuNotDecoded, .info, path: CheckpointLayout.checkpointDirectory,
                "the CRIU images were not decoded, so the inventory and process tree were not checked")]
        }
        var findings: [Finding] = []
        let inventoryPath = "\(CheckpointLayout.checkpointDirectory)/inventory.img"
        if let inventory = criu.inventory {
            if !(1...2).contains(inventory.imageVersion) {
                findings.append(Finding(
                    .criuImageVersionUnsupported, .error, path: inventoryPath,
                    "image version \(inventory.imageVersion) is not one CRIU restores (1 or 2)"))
            }
        } else {
            findings.append(Finding(
                .criuInventoryMissing, .error, path: inventoryPath, "is missing; CRIU cannot restore without it"))
        }
        // A process whose parent is not in the tree is a root as much as PID 1 is: CRIU could not place it.
        let pids = Set(criu.processes.map(\.pid))
        let roots = criu.processes.filter { $0.ppid == 0 || !pids.contains($0.ppid) }
        let pstreePath = "\(CheckpointLayout.checkpointDirectory)/pstree.img"
        if roots.count != 1 {
            let message = roots.isEmpty
                ? (criu.processes.isEmpty ? "holds no processes" : "has no root process")
                : "has \(roots.count) root processes (PIDs \(roots.map { String($0.pid) }.joined(separator: ", ")))"
            findings.append(Finding(
                .processTreeRootInvalid, .error, path: pstreePath, "the process tree \(message); a restore needs exactly one"))
        } else if let root = roots.first {
            // One root, but parent links that loop (a process its own ancestor) leave processes out of its tree.
            var children: [UInt32: [UInt32]] = [:]
            for process in criu.processes where process.pid != root.pid { children[process.ppid, default: []].append(process.pid) }
            var reached: Set<UInt32> = [root.pid]
            var stack = [root.pid]
            while let pid = stack.popLast() {
                for child in children[pid] ?? [] where reached.insert(child).inserted { stack.append(child) }
            }
            let unreached = criu.processes.map(\.pid).filter { !reached.contains($0) }
            if !unreached.isEmpty {
                findings.append(Finding(
                    .processTreeRootInvalid, .error, path: pstreePath,
                    "processes \(unreached.map(String.init).joined(separator: ", ")) are not descendants of the root "
                        + "process \(root.pid): their parent links form a loop"))
            }
        }
        return findings
    }
}
