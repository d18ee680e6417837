import ArgumentParser
import CheckpointArchive
import FerryInspect

/// `ferry inspect`: checkpointctl's `inspect`, as a tree or as JSON.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a checkpoint archive holds: container, image, engine, networks, processes, files, sockets, mounts.",
        discussion: "Archives may be plain, gzip, zstd, xz or bzip2 tar; `-` reads one from standard input."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, tree, json
    }

    @Argument(help: "Checkpoint archives to inspect.")
    var archives: [String]

    @Option(help: "Output format: text (a tree, like checkpointctl's default; `tree` is accepted too) or json.")
    var format: Format = .text

    @Flag(help: "Show CRIU dump statistics.") var stats = false
    @Flag(help: "Show the mounts of the container.") var mounts = false
    @Flag(name: .customLong("ps-tree"), help: "Show the process tree.") var psTree = false
    @Flag(name: .customLong("ps-tree-cmd"), help: "Show the process tree with full command lines (read from memory).")
    var psTreeCmd = false
    @Flag(name: .customLong("ps-tree-env"), help: "Show the process tree with environment variables (read from memory).")
    var psTreeEnv = false
    @Flag(help: "Show open files per process.") var files = false
    @Flag(help: "Show open sockets per process.") var sockets = false
    @Flag(help: "Show pod metadata and annotations.") var metadata = false
    @Flag(help: "Show everything above, plus Ferry's own facts (rootfs diff, deleted files, CRIU inventory).")
    var all = false
    @Option(name: [.customShort("p"), .long], help: "Limit the process tree to this PID and its children.")
    var pid: UInt32?

    func run() throws {
        var sections = InspectSections()
        if all {
            sections = .all
        } else {
            sections.statistics = stats
            sections.mounts = mounts
            sections.processTree = psTree || psTreeCmd || psTreeEnv || files || sockets || pid != nil
            sections.commandLines = psTreeCmd
            sections.environment = psTreeEnv
            sections.files = files
            sections.sockets = sockets
            sections.metadata = metadata
        }
        sections.rootPID = pid
        var options = CheckpointReadOptions()
        options.decodeProcesses = sections.processTree || sections.files || sections.sockets
        options.readProcessMemory = sections.commandLines || sections.environment

        let manifests = try ArchiveArguments.readAll(archives, options: options)
        switch format {
        case .json:
            Output.write(try InspectReport.json(manifests.map(\.1), sections: sections).serialized() + "\n")
        case .text, .tree:
            for (path, manifest) in manifests {
                Output.write(try InspectReport.tree(manifest, sections: sections, source: ArchiveArguments.displayName(path)))
            }
        }
    }
}

/// `ferry show`: checkpointctl's `show`, a one-line-per-archive table.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "List checkpoint archives as a table: container, image, ID, runtime, created, engine, sizes."
    )

    @Argument(help: "Checkpoint archives.")
    var archives: [String]

    func run() throws {
        var options = CheckpointReadOptions()
        options.decodeProcesses = false
        let manifests = try ArchiveArguments.readAll(archives, options: options)
        Output.write(InspectReport.showTable(manifests.map { (ArchiveArguments.displayName($0.0), $0.1) }))
    }
}
