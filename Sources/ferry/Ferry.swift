import ArgumentParser

/// `ferry`: the command line of the Ferry checkpoint service.
@main
struct Ferry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Inspect, catalog and move container checkpoint archives.",
        discussion: """
            Exit status: 0 on success, 1 when an archive cannot be read (one line per archive on stderr, \
            naming the archive, the problem and its stable code), 64 for a usage error.
            """,
        subcommands: [
            InspectCommand.self, ShowCommand.self, MemparseCommand.self, ValidateCommand.self,
            ServeCommand.self, MigrateCommand.self, NodesCommand.self, PushCommand.self, ListCommand.self, GetCommand.self, RemoveCommand.self,
        ]
    )
}
