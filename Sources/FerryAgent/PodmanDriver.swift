public import FerryAPI
import FerryValidation
import Foundation

/// Restores and checkpoints containers with `podman container restore --import` and
/// `podman container checkpoint --export`. Podman must be in `PATH`.
public struct PodmanDriver: RuntimeDriver {
    public let name = "podman"
    /// Podman's last answers, reused while its events log shows no change.
    let cache = PodmanStateCache()

    public init() {}

    /// `podman container restore --import=FILE [--name N] [--tcp-established] [--tcp-close] [--keep]
    /// [--ignore-static-ip] [--ignore-static-mac] [--ignore-rootfs] [--ignore-volumes] [--pod P]`.
    /// `--print-stats` is never given: the container ID must be the only thing on stdout.
    public func restoreCommand(archive: String, options: RuntimeRestoreOptions, job: JobContext) -> [String] {
        var argv = ["podman", "container", "restore", "--import=\(archive)"]
        if let name = options.restore.name, !name.isEmpty { argv += ["--name", name] }
        if options.restore.tcpEstablished { argv.append("--tcp-established") }
        if options.restore.tcpClose { argv.append("--tcp-close") }
        if options.keep { argv.append("--keep") }
        if options.restore.ignoreStaticIP { argv.append("--ignore-static-ip") }
        if options.restore.ignoreStaticMAC { argv.append("--ignore-static-mac") }
        if options.restore.ignoreRootfs { argv.append("--ignore-rootfs") }
        if options.ignoreVolumes { argv.append("--ignore-volumes") }
        if let pod = options.restore.pod, !pod.isEmpty { argv += ["--pod", pod] }
        return argv
    }

    /// `podman container checkpoint --export=FILE --compress=zstd|gzip|none [--leave-running] [--tcp-established]
    /// [--keep] CONTAINER`.
    public func checkpointCommand(container: String, output: String, options: CheckpointOptions,
                                  job: JobContext) -> [String] {
        var argv = ["podman", "container", "checkpoint", "--export=\(output)", "--compress=\(options.compress.rawValue)"]
        if options.leaveRunning { argv.append("--leave-running") }
        if options.tcpEstablished { argv.append("--tcp-established") }
        if options.keep { argv.append("--keep") }
        argv.append(container)
        return argv
    }

    public func inspect(container: String) -> ContainerReport? {
        PodmanContainer.report(container, cache: cache)
    }

    /// `podman container restore [--tcp-established] CONTAINER`: from the checkpoint Podman keeps in the container's
    /// `userdata/checkpoint`. (Never `podman start`: that discards the state and starts afresh.)
    public func restoreInPlaceCommand(container: String, options: RuntimeRestoreOptions) -> [String]? {
        var argv = ["podman", "container", "restore"]
        if options.restore.tcpEstablished { argv.append("--tcp-established") }
        if options.keep { argv.append("--keep") }
        return argv + [container]
    }

    /// `podman rm -f -t 0 CONTAINER`: the agent only removes containers it has checked are not running.
    public func removeCommand(container: String) -> [String]? {
        ["podman", "rm", "-f", "-t", "0", container]
    }

    public var versionCommand: [String]? { ["podman", "version", "--format", "json"] }

    /// `Client.Version` of `podman version --format json`.
    public func version(fromOutput output: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
              let client = object["Client"] as? [String: Any] else { return nil }
        return client["Version"] as? String
    }
}
