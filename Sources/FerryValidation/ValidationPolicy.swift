/// The site's choices for ``ArchiveValidator``: what is tolerated, how big inner tars may be, and which host
/// paths a restore must never bind-mount or create.
public struct ValidationPolicy: Sendable {
    /// Accept setuid/setgid files in inner tars without a finding. By default each one is a warning: images carry
    /// setuid binaries legitimately (`su`, `ping`), but a diff that adds one is worth a look before a restore
    /// extracts it onto a host.
    public var allowSetuid = false
    /// Largest sum of regular-file bytes one inner tar (`rootfs-diff.tar`, `devshm-checkpoint.tar`, each
    /// `volumes/*.tar`) may hold.
    public var maxInnerTarBytes: Int64 = 32 << 30
    /// Most entries one inner tar may hold.
    public var maxInnerTarEntries = 500_000
    /// Host paths a `bind.mounts` source must not be, nor lie under. `/` matches only itself. Both spellings of
    /// paths under the `/var/run` → `/run` symlink are listed, because the check is lexical.
    public var sensitiveHostPaths: [String] = ValidationPolicy.defaultSensitiveHostPaths

    public init() {}

    /// Roots of the host's own configuration, kernel interfaces, credentials and container-engine state.
    public static let defaultSensitiveHostPaths: [String] = [
        "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/root", "/sbin", "/sys", "/usr",
        "/run/containerd", "/var/run/containerd", "/run/crio", "/var/run/crio", "/run/containers", "/var/run/containers",
        "/run/docker.sock", "/var/run/docker.sock", "/run/podman", "/var/run/podman", "/run/secrets", "/var/run/secrets",
        "/var/lib/containerd", "/var/lib/containers", "/var/lib/docker", "/var/lib/kubelet", "/var/lib/etcd",
    ]
}
