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
        let sink: FileHandle
        if let output {
            let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw ValidationError("cannot create \(output): \(String(cString: strerror(errno)))")
            }
            sink = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            Output.write("\nWriting memory pages content for process ID \(pid) from checkpoint: \(path) to file: \(output)...\n")
        } else {
            sink = FileHandle.standardOutput
            Output.write("\nDisplaying memory pages content for process ID \(pid) from checkpoint: \(path)\n\n")
        }
        // Folding repeated rows keeps a terminal readable; a file gets every row, as checkpointctl does.
        var dump = Hexdump(compact: output == nil)
        var pending = Data("Address           Hexadecimal                                       ASCII            \n".utf8)
        pending.append(Data("-------------------------------------------------------------------------------------\n".utf8))
        try ProcessMemoryReader.stream(archiveAt: path, pid: pid) { address, bytes in
            dump.append(address: address, bytes: bytes, into: &pending)
            if pending.count >= 1 << 16 {
                sink.write(pending)
                pending.removeAll(keepingCapacity: true)
            }
        }
        dump.finish(into: &pending)
        sink.write(pending)
    }

    private func searchMemory(path: String, pid: UInt32, pattern: String, literal: Bool) throws {
        var search = try MemorySearch(pattern: pattern, literal: literal, context: context)
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

func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

/// checkpointctl's hexdump: 16 bytes a row, `ADDRESS  HEX |ASCII|`, rows equal to the one before folded into `*`
/// when compact. Rows restart at each new run of pages, as in checkpointctl.
struct Hexdump {
    let compact: Bool
    private var row: [UInt8] = []
    private var rowAddress: UInt64 = 0
    private var previousASCII: String?
    private var folded = false

    init(compact: Bool) { self.compact = compact }

    mutating func append(address: UInt64, bytes: UnsafeRawBufferPointer, into out: inout Data) {
        if !row.isEmpty && rowAddress + UInt64(row.count) != address { flushRow(into: &out) }
        if row.isEmpty { rowAddress = address }
        for byte in bytes {
            row.append(byte)
            if row.count == 16 { flushRow(into: &out) }
        }
    }

    mutating func finish(into out: inout Data) {
        if !row.isEmpty { flushRow(into: &out) }
    }

    private mutating func flushRow(into out: inout Data) {
        let hex = row.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) + " " }.joined()
        let ascii = String(decoding: row.map { $0 < 32 || $0 >= 127 ? UInt8(ascii: ".") : $0 }, as: UTF8.self)
        if compact && ascii == previousASCII {
            if !folded { out.append(Data("*\n".utf8)) }
            folded = true
        } else {
            out.append(Data("\(hex16(rowAddress))  \(hex) |\(ascii)|\n".utf8))
            folded = false
        }
        previousASCII = ascii
        rowAddress += UInt64(row.count)
        row.removeAll(keepingCapacity: true)
    }
}

/// Searches a process's memory as it streams past, as checkpointctl does: every byte outside printable ASCII is
/// read as `?`, matches do not overlap, and each is shown with `context` bytes on either side. Runs of pages are
/// searched separately; a window of the last bytes is carried across chunks so no match is lost at a boundary.
struct MemorySearch {
    struct Match {
        var address: UInt64
        var text: String
    }

    private(set) var matches: [Match] = []
    private let expression: NSRegularExpression
    private let context: Int
    /// Bytes of the current run not yet searched past, starting at `windowAddress`.
    private var window: [UInt8] = []
    private var windowAddress: UInt64 = 0
    /// The end of the last match, as an address, so that carried-over bytes are not matched twice.
    private var searchedTo: UInt64 = 0
    private static let chunk = 1 << 20
    private static let carry = 64 << 10

    init(pattern: String, literal: Bool, context: Int) throws {
        let source = literal ? NSRegularExpression.escapedPattern(for: pattern) : pattern
        do {
            expression = try NSRegularExpression(pattern: source)
        } catch {
            throw ValidationError("not a valid regular expression: \(pattern)")
        }
        self.context = context
    }

    mutating func feed(address: UInt64, bytes: UnsafeRawBufferPointer) {
        if !window.isEmpty && windowAddress + UInt64(window.count) != address { flush(final: true) }
        if window.isEmpty { windowAddress = address }
        window.append(contentsOf: bytes.lazy.map { $0 < 32 || $0 >= 127 ? UInt8(ascii: "?") : $0 })
        if window.count >= Self.chunk + Self.carry { flush(final: false) }
    }

    mutating func finish() {
        if !window.isEmpty { flush(final: true) }
    }

    /// Searches the window; unless `final`, keeps its last `carry` bytes for the next chunk.
    private mutating func flush(final: Bool) {
        let text = String(decoding: window, as: UTF8.self)  // all ASCII: one UTF-16 unit per byte
        let limit = final ? window.count : window.count - Self.carry
        // Where the next chunk starts: at `limit`, or earlier to keep a match (and its context) that crosses it.
        var keepFrom = limit
        for result in expression.matches(in: text, range: NSRange(location: 0, length: window.count)) {
            let start = result.range.location
            let end = start + result.range.length
            let address = windowAddress + UInt64(start)
            guard address >= searchedTo, result.range.length > 0 else { continue }
            // A match that reaches into the carried tail is found again, whole, with the next chunk.
            guard final || end <= limit else {
                keepFrom = max(Self.chunk / 2, min(keepFrom, start - context))
                continue
            }
            let from = max(0, start - context)
            let to = min(window.count, end + context)
            matches.append(Match(address: address, text: String(decoding: window[from..<to], as: UTF8.self)))
            searchedTo = windowAddress + UInt64(end)
        }
        if final {
            window.removeAll(keepingCapacity: true)
            searchedTo = 0
        } else {
            window.removeFirst(keepFrom)
            windowAddress += UInt64(keepFrom)
        }
    }
}
