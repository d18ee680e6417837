/// A stable, machine-readable finding code. The same code appears in `ferry validate`'s output, the API's JSON and
/// the README's validation section, so never rename one. Severities are given per code below; only
/// ``FindingCode/innerEntrySetuid`` depends on the policy.
public struct FindingCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    // MARK: Identity

    /// Error: the container ID is not 64 lowercase hex digits.
    public static let containerIDInvalid = FindingCode(rawValue: "CONTAINER_ID_INVALID")
    /// Error: `config.dump`'s ID differs from CRI-O's `io.kubernetes.cri-o.ContainerID` annotation.
    public static let containerIDMismatch = FindingCode(rawValue: "CONTAINER_ID_MISMATCH")
    /// Error: a sandbox (pod) ID is not 64 lowercase hex digits.
    public static let sandboxIDInvalid = FindingCode(rawValue: "SANDBOX_ID_INVALID")
    /// Error: a pod UID is not a UUID.
    public static let podUIDInvalid = FindingCode(rawValue: "POD_UID_INVALID")
    /// Error: two identity sources name a different namespace, pod, container or pod UID.
    public static let identityConflict = FindingCode(rawValue: "IDENTITY_CONFLICT")
    /// Warning: an identity source names some of namespace, pod and container but not all.
    public static let identityIncomplete = FindingCode(rawValue: "IDENTITY_INCOMPLETE")
    /// Error: an identity annotation is not the JSON its engine writes (`io.kubernetes.cri-o.Labels`).
    public static let identityAnnotationInvalid = FindingCode(rawValue: "IDENTITY_ANNOTATION_INVALID")

    // MARK: CRIU images

    /// Info: the CRIU images were not decoded, so the CRIU rules were skipped.
    public static let criuNotDecoded = FindingCode(rawValue: "CRIU_NOT_DECODED")
    /// Error: `checkpoint/inventory.img` is missing.
    public static let criuInventoryMissing = FindingCode(rawValue: "CRIU_INVENTORY_MISSING")
    /// Error: the inventory's image version is neither 1 nor 2.
    public static let criuImageVersionUnsupported = FindingCode(rawValue: "CRIU_IMAGE_VERSION_UNSUPPORTED")
    /// Error: the process tree has no root process, more than one, or processes its root does not reach.
    public static let processTreeRootInvalid = FindingCode(rawValue: "PROCESS_TREE_ROOT_INVALID")

    // MARK: Network

    /// Error: an address in `network.status` or a CRI-O pod IP does not parse (CIDR for `network.status`).
    public static let ipAddressInvalid = FindingCode(rawValue: "IP_ADDRESS_INVALID")
    /// Error: an address is unspecified, loopback, link-local, multicast, or its subnet's network or broadcast address.
    public static let ipAddressReserved = FindingCode(rawValue: "IP_ADDRESS_RESERVED")
    /// Warning: the same address is on two interfaces.
    public static let ipAddressDuplicate = FindingCode(rawValue: "IP_ADDRESS_DUPLICATE")
    /// Error: a gateway does not parse, is unspecified, loopback or multicast, or is the interface's own address.
    public static let gatewayInvalid = FindingCode(rawValue: "GATEWAY_INVALID")
    /// Error: a gateway lies outside every subnet of its interface.
    public static let gatewayOutsideSubnet = FindingCode(rawValue: "GATEWAY_OUTSIDE_SUBNET")
    /// Error: a MAC address is not six hex octets, is multicast, or is all zeros.
    public static let macAddressInvalid = FindingCode(rawValue: "MAC_ADDRESS_INVALID")

    // MARK: Inner tars (rootfs-diff.tar, devshm-checkpoint.tar, volumes/*.tar)

    /// Error: an inner tar could not be read to the end (corrupt, truncated, a decompression bomb, too many entries).
    public static let innerTarUnreadable = FindingCode(rawValue: "INNER_TAR_UNREADABLE")
    /// Error: an inner tar's files add up to more bytes than the policy allows.
    public static let innerTarTooLarge = FindingCode(rawValue: "INNER_TAR_TOO_LARGE")
    /// Error: an inner tar has more entries than the policy allows.
    public static let innerTarTooManyEntries = FindingCode(rawValue: "INNER_TAR_TOO_MANY_ENTRIES")
    /// Error: an inner tar has more unsafe entries than the reader lists, so some went unexamined.
    public static let innerTarTooManyIssues = FindingCode(rawValue: "INNER_TAR_TOO_MANY_ISSUES")
    /// Error: an inner tar entry has an absolute path.
    public static let innerEntryAbsolutePath = FindingCode(rawValue: "INNER_ENTRY_ABSOLUTE_PATH")
    /// Error: an inner tar entry's path has a `..` component.
    public static let innerEntryPathTraversal = FindingCode(rawValue: "INNER_ENTRY_PATH_TRAVERSAL")
    /// Error: an inner tar entry is a character or block device node.
    public static let innerEntryDeviceNode = FindingCode(rawValue: "INNER_ENTRY_DEVICE_NODE")
    /// Error: an inner tar entry is a FIFO or a socket.
    public static let innerEntrySpecialFile = FindingCode(rawValue: "INNER_ENTRY_SPECIAL_FILE")
    /// Error: an inner tar symlink's relative target climbs above the root.
    public static let innerEntrySymlinkEscapes = FindingCode(rawValue: "INNER_ENTRY_SYMLINK_ESCAPES")
    /// Error: an inner tar hard link points at an absolute path or climbs above the root.
    public static let innerEntryHardlinkEscapes = FindingCode(rawValue: "INNER_ENTRY_HARDLINK_ESCAPES")
    /// Warning (none when the policy allows setuid): an inner tar file has the setuid or setgid bit.
    public static let innerEntrySetuid = FindingCode(rawValue: "INNER_ENTRY_SETUID")

    // MARK: deleted.files and bind.mounts

    /// Error: a `deleted.files` entry is not a clean absolute path (relative, `/`, `..`, `.`, `//`, NUL).
    public static let deletedFileInvalid = FindingCode(rawValue: "DELETED_FILE_INVALID")
    /// Error: a `bind.mounts` source or destination is not a clean absolute path.
    public static let bindMountPathInvalid = FindingCode(rawValue: "BIND_MOUNT_PATH_INVALID")
    /// Error: a `bind.mounts` `file_type` is neither `file` nor `directory`.
    public static let bindMountTypeInvalid = FindingCode(rawValue: "BIND_MOUNT_TYPE_INVALID")
    /// Error: a `bind.mounts` source is a host-sensitive path or lies under one (cri-o#10106).
    public static let bindMountSensitiveSource = FindingCode(rawValue: "BIND_MOUNT_SENSITIVE_SOURCE")
    /// Error: a `bind.mounts` `permissions` value has bits beyond `0o7777`.
    public static let bindMountPermissionsInvalid = FindingCode(rawValue: "BIND_MOUNT_PERMISSIONS_INVALID")
    /// Warning: a `bind.mounts` source would be created world-writable without the sticky bit.
    public static let bindMountWorldWritable = FindingCode(rawValue: "BIND_MOUNT_WORLD_WRITABLE")

    // MARK: Archive shape

    /// Error: a path appears more than once in the archive.
    public static let archiveDuplicateEntry = FindingCode(rawValue: "ARCHIVE_DUPLICATE_ENTRY")
    /// Error: an archive entry has an absolute path or a `..` component.
    public static let archiveUnsafePath = FindingCode(rawValue: "ARCHIVE_UNSAFE_PATH")
    /// Info: an entry at the archive root that no engine writes.
    public static let archiveUnknownEntry = FindingCode(rawValue: "ARCHIVE_UNKNOWN_ENTRY")
    /// Error: an entry of the archive itself is a symlink or a hard link (e.g. to `/etc` or `/etc/shadow`).
    public static let archiveLinkEntry = FindingCode(rawValue: "ARCHIVE_LINK_ENTRY")
    /// Error: an entry of the archive itself is a device node, a FIFO or a socket.
    public static let archiveSpecialFile = FindingCode(rawValue: "ARCHIVE_SPECIAL_FILE")
    /// Error: an entry's path goes through an earlier symlink entry, so extracting it writes wherever the link points.
    public static let archivePathThroughSymlink = FindingCode(rawValue: "ARCHIVE_PATH_THROUGH_SYMLINK")
    /// Error (warning for zeros): bytes follow the end of the archive (or of its compressed stream): no engine reads
    /// them, yet they are stored and served with it.
    public static let archiveTrailingData = FindingCode(rawValue: "ARCHIVE_TRAILING_DATA")
    /// Warning: a metadata field Ferry only displays has another type than engines write; it is ignored.
    public static let metadataFieldInvalid = FindingCode(rawValue: "METADATA_FIELD_INVALID")

    // MARK: Preflight (target node)

    /// Error: the checkpoint was dumped on another CPU architecture than the target's.
    public static let architectureMismatch = FindingCode(rawValue: "ARCHITECTURE_MISMATCH")
    /// Error: the target's CRIU is older than the engine needs to restore.
    public static let criuVersionTooOld = FindingCode(rawValue: "CRIU_VERSION_TOO_OLD")
    /// Warning: the target's CRIU is older than the CRIU that dumped the checkpoint.
    public static let criuVersionOlderThanDump = FindingCode(rawValue: "CRIU_VERSION_OLDER_THAN_DUMP")
    /// Error: the OCI runtime that made the checkpoint is not on the target.
    public static let runtimeMissing = FindingCode(rawValue: "RUNTIME_MISSING")
    /// Warning: the target kernel's major.minor version differs from the dumping host's.
    public static let kernelVersionDiffers = FindingCode(rawValue: "KERNEL_VERSION_DIFFERS")
    /// Warning: the target uses another cgroup version than the dumping host.
    public static let cgroupVersionDiffers = FindingCode(rawValue: "CGROUP_VERSION_DIFFERS")
    /// Warning: neither the base image's name nor its ID is on the target.
    public static let baseImageMissing = FindingCode(rawValue: "BASE_IMAGE_MISSING")
    /// Error: the target has the base image's name but not its ID: another build of the image. Podman looks the
    /// image up by ID and refuses the restore.
    public static let baseImageIDMismatch = FindingCode(rawValue: "BASE_IMAGE_ID_MISMATCH")
    /// Error: a network the container was attached to does not exist on the target.
    public static let networkMissing = FindingCode(rawValue: "NETWORK_MISSING")
    /// Error: a static IP the restore would request is already in use on the target.
    public static let staticIPInUse = FindingCode(rawValue: "STATIC_IP_IN_USE")
    /// Error: a static IP the restore would request lies outside the target network's subnets.
    public static let staticIPOutsideNetworks = FindingCode(rawValue: "STATIC_IP_OUTSIDE_NETWORKS")
    /// Error: a static MAC the restore would request is already in use on the target.
    public static let staticMACInUse = FindingCode(rawValue: "STATIC_MAC_IN_USE")
    /// Error: the container name the restore would use is taken on the target.
    public static let containerNameInUse = FindingCode(rawValue: "CONTAINER_NAME_IN_USE")
    /// Error: the container ID the restore would use is taken on the target.
    public static let containerIDInUse = FindingCode(rawValue: "CONTAINER_ID_IN_USE")
    /// Error: the checkpoint holds established TCP connections and the restore asks for neither
    /// `--tcp-established` nor `--tcp-close` (CRIU refuses).
    public static let tcpEstablishedFlagMissing = FindingCode(rawValue: "TCP_ESTABLISHED_FLAG_MISSING")
    /// Error: established TCP connections on a non-loopback address would be restored onto a different IP.
    public static let tcpEstablishedIPChanges = FindingCode(rawValue: "TCP_ESTABLISHED_IP_CHANGES")
    /// Error: `--name` together with `--tcp-established`, which Podman refuses ("--tcp-established cannot be used
    /// with --name").
    public static let nameWithTCPEstablished = FindingCode(rawValue: "NAME_WITH_TCP_ESTABLISHED")

    // MARK: Source container (live migrations, judged before anything is stopped)

    /// Error: the container to migrate does not exist on the source node.
    public static let sourceContainerMissing = FindingCode(rawValue: "SOURCE_CONTAINER_MISSING")
    /// Error: the container to migrate exists on the source node but is not running; there is nothing to checkpoint.
    public static let sourceContainerNotRunning = FindingCode(rawValue: "SOURCE_CONTAINER_NOT_RUNNING")

    /// Every code, in the order of the README's validation section.
    public static let all: [FindingCode] = [
        .containerIDInvalid, .containerIDMismatch, .sandboxIDInvalid, .podUIDInvalid, .identityConflict,
        .identityIncomplete, .identityAnnotationInvalid,
        .criuNotDecoded, .criuInventoryMissing, .criuImageVersionUnsupported, .processTreeRootInvalid,
        .ipAddressInvalid, .ipAddressReserved, .ipAddressDuplicate, .gatewayInvalid, .gatewayOutsideSubnet,
        .macAddressInvalid,
        .innerTarUnreadable, .innerTarTooLarge, .innerTarTooManyEntries, .innerTarTooManyIssues,
        .innerEntryAbsolutePath, .innerEntryPathTraversal, .innerEntryDeviceNode, .innerEntrySpecialFile,
        .innerEntrySymlinkEscapes, .innerEntryHardlinkEscapes, .innerEntrySetuid,
        .deletedFileInvalid, .bindMountPathInvalid, .bindMountTypeInvalid, .bindMountSensitiveSource,
        .bindMountPermissionsInvalid, .bindMountWorldWritable,
        .archiveDuplicateEntry, .archiveUnsafePath, .archiveUnknownEntry, .archiveLinkEntry, .archiveSpecialFile,
        .archiveTrailingData, .archivePathThroughSymlink, .metadataFieldInvalid,
        .architectureMismatch, .criuVersionTooOld, .criuVersionOlderThanDump, .runtimeMissing,
        .kernelVersionDiffers, .cgroupVersionDiffers, .baseImageMissing, .baseImageIDMismatch, .networkMissing,
        .staticIPInUse, .staticIPOutsideNetworks, .staticMACInUse, .containerNameInUse, .containerIDInUse,
        .tcpEstablishedFlagMissing, .tcpEstablishedIPChanges, .nameWithTCPEstablished,
        .sourceContainerMissing, .sourceContainerNotRunning,
    ]
}
