import ArgumentParser
import FerryClient
import Foundation

/// `ferry image`: checkpoints as the OCI images the registry view (`/v2/`) serves.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Checkpoints as OCI checkpoint images pulled from the service's /v2/.",
        subcommands: [ImageReferenceCommand.self])
}

/// `ferry image ref ID`: the reference Podman, CRI-O and containerd pull the checkpoint from.
struct ImageReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ref",
        abstract: "Print the pull reference (HOST:PORT/REPOSITORY:TAG) of a checkpoint: podman pull it, then podman container restore it, or use it as a Pod's image.")

    @OptionGroup var serverOptions: ServerOptions
    @Argument(help: "Checkpoint ID (or a unique prefix).") var id: String

    func run() throws {
        let client = try serverOptions.client()
        let summary = try runClient { try client.checkpoint(id) }
        let checkpoint = summary["checkpoint"] as? [String: Any] ?? [:]
        guard let reference = checkpoint["oci_reference"] as? String else {
            let compression = checkpoint["compression"] as? String ?? "this"
            FileHandle.standardError.write(Data("ferry: checkpoint \(id) is a \(compression) archive, which no image layer type fits: it has no image reference [NO_IMAGE_REFERENCE]\n".utf8))
            throw ExitCode(ClientExit.refused)
        }
        print(reference)
    }
}
