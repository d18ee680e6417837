import ArgumentParser
import CheckpointArchive
import FerryInspect
import Foundation

/// `ferry memparse`: checkpointctl's memory analysis. A table of process memory sizes, a hexdump of one
/// process's memory, or a search through it — streamed from the archive, never extracted.
struct MemparseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memparse",
        abstract: "Show process memory sizes, dump one process's memory, or search it.",
        discussion: "Memory pages hold secrets (tokens, passwords, keys): treat the output accordingly."
    )

    @Argument(help: "Checkpoint archives (one when --pid is given).")
    var archives: [String]

    @Option(name: [.customShort("p"), .long], help: "The process whose memory to dump or search.")
    var pid: UInt32?

    @Option(name: [.customShort("s"), .long], help: "Search the process's memory for this string.")
    var search: String?

    @Option(name: [.customShort("r"), .customLong("search-regex")], help: "Search the process's memory for this regular expression.")
    var searchRegex: String?

    @Option(name: [.customShort("c"), .long], help: "Bytes of context to show around each match.")
    var context: Int = 0

    @Option(name: [.customShort("o"), .long], help: "Write the hexdump to this file (created 0600) instead of stdout.")
    var output: String?

    func validate() throws {
        if search != nil || searchRegex != nil || output != nil {
            guard pid != nil else { throw ValidationError("--search, --search-regex and --output need --pid") }
        }
        if search != nil && searchRegex != nil { throw ValidationError("give --search or --search-regex, not both") }
        if pid != nil && archives.count != 1 { throw ValidationError("--pid takes exactly one archive") }
        if context < 0 || context > 4096 { throw ValidationError("--context must be between 0 and 4096") }
        if archives.contains(ArchiveArguments.standardInput) && pid != nil {
            throw ValidationError("--pid needs an archive file, not standard input (the archive is read twice)")
        }
    }

    func run() throws {
        guard let pid else { return try sizeTables() }
        let path = archives[0]
        do {
            if let pattern = search ?? searchRegex {
                try searchMemory(path: path, pid: pid, pattern: pattern, literal: search != nil)
            } else {
                try dumpMemory(path: path, pid: pid)
            }
        } catch let error as CheckpointError {
            ArchiveFailure(archive: path, error: error).report()
            throw ExitCode.failure
        }
    }

    private func sizeTables() throws {
        let manifests = try ArchiveArguments.readAll(archives, options: CheckpointReadOptions())
        for (path, manifest) in manifests {
            let rows = (manifest.criu?.memory ?? []).map { process in
                [String(process.pid), process.command, Formatting.binarySize(Int64(process.memorySize)),
                 Formatting.binarySize(Int64(process.sharedMemorySize ?? 0))]
            }
            Output.write("\nDisplaying processes memory sizes from \(ArchiveArguments.displayName(path))\n\n")
            Output.write(InspectReport.table(header: ["PID", "PROCESS NAME", "MEMORY SIZE", "SHARED MEMORY SIZE"], rows: rows))
        }
    }

    private func dumpMemory(path: String, pid: UInt32) throws {
        // Nothing is written, and no file created, until the archive has shown it has this process.
        var sink: FileHandle?
        func openSink() throws -> FileHandle {
            if let sink { return sink }
            let handle: FileHandle
            if let output {
                let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
                guard fd >= 0 else {
                    throw ValidationError("cannot create \(output): \(String(cString: strerror(errno)))")
                }
                handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                Output.write("\nWriting memory pages content for process ID \(pid) from checkpoint: \(path) to file: \(output)...\n")
            } else {
                handle = FileHandle.standardOutput
                Output.write("\nDisplaying memory pages content for process ID \(pid) from checkpoint: \(path)\n\n")
            }
            handle.write(Data("Address           Hexadecimal                                       ASCII            \n".utf8))
            handle.write(Data("-------------------------------------------------------------------------------------\n".utf8))
            sink = handle
            return handle
        }
        // Folding repeated rows keeps a terminal readable; a file gets every row, as checkpointctl does.
        var dump = Hexdump(compact: output == nil)
        var pending = Data()
        try ProcessMemoryReader.stream(archiveAt: path, pid: pid) { address, bytes in
            dump.append(address: address, bytes: bytes, into: &pending)
            if pending.count >= 1 << 16 {
                try openSink().write(pending)
                pending.removeAll(keepingCapacity: true)
            }
        }
        dump.finish(into: &pending)
        try openSink().write(pending)
    }

    private func searchMemory(path: String, pid: UInt32, pattern: String, literal: Bool) throws {
        var search: MemorySearch
        do {
            search = try MemorySearch(pattern: pattern, literal: literal, context: context)
        } catch let error as MemorySearchError {
            throw ValidationError(error.description)
        }
        try ProcessMemoryReader.stream(archiveAt: path, pid: pid) { address, bytes in
            search.feed(address: address, bytes: bytes)
        }
        search.finish()
        guard !search.matches.isEmpty else {
            Output.write("No matches for pattern \"\(pattern)\" in the memory of PID \(pid)\n")
            return
        }
        let rows = search.matches.enumerated().map { index, match in
            [hex16(match.address), match.text, String(index + 1)]
        }
        Output.write(InspectReport.table(header: ["ADDRESS", "MATCH", "INSTANCE"], rows: rows))
    }
}

