/// Which container engine wrote a checkpoint, from `spec.dump`'s `io.container.manager` annotation
/// (`libpod` → Podman, `cri-o` → CRI-O, anything else → containerd, as checkpointctl decides).
public enum ContainerEngine: String, Sendable, Codable, CaseIterable {
    case podman = "Podman"
    case crio = "CRI-O"
    case containerd = "containerd"

    public init(containerManager: String?) {
        switch containerManager {
        case "libpod": self = .podman
        case "cri-o": self = .crio
        default: self = .containerd
        }
    }
}

/// The checkpointed container's identity and image, merged from `config.dump`, `spec.dump` and `status.dump`.
public struct ContainerIdentity: Sendable, Equatable {
    /// Full container ID (64 hex digits for every engine).
    public var id: String
    /// The container name as checkpointctl shows it: Podman's name, CRI-O's `Metadata.name`, containerd's
    /// `container-name` annotation.
    public var name: String
    /// `config.dump` `name`: for CRI-O the long `k8s_<ctr>_<pod>_<ns>_<uid>_<attempt>` form.
    public var configName: String?
    /// The image as the user named it (`rootfsImageName`).
    public var image: String?
    /// Image ID (Podman `rootfsImageID`) or reference (CRI-O/containerd `rootfsImageRef`).
    public var imageID: String?
    /// The image as requested (CRI-O/containerd `rootfsImage`, Podman `RawImageName`).
    public var imageRequested: String?
    /// OCI runtime (runc, crun, …).
    public var runtime: String?
    /// Creation time as checkpointctl prints it (RFC 3339).
    public var created: String?
    /// Checkpoint time (RFC 3339, the engine's own offset kept). Podman records none.
    public var checkpointed: String?
    /// containerd's `status.dump` `id`, which must equal `id`.
    public var statusID: String?
}

/// The limits the OCI spec (`spec.dump` `linux.resources`) put on the container; nil fields were not set.
public struct ContainerResources: Sendable, Equatable, Codable {
    /// `memory.limit`, bytes.
    public var memoryLimitBytes: Int64?
    /// `cpu.quota` microseconds per `cpu.period` microseconds: the CPU limit.
    public var cpuQuota: Int64?
    public var cpuPeriod: Int64?
    /// `cpu.shares` (the kubelet writes 1024 per requested CPU, 2 for none).
    public var cpuShares: Int64?

    public init(memoryLimitBytes: Int64? = nil, cpuQuota: Int64? = nil, cpuPeriod: Int64? = nil, cpuShares: Int64? = nil) {
        self.memoryLimitBytes = memoryLimitBytes
        self.cpuQuota = cpuQuota
        self.cpuPeriod = cpuPeriod
        self.cpuShares = cpuShares
    }

    public var isEmpty: Bool { memoryLimitBytes == nil && cpuQuota == nil && cpuShares == nil }

    enum CodingKeys: String, CodingKey {
        case memoryLimitBytes = "memory_limit_bytes"
        case cpuQuota = "cpu_quota"
        case cpuPeriod = "cpu_period"
        case cpuShares = "cpu_shares"
    }
}

/// Kubernetes pod identity, present for CRI-O and containerd archives (and Podman pods' sandbox ID).
public struct PodIdentity: Sendable, Equatable {
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var sandboxID: String?
}

/// One network a container was attached to (`network.status`).
public struct NetworkAttachment: Sendable, Equatable {
    public var name: String
    public var interfaces: [NetworkInterface]

    public init(name: String, interfaces: [NetworkInterface]) {
        self.name = name
        self.interfaces = interfaces
    }
}

/// One interface inside a network attachment.
public struct NetworkInterface: Sendable, Equatable {
    public var name: String
    /// Interface addresses in CIDR form (`10.88.0.6/16`): the host address with its prefix, not the network.
    public var addresses: [String]
    public var gateways: [String]
    public var mac: String?

    /// The addresses without their prefix length (`10.88.0.6`), as checkpointctl's `ip` and the catalog show them.
    public var hostAddresses: [String] {
        addresses.map { String($0.prefix { $0 != "/" }) }
    }

    public init(name: String, addresses: [String], gateways: [String], mac: String?) {
        self.name = name
        self.addresses = addresses
        self.gateways = gateways
        self.mac = mac
    }
}

/// A mount from `spec.dump` `mounts[]`.
public struct MountPoint: Sendable, Equatable, Codable {
    public var destination: String
    public var type: String?
    public var source: String?
    public var options: [String]?

