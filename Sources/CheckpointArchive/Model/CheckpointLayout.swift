/// Names of the entries at the root of a checkpoint archive, as Podman, CRI-O and containerd write them
/// (checkpointctl `lib/metadata.go`).
public enum CheckpointLayout {
    public static let checkpointDirectory = "checkpoint"
    public static let preCheckpointDirectory = "pre-checkpoint"
    public static let configDump = "config.dump"
    public static let specDump = "spec.dump"
    public static let networkStatus = "network.status"
    public static let rootfsDiff = "rootfs-diff.tar"
    public static let deletedFiles = "deleted.files"
    public static let statsDump = "stats-dump"
    public static let dumpLog = "dump.log"
    public static let devShm = "devshm-checkpoint.tar"
    public static let volumesDirectory = "volumes"
    public static let bindMounts = "bind.mounts"
    public static let statusDump = "status.dump"
    public static let containerdStatus = "status"
    public static let podOptions = "pod.options"
    public static let podDump = "pod.dump"
    public static let crioLogFile = "io.kubernetes.cri-o.LogPath"

    /// Root-level files Ferry reads whole; each is JSON of a few KiB (Podman's `config.dump` is about 24 KiB, its
    /// `spec.dump` under 30 KiB). The 1 MiB bound, 40 times what engines write, keeps what one upload can make
    /// Ferry hold (the file, its parsed form, its inspection) to a few MiB whatever the archive says.
    public static let jsonMetadataFiles: Set<String> = [
        configDump, specDump, networkStatus, deletedFiles, bindMounts, statusDump, containerdStatus, podOptions,
    ]
    public static let jsonMetadataLimit = 1 << 20
    public static let statsDumpLimit = 1 << 20
}

/// `spec.dump` annotation keys that carry identity (reference §1.4).
public enum AnnotationKey {
    public static let containerManager = "io.container.manager"

    public static let podName = "io.kubernetes.pod.name"
    public static let podNamespace = "io.kubernetes.pod.namespace"
    public static let podUID = "io.kubernetes.pod.uid"
    public static let containerName = "io.kubernetes.container.name"

    public static let crioMetadata = "io.kubernetes.cri-o.Metadata"
    public static let crioLabels = "io.kubernetes.cri-o.Labels"
    public static let crioCreated = "io.kubernetes.cri-o.Created"
    public static let crioSandboxID = "io.kubernetes.cri-o.SandboxID"
    public static let crioSandboxName = "io.kubernetes.cri-o.SandboxName"
    public static let crioContainerID = "io.kubernetes.cri-o.ContainerID"
    public static let crioImageName = "io.kubernetes.cri-o.ImageName"
    public static let crioImageRef = "io.kubernetes.cri-o.ImageRef"
    public static let crioAnnotations = "io.kubernetes.cri-o.Annotations"
    public static let crioVolumes = "io.kubernetes.cri-o.Volumes"
    /// CRI-O records pod IPs only as `io.kubernetes.cri-o.IP.0`, `.IP.1`, …
    public static let crioIPPrefix = "io.kubernetes.cri-o.IP."

    public static let containerdSandboxName = "io.kubernetes.cri.sandbox-name"
    public static let containerdSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
    public static let containerdSandboxUID = "io.kubernetes.cri.sandbox-uid"
    public static let containerdSandboxID = "io.kubernetes.cri.sandbox-id"
    public static let containerdContainerName = "io.kubernetes.cri.container-name"
    public static let containerdImageName = "io.kubernetes.cri.image-name"

    public static let checkpointPodName = "org.criu.checkpoint.pod.name"
    public static let checkpointPodNamespace = "org.criu.checkpoint.pod.namespace"
    public static let checkpointContainerName = "org.criu.checkpoint.container.name"
}
