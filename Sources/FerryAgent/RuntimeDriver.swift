public import FerryValidation
public import FerryAPI

/// A container runtime as the agent drives it: the argv of a restore and of a checkpoint, built from a job's
/// options. Drivers only build commands (no shell, argv as given to `posix_spawnp`); the job runner starts them,
/// captures their output and judges their exit status.
public protocol RuntimeDriver: Sendable {
    /// `podman`, `criu` or `command`: what heartbeats report as `driver`.
    var name: String { get }

    /// The argv that restores the archive at `archive` (a checkpoint archive downloaded and digest-checked).
    func restoreCommand(archive: String, options: RuntimeRestoreOptions, job: JobContext) throws(AgentError) -> [String]

    /// The argv that checkpoints `container` into an archive at `output`.
    /// - Throws: `DRIVER_UNSUPPORTED` when the driver cannot checkpoint.
    func checkpointCommand(container: String, output: String, options: CheckpointOptions,
                           job: JobContext) throws(AgentError) -> [String]

    /// Work before the restore command runs (the `criu` driver unpacks the images). Default: nothing.
    func prepareRestore(archive: String, job: JobContext) throws(AgentError)

    /// Whether checkpoint jobs can be accepted at all. Default: true.
    var canCheckpoint: Bool { get }

    /// Whether a restore that was running when the agent stopped may simply be run again at start-up. Default:
    /// true — a second restore of a container that the first one already restored is refused by the runtime
    /// (Podman refuses a taken name or ID, CRIU a taken PID), which fails the job cleanly.
    var rerunsInterruptedRestore: Bool { get }

    /// Whether a checkpoint that was running when the agent stopped may be run again. Default: false — the first
    /// run may have stopped the container (no `--leave-running`), and a second one would fail or, worse, dump a
    /// container someone has restarted meanwhile; the job fails with `INTERRUPTED` instead.
    var rerunsInterruptedCheckpoint: Bool { get }

    /// Whether the last line of the restore command's stdout is the restored container's ID. Default: true.
    var restorePrintsContainerID: Bool { get }

    /// What the runtime says about `container` (a name or ID) right now: whether it exists and runs, and the facts
    /// a preflight judges its migration by. Nil: this driver cannot tell (the agent then falls back to what the
    /// job's own record says).
    func inspect(container: String) -> ContainerReport?

    /// The argv that restores a checkpointed, stopped container where it stands, from the checkpoint its runtime
    /// kept (Podman keeps `userdata/checkpoint` after `checkpoint --export`): the rollback's first choice, since
    /// the container is never removed. Nil: unsupported (the rollback removes it and restores the archive).
    func restoreInPlaceCommand(container: String, options: RuntimeRestoreOptions) -> [String]?

    /// The argv that removes a container that does not run (one a failed restore left, or the source's stopped
    /// copy after a migration succeeded). Nil: the driver cannot remove containers.
    func removeCommand(container: String) -> [String]?

    /// The argv that prints the runtime's version (nil: no runtime version to report).
    var versionCommand: [String]? { get }

    /// The runtime version in the output of `versionCommand`.
    func version(fromOutput output: String) -> String?

    /// A stable code for a checkpoint command's exit status, more precise than `CHECKPOINT_FAILED`. Default: nil.
    func checkpointFailureCode(exitStatus: Int32) -> AgentErrorCode?

    /// Whether a checkpoint leaves the container running whatever the options (the kubelet's does). Default: false.
    var checkpointLeavesContainerRunning: Bool { get }
}

extension RuntimeDriver {
    public func checkpointFailureCode(exitStatus: Int32) -> AgentErrorCode? { nil }
    public var checkpointLeavesContainerRunning: Bool { false }
    public func prepareRestore(archive: String, job: JobContext) throws(AgentError) {}
    public var canCheckpoint: Bool { true }
    public var rerunsInterruptedRestore: Bool { true }
    public var rerunsInterruptedCheckpoint: Bool { false }
    public var restorePrintsContainerID: Bool { true }
    public var versionCommand: [String]? { nil }
    public func inspect(container: String) -> ContainerReport? { nil }
    public func removeCommand(container: String) -> [String]? { nil }
    public func restoreInPlaceCommand(container: String, options: RuntimeRestoreOptions) -> [String]? { nil }
    public func version(fromOutput output: String) -> String? { nil }
}

/// The job a driver builds a command for.
public struct JobContext: Sendable, Equatable {
    /// The job's ID (the service's migration ID, or `MIGRATION-checkpoint`).
    public var id: String
    /// The job's directory, `WORK_DIR/jobs/ID`: the archive, the driver's output, and the `criu` driver's images.
    public var directory: String
    /// The checkpoint ID (64 hex digits) of a restore job; nil for a checkpoint job.
    public var checkpoint: String?

    public init(id: String, directory: String, checkpoint: String? = nil) {
        self.id = id
        self.directory = directory
        self.checkpoint = checkpoint
    }
}

/// What a restore job asks of the runtime: the preflight's ``RestoreOptions`` plus the Podman flags that do not
/// change what can go wrong on the target (`keep`, `ignore_volumes`), and the options JSON as received, for the
/// `command` driver's `{options_json}` (keys the agent does not know are kept there).
public struct RuntimeRestoreOptions: Sendable, Equatable {
    /// `name`, `ignore_static_ip`, `ignore_static_mac`, `ignore_rootfs`, `tcp_established`, `tcp_close`, `pod`.
    public var restore: RestoreOptions
    /// `--keep`: keep the temporary restore files.
    public var keep: Bool
    /// `--ignore-volumes`: do not restore the volumes in the archive.
    public var ignoreVolumes: Bool
    /// The options object as compact JSON with sorted keys, e.g. `{"name":"web","tcp_established":true}`.
    public var json: String

    public init(restore: RestoreOptions = RestoreOptions(), keep: Bool = false, ignoreVolumes: Bool = false,
                json: String = "{}") {
        self.restore = restore
        self.keep = keep
        self.ignoreVolumes = ignoreVolumes
        self.json = json
    }
}

/// What a checkpoint job asks of the runtime, named after `podman container checkpoint`'s flags.
public struct CheckpointOptions: Sendable, Equatable {
    /// `--compress`: how the exported archive is compressed.
    public enum Compression: String, Sendable, CaseIterable {
        case zstd, gzip, none

        /// The archive's file name in the job directory.
        public var fileName: String {
            switch self {
            case .zstd: "checkpoint.tar.zst"
            case .gzip: "checkpoint.tar.gz"
            case .none: "checkpoint.tar"
            }
        }
    }

    public var compress: Compression
    /// `--leave-running`: the container keeps running after the dump.
    public var leaveRunning: Bool
    /// `--tcp-established`: dump established TCP connections.
    public var tcpEstablished: Bool
    /// `--keep`: keep the temporary checkpoint files.
    public var keep: Bool
    /// Labels the archive is catalogued with.
    public var labels: [String: String] = [:]
    /// The options object as compact JSON with sorted keys.
    public var json: String

    public init(compress: Compression = .zstd, leaveRunning: Bool = false, tcpEstablished: Bool = false,
                keep: Bool = false, json: String = "{}") {
        self.compress = compress
        self.leaveRunning = leaveRunning
        self.tcpEstablished = tcpEstablished
        self.keep = keep
        self.json = json
    }
}