    public init(destination: String, type: String?, source: String?, options: [String]?) {
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options
    }
}

/// An external bind mount CRI-O records in `bind.mounts`, recreated on restore if missing.
public struct BindMount: Sendable, Equatable, Codable {
    public var source: String
    public var destination: String
    public var fileType: String?
    public var permissions: UInt32?

    enum CodingKeys: String, CodingKey {
        case source, destination, permissions
        case fileType = "file_type"
    }

    public init(source: String, destination: String, fileType: String?, permissions: UInt32?) {
        self.source = source
        self.destination = destination
        self.fileType = fileType
        self.permissions = permissions
    }
}

/// What a tar inside the checkpoint holds (`rootfs-diff.tar`, `devshm-checkpoint.tar`, `volumes/*.tar`), counted
/// while streaming past. The entry list itself is read on demand with ``CheckpointReader/listEntries(ofInnerTar:inArchiveAt:_:)``.
public struct TarSummary: Sendable, Equatable {
    /// Size of the tar entry in the checkpoint archive (what checkpointctl calls the root FS diff size).
    public var size: Int64
    /// Compression libarchive found inside (containerd's rootfs diff is gzip despite its name).
    public var compression: String
    public var regularFiles: Int
    public var directories: Int
    public var otherEntries: Int
    /// Sum of the regular files' sizes.
    public var fileBytes: Int64
    /// Set when the inner tar could not be read to the end: the stable error code and message.
    public var error: String?
    /// Entries that would be unsafe to extract (at most ``TarSummary/issueLimit`` are kept; `issueCount` counts all).
    public var issues: [InnerEntryIssue] = []
    public var issueCount = 0

    /// How many unsafe entries are listed by name.
    public static let issueLimit = 100
}

/// An entry of an inner tar (`rootfs-diff.tar`, …) that must not be extracted as it is.
public struct InnerEntryIssue: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The path starts with `/`.
        case absolutePath
        /// The path has a `..` component.
        case pathTraversal
        /// A character or block device node.
        case deviceNode
        /// A FIFO or socket.
        case specialFile
        /// A symbolic link whose relative target climbs above the root.
        case symlinkEscapes
        /// A hard link whose target is absolute or climbs above the root.
        case hardlinkEscapes
        /// A file with the setuid or setgid bit.
        case setuidOrSetgid
    }

    public var kind: Kind
    public var path: String
    /// The link target, for links.
    public var target: String?

    public init(kind: Kind, path: String, target: String? = nil) {
        self.kind = kind
        self.path = path
        self.target = target
    }

    /// Checks one entry; returns its issues (usually none).
    public static func check(_ entry: ArchiveEntry) -> [InnerEntryIssue] {
        var issues: [InnerEntryIssue] = []
        if entry.rawPath.hasPrefix("/") { issues.append(.init(kind: .absolutePath, path: entry.rawPath)) }
        if entry.rawPath.split(separator: "/").contains("..") { issues.append(.init(kind: .pathTraversal, path: entry.rawPath)) }
        switch entry.kind {
        case .characterDevice, .blockDevice: issues.append(.init(kind: .deviceNode, path: entry.path))
        case .fifo, .socket: issues.append(.init(kind: .specialFile, path: entry.path))
        case .symlink:
            // Absolute targets resolve inside the container's root on restore; relative ones must not climb out.
            if let target = entry.linkTarget, !target.hasPrefix("/"), escapesRoot(linkAt: entry.path, target: target) {
                issues.append(.init(kind: .symlinkEscapes, path: entry.path, target: target))
            }
        case .hardlink:
            if let target = entry.linkTarget, target.hasPrefix("/") || target.split(separator: "/").contains("..") {
                issues.append(.init(kind: .hardlinkEscapes, path: entry.path, target: target))
            }
        default: break
        }
        if entry.kind == .regular && entry.permissions & 0o6000 != 0 {
            issues.append(.init(kind: .setuidOrSetgid, path: entry.path))
        }
        return issues
    }

    /// Whether a relative link target, resolved from the link's directory, climbs above the root.
    static func escapesRoot(linkAt path: String, target: String) -> Bool {
        var depth = path.split(separator: "/").filter { $0 != "." }.count - 1
        for component in target.split(separator: "/") {
            if component == ".." { depth -= 1 } else if component != "." { depth += 1 }
            if depth < 0 { return true }
        }
        return false
    }
}

