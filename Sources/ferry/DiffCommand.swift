import ArgumentParser
import FerryAPI
import FerryClient
import FerryInspect
import Foundation

/// `ferry diff`: checkpointctl's `diff` of two checkpoints of one container, from two archives or, with
/// `--server`, from two catalogued checkpoints (the service computes it).
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what changed between two checkpoints of one container: processes, open files, sockets, memory.",
        discussion: """
            A and B are checkpoint archives (plain, gzip, zstd, xz or bzip2 tar, or saved checkpoint images), or with \
            --server two checkpoint IDs (or unique prefixes) of that service. Checkpoints of different containers \
            are refused ([CONTAINER_MISMATCH]). Exit status: 0 compared; 1 an archive cannot be read, the containers \
            differ or the service refused; 2 the service cannot be reached.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case tree, text, json
    }

    @Argument(help: "The earlier checkpoint (archive, or ID with --server).") var a: String
    @Argument(help: "The later checkpoint (archive, or ID with --server).") var b: String

    @Option(help: "Output format: tree (checkpointctl's default; `text` is accepted too) or json.")
    var format: Format = .tree
    @Flag(name: .customLong("ps-tree-cmd"), help: "Compare full command lines (read from memory); a changed one is a modified process.")
    var psTreeCmd = false
    @Flag(name: .customLong("ps-tree-env"), help: "Accepted as checkpointctl accepts it: environments are not compared.")
    var psTreeEnv = false
    @Flag(help: "Compare open files.") var files = false
    @Flag(help: "Compare sockets.") var sockets = false
    @Flag(name: .customLong("show-unchanged"), help: "Also show what is the same (the tree view; JSON always lists it).")
    var showUnchanged = false

    /// `--server` switches to checkpoint IDs; `$FERRY_SERVER` alone does not, so A and B are archives by default.
    @OptionGroup var serverOptions: ServerOptions

    func run() throws {
        let options = DiffOptions(files: files, sockets: sockets, commandLines: psTreeCmd, environment: psTreeEnv,
                                  showUnchanged: showUnchanged)
        if serverOptions.server != nil {
            let client = try serverOptions.client()
            let query = DiffQuery.parameters(files: files, sockets: sockets, commandLines: psTreeCmd, environment: psTreeEnv,
                                             showUnchanged: showUnchanged, tree: format != .json)
            let body = try runClient { try client.diff(a, b, query: query) }
            Output.write(String(decoding: body, as: UTF8.self))
            return
        }
        let subjects = try ArchiveArguments.readAll([a, b], options: options.readOptions).map {
            try DiffSubject(manifest: $0.1, options: options)
        }
        let diff: CheckpointDiff
        do {
            diff = try CheckpointDiff.compare(subjects[0], subjects[1], options: options)
        } catch {
            FileHandle.standardError.write(Data("ferry: \(error.message) [\(ContainerMismatch.code)]\n".utf8))
            throw ExitCode.failure
        }
        switch format {
        case .json: Output.write(String(decoding: try diff.json(), as: UTF8.self))
        case .tree, .text: Output.write(diff.tree(options: options))
        }
    }
}
