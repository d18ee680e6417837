import ArgumentParser

/// `ferry`: the command line of the Ferry checkpoint service.
@main
struct Ferry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Inspect, catalog and move container checkpoint archives.",
        discussion: """
            Exit status: 0 on success; 1 when an archive cannot be read, a service refuses, validation finds errors \
            or a migration fails (one line on stderr naming the problem and its stable code); 2 when a service \
            cannot be reached, or with `validate --strict` when there are warnings only; 3 when `migrate --wait` \
            times out; 64 for a usage error.
            """,
        subcommands: [
            InspectCommand.self, ShowCommand.self, MemparseCommand.self, ValidateCommand.self,
            ServeCommand.self, PushCommand.self, ListCommand.self, GetCommand.self, RemoveCommand.self,
            DiffCommand.self, MigrateCommand.self, NodesCommand.self, GCCommand.self, PinCommand.self, UnpinCommand.self, VerifyCommand.self, AgentCommand.self, FsckCommand.self, KeygenCommand.self, RekeyCommand.self, ImageCommand.self, CheckpointCommand.self, KubeletCheckpointCommand.self,
        ]
    )
}