/// Sizes as checkpointctl reports them.
public struct CheckpointSizes: Sendable, Equatable {
    /// Sum of the regular files under `checkpoint/`.
    public var checkpoint: Int64 = 0
    /// Sum of `checkpoint/pages-*.img`.
    public var memoryPages: Int64 = 0
    /// Sum of `checkpoint/amdgpu-pages-*.img`.
    public var amdGPUPages: Int64 = 0
}

/// Facts about the archive file itself.
public struct ArchiveFacts: Sendable, Equatable {
    /// `none`, `gzip`, `zstd`, `xz`, `bzip2`, …
    public var compression: String
    /// Bytes read from the source: the archive's stored (compressed) size.
    public var storedSize: Int64
    public var entryCount: Int
    /// Names at the root of the archive (first path component), in archive order.
    public var rootEntries: [String]
    /// Paths that appear more than once (at most 100 listed).
    public var duplicateEntries: [String] = []
    /// Entries with an absolute path or a `..` component (at most 100 listed). They are never extracted.
    public var unsafePaths: [String] = []
    /// Entries that are not regular files or directories: links, devices, FIFOs, sockets (at most 100 listed).
    /// No engine writes them at the archive's level; an extraction would follow or create them.
    public var specialEntries: [SpecialEntry] = []
    /// Entries whose path goes through an earlier symlink entry (at most 100 listed): written through it on
    /// extraction, they would land wherever the link points.
    public var pathsThroughSymlinks: [String] = []

    /// One entry of ``specialEntries``.
    public struct SpecialEntry: Sendable, Equatable {
        public var path: String
        public var kind: ArchiveEntry.Kind
        public var target: String?
        public init(path: String, kind: ArchiveEntry.Kind, target: String?) {
            self.path = path
            self.kind = kind
            self.target = target
        }
    }
    /// Bytes after decompression.
    public var expandedSize: Int64 = 0
    /// What follows the end of the archive (or of its compressed stream) in the file or upload.
    public var trailing = TrailingBytes(count: 0, allZero: true)
}

/// Everything Ferry reads from one checkpoint archive: engine metadata, networks, sizes, CRIU dump statistics and
/// the process view decoded from the CRIU images.
public struct CheckpointManifest: Sendable {
    public var archive: ArchiveFacts
    public var engine: ContainerEngine
    public var container: ContainerIdentity
    public var pod: PodIdentity
    /// All `spec.dump` annotations.
    public var annotations: [String: String]
    /// `spec.dump` `linux.resources` (memory and CPU), when any is set.
    public var resources: ContainerResources?
    /// Podman `network.status`, sorted by network name.
    public var networks: [NetworkAttachment]
    /// CRI-O `io.kubernetes.cri-o.IP.N` in index order.
    public var podIPs: [String]
    public var mounts: [MountPoint]
    public var sizes: CheckpointSizes
    public var rootfsDiff: TarSummary?
    public var devShm: TarSummary?
    /// `volumes/<name>.tar`, by volume name.
    public var volumes: [String: TarSummary]
    /// Paths from `deleted.files`.
    public var deletedFiles: [String]
    public var bindMounts: [BindMount]
    public var statistics: DumpStatistics?
    /// The processes, files, sockets and memory decoded from `checkpoint/`. Nil when not asked for.
    public var criu: CRIUSnapshot?
    /// Whether a `dump.log` is present (CRI-O, containerd).
    public var hasDumpLog: Bool
    /// Metadata fields of an unexpected type, read as absent (each a warning finding).
    public var metadataIssues: [MetadataIssue] = []
    /// The checkpoint image the archive came out of, when it was one (``ImageArchive``): its format and annotations
    /// (Podman writes the dumping host's kernel, CRIU and cgroup version only there).
    public var sourceImage: ImageArchive?
    /// containerd's `status.dump`: the container's state then (`running`, …), its restart count, and when it started.
    public var containerdState: ContainerdState?

    /// What containerd's CRI status said about the container when it was checkpointed.
    public struct ContainerdState: Sendable, Equatable {
        public var state: String?
        public var attempt: Int64?
        public var startedAt: String?
        public var finishedAt: String?

        public init(state: String?, attempt: Int64?, startedAt: String?, finishedAt: String?) {
            self.state = state
            self.attempt = attempt
            self.startedAt = startedAt
            self.finishedAt = finishedAt
        }
    }
}
