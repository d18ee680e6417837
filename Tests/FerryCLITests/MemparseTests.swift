import Foundation
import FerryTestSupport
import Testing

/// `ferry memparse` against checkpointctl's output and against the memory itself.
@Suite("ferry memparse")
struct MemparseTests {
    @Test("the size table has checkpointctl's rows for every archive", arguments: Fixtures.checkpointArchives)
    func sizeTable(archive: String) throws {
        let result = try Fixtures.ferry(["memparse", Fixtures.archive(archive)])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let reference = try String(contentsOf: Fixtures.reference(for: archive, suffix: ".memparse.txt"), encoding: .utf8)
        let ours = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let theirs = reference.split(separator: "\n", omittingEmptySubsequences: false)
        // The first four lines (title, blank, header, dashes) are the same; checkpointctl orders the rows by Go map
        // iteration, so rows are compared as a set.
        #expect(Array(ours.prefix(5)).dropFirst(2) == Array(theirs.prefix(5)).dropFirst(2))
        #expect(Set(ours.dropFirst(5).filter { !$0.isEmpty }) == Set(theirs.dropFirst(5).filter { !$0.isEmpty }))
        #expect(ours.dropFirst(5).filter { !$0.isEmpty }.count == theirs.dropFirst(5).filter { !$0.isEmpty }.count)
    }

    @Test("a hexdump to a file has every row of the process's memory, by address")
    func hexdumpToFile() throws {
        let directory = try Fixtures.temporaryDirectory()
        let output = directory.appendingPathComponent("pid1.txt").path
        let result = try Fixtures.ferry(["memparse", "-p", "1", "-o", output, Fixtures.archive("podman-counter-none.tar")])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let attributes = try FileManager.default.attributesOfItem(atPath: output)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "memory dumps hold secrets")
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.first?.hasPrefix("Address") == true)
        let rows = lines.dropFirst(2)
        #expect(rows.count == 73728 / 16, "pid 1 has 72 KiB of memory: one row per 16 bytes, none folded")
        let addresses = rows.compactMap { UInt64($0.prefix(16), radix: 16) }
        #expect(addresses.count == rows.count)
        #expect(zip(addresses, addresses.dropFirst()).allSatisfy { $0 < $1 })
        let text = rows.map { $0.split(separator: "|", omittingEmptySubsequences: false).dropFirst().first ?? "" }.joined()
        #expect(text.contains("SECRET_TOKEN=hunter2"), "the environment is in the dump")
    }

    @Test("a hexdump on stdout folds repeated rows")
    func compactHexdump() throws {
        let result = try Fixtures.ferry(["memparse", "-p", "12", Fixtures.archive("podman-counter-none.tar")])
        #expect(result.status == 0)
        let rows = result.stdout.split(separator: "\n").dropFirst(3)
        #expect(rows.contains("*"))
        #expect(rows.count < 69632 / 16)
    }

    @Test("a search finds the secret with its context and address")
    func searchString() throws {
        let archive = Fixtures.archive("podman-counter-none.tar")
        let result = try Fixtures.ferry(["memparse", "-p", "1", "-s", "SECRET_TOKEN=hunter2", "-c", "4", archive])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("ADDRESS ") == true)
        let row = try #require(lines.dropFirst(2).first)
        let columns = row.split(separator: " ", omittingEmptySubsequences: true)
        #expect(columns.count == 3)
        #expect(columns[1] == "man?SECRET_TOKEN=hunter2?HOM", "4 bytes each side, NUL shown as ?")
        #expect(columns[2] == "1")
        // The address is where the match starts: the full hexdump has those bytes there.
        let address = try #require(UInt64(columns[0], radix: 16))
        let dump = try Fixtures.ferry(["memparse", "-p", "1", "-o", "/dev/stdout", archive])
        let rowStart = address & ~15
        let dumpRows = dump.stdout.split(separator: "\n").filter { $0.hasPrefix(String(format: "%016llx", rowStart)) }
        let dumpRow = try #require(dumpRows.first)
        let ascii = dumpRow.split(separator: "|")[1]
        let offset = Int(address - rowStart)
        #expect(ascii.dropFirst(offset).hasPrefix("SECRET_TOKEN=hunter2".prefix(16 - offset)))
    }

    @Test("a regular expression search and a search with no match")
    func searchRegex() throws {
        let archive = Fixtures.archive("podman-counter-none.tar")
        let found = try Fixtures.ferry(["memparse", "-p", "12", "-r", "hunter[0-9]+", archive])
        #expect(found.status == 0)
        #expect(found.stdout.split(separator: "\n").dropFirst(2).allSatisfy { $0.contains(" hunter2 ") })
        let none = try Fixtures.ferry(["memparse", "-p", "12", "-s", "no-such-string-in-memory", archive])
        #expect(none.status == 0)
        #expect(none.stdout == "No matches for pattern \"no-such-string-in-memory\" in the memory of PID 12\n")
    }

    @Test("an unknown PID is one line and exit status 1, and creates no file")
    func unknownPID() throws {
        let output = try Fixtures.temporaryDirectory().appendingPathComponent("dump.txt").path
        let archive = Fixtures.archive("podman-counter-none.tar")
        let result = try Fixtures.ferry(["memparse", "-p", "99", "-o", output, archive])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "ferry: \(archive): no process with PID 99 in the checkpoint [PROCESS_NOT_FOUND]\n")
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test("usage errors exit with 64")
    func usage() throws {
        let archive = Fixtures.archive("podman-counter-none.tar")
        #expect(try Fixtures.ferry(["memparse", "-s", "x", archive]).status == 64)
        #expect(try Fixtures.ferry(["memparse", "-p", "1", "-r", "(", archive]).status == 64)
    }
}
