public import Foundation

/// Where the shared real archives are, temporary files, and running the built `ferry` binary.
public enum Fixtures {
    /// The repository root, found from this file's path.
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/testdata/archives` beside the repository (override with `FERRY_TESTDATA`).
    public static let archivesDirectory: URL = {
        if let override = ProcessInfo.processInfo.environment["FERRY_TESTDATA"] {
            return URL(fileURLWithPath: override)
        }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/testdata/archives")
    }()

    /// The real checkpoint archives (not the OCI image), each with the checkpointctl JSON beside it.
    public static let checkpointArchives: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: archivesDirectory.path)) ?? []
        return names.filter { name in
            (name.hasSuffix(".tar") || name.hasSuffix(".tar.gz") || name.hasSuffix(".tar.zst")) && !name.contains(".oci.")
        }.sorted()
    }()

    public static func archive(_ name: String) -> String {
        archivesDirectory.appendingPathComponent(name).path
    }

    /// The checkpointctl output beside an archive: `NAME.inspect.json` for `NAME.tar[.gz|.zst]`.
    public static func reference(for archive: String, suffix: String) -> URL {
        var stem = archive
        for ending in [".tar.zst", ".tar.gz", ".tar"] where stem.hasSuffix(ending) {
            stem = String(stem.dropLast(ending.count))
            break
        }
        return archivesDirectory.appendingPathComponent(stem + suffix)
    }

    /// A fresh directory under the system temporary directory, removed by the caller or left for the OS.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes bytes to a new temporary file and returns its path.
    public static func write(_ bytes: [UInt8], name: String = "archive.tar") throws -> String {
        let url = try temporaryDirectory().appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Compresses bytes with a command-line compressor (`gzip`, `zstd`, `xz`, `bzip2`) reading stdin.
    public static func compress(_ bytes: [UInt8], with tool: String) throws -> [UInt8] {
        let result = try run("/usr/bin/env", [tool, "-c"], stdin: bytes)
        guard result.status == 0 else { throw FixtureError("\(tool) failed: \(result.stderr)") }
        return Array(result.stdoutData)
    }

    /// The uncompressed bytes of a shipped archive.
    public static func uncompressedBytes(of name: String) throws -> [UInt8] {
        let path = archive(name)
        if name.hasSuffix(".tar") { return Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        let tool = name.hasSuffix(".zst") ? "zstd" : "gzip"
        let result = try run("/usr/bin/env", [tool, "-dc", path])
        guard result.status == 0 else { throw FixtureError("\(tool) -dc failed: \(result.stderr)") }
        return Array(result.stdoutData)
    }

    /// The `ferry` executable next to the test bundle (`swift build --build-tests` builds it).
    public static var ferryBinary: String {
        if let override = ProcessInfo.processInfo.environment["FERRY_BINARY"] { return override }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // swift-testing on Linux runs `<bin>/FerryPackageTests.xctest`; XCTest bundles nest one level deeper.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("ferry")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
            directory = directory.deletingLastPathComponent()
        }
        return repositoryRoot.appendingPathComponent(".build/debug/ferry").path
    }

    /// Runs `ferry` with arguments, optionally feeding stdin.
    public static func ferry(_ arguments: [String], stdin: [UInt8]? = nil) throws -> ProcessResult {
        try run(ferryBinary, arguments, stdin: stdin)
    }

    /// Runs a program to completion with posix_spawn, stdin, stdout and stderr going through files, and waits
    /// with waitpid. No pipes and no dispatch threads: a test blocked here holds one thread and nothing else, so
    /// tests running in parallel on two cores cannot starve each other (Foundation's Process with pipes did).
    public static func run(_ executable: String, _ arguments: [String], stdin: [UInt8]? = nil,
                           environment: [String: String]? = nil) throws -> ProcessResult {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let stdinPath = directory.appendingPathComponent("stdin").path
        let stdoutPath = directory.appendingPathComponent("stdout").path
        let stderrPath = directory.appendingPathComponent("stderr").path
        try Data(stdin ?? []).write(to: URL(fileURLWithPath: stdinPath))
        let child = try spawn(executable, arguments, stdin: stdin == nil ? "/dev/null" : stdinPath,
                              stdout: stdoutPath, stderr: stderrPath, environment: environment)
        let status = wait(child)
        return ProcessResult(
            status: status,
            stdoutData: (try? Data(contentsOf: URL(fileURLWithPath: stdoutPath))) ?? Data(),
            stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
    }

    /// Writes an executable script (0755) through a close-on-exec descriptor. A writable descriptor that a child
    /// forked by another test thread inherits would make exec of the script fail with ETXTBSY for as long as that
    /// child lives (Foundation's file writing does not set close-on-exec; an agent or service spawned meanwhile
    /// keeps it for good).
    public static func writeScript(_ text: String, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw FixtureError("cannot create \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { throw FixtureError("cannot write \(url.path)") }
            offset += written
        }
        guard fchmod(fd, 0o755) == 0 else { throw FixtureError("cannot chmod \(url.path)") }
    }

    /// Starts a program with its standard streams redirected to files; returns its pid.
    public static func spawn(_ executable: String, _ arguments: [String], stdin: String = "/dev/null",
                             stdout: String, stderr: String, environment: [String: String]? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let variables = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { variables.forEach { free($0) } }
        var child: pid_t = 0
        var status = posix_spawn(&child, executable, &actions, nil, argv, variables)
        // A script written a moment ago can be held open for writing by a child another test thread forked
        // meanwhile (until that child execs): exec fails with ETXTBSY for that moment, so try again briefly.
        var attempts = 0
        while status == ETXTBSY && attempts < 100 {
            attempts += 1
            usleep(10_000)
            status = posix_spawn(&child, executable, &actions, nil, argv, variables)
        }
        guard status == 0 else { throw FixtureError("cannot start \(executable): \(String(cString: strerror(status)))") }
        return child
    }

    /// Waits for a spawned program; returns its exit status (128 + signal number if a signal ended it).
    public static func wait(_ child: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}

/// What a finished process left behind.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdoutData: Data
    public var stderr: String
    public var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
}

public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
