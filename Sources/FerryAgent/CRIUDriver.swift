import FerryValidation
import Foundation

/// Restores a plain process tree (not a container) with `criu restore` from the `checkpoint/` images of an
/// archive. Checkpoints are not supported: a bare CRIU dump has none of the metadata a checkpoint archive needs.
public struct CRIUDriver: RuntimeDriver {
    public let name = "criu"

    public init() {}

    /// The directory the images are unpacked into: `JOB_DIR/images`.
    public static func imagesDirectory(of job: JobContext) -> String {
        job.directory + "/images"
    }

    /// `criu restore --images-dir DIR --restore-detached --shell-job [--tcp-established] [--tcp-close]`. The other
    /// options (name, pod, static IP and MAC, rootfs, volumes) are the container engine's and do not apply.
    public func restoreCommand(archive: String, options: RuntimeRestoreOptions, job: JobContext) -> [String] {
        var argv = ["criu", "restore", "--images-dir", Self.imagesDirectory(of: job), "--restore-detached", "--shell-job"]
        if options.restore.tcpEstablished { argv.append("--tcp-established") }
        if options.restore.tcpClose { argv.append("--tcp-close") }
        return argv
    }

    public func checkpointCommand(container: String, output: String, options: CheckpointOptions,
                                  job: JobContext) throws(AgentError) -> [String] {
        throw AgentError(.driverUnsupported, "the criu driver restores process trees only; it cannot checkpoint containers")
    }

    public var canCheckpoint: Bool { false }

    /// CRIU prints nothing useful on stdout; a restored tree has no container ID.
    public var restorePrintsContainerID: Bool { false }

    /// Unpacks `checkpoint/*` into the images directory (see ``CheckpointImages/extract(archive:into:)``).
    public func prepareRestore(archive: String, job: JobContext) throws(AgentError) {
        _ = try CheckpointImages.extract(archive: archive, into: Self.imagesDirectory(of: job))
    }

    public var versionCommand: [String]? { ["criu", "--version"] }

    /// `4.2` from `Version: 4.2`.
    public func version(fromOutput output: String) -> String? {
        CRIUVersion.parse(output).map(\.text)
    }
}

/// The version line of `criu --version` (`Version: 4.2`, `Version: 3.17.1`).
struct CRIUVersion: Equatable {
    var major: Int
    var minor: Int
    var patch: Int

    /// `major.minor[.patch]` as CRIU printed it.
    var text: String { patch == 0 ? "\(major).\(minor)" : "\(major).\(minor).\(patch)" }

    /// The integer Podman records as `criu.version`: 40200 for 4.2.
    var number: Int { major * 10_000 + minor * 100 + patch }

    static func parse(_ output: String) -> CRIUVersion? {
        for line in output.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("Version:") else { continue }
            let numbers = trimmed.dropFirst("Version:".count).trimmingCharacters(in: .whitespaces)
                .split(separator: ".").map { Int($0.prefix { $0.isNumber }) }
            guard numbers.count >= 2, let major = numbers[0], let minor = numbers[1] else { return nil }
            return CRIUVersion(major: major, minor: minor, patch: numbers.count > 2 ? numbers[2] ?? 0 : 0)
        }
        return nil
    }
}
