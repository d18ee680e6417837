import ArgumentParser
import CheckpointArchive
import Foundation

/// Opening archives named on the command line (`-` is standard input) and reporting failures the same way in
/// every command: one line on stderr, `ferry: ARCHIVE: message [CODE]`.
enum ArchiveArguments {
    static let standardInput = "-"

    static func read(_ path: String, options: CheckpointReadOptions) throws -> CheckpointManifest {
        do {
            if path == standardInput {
                // A pipe cannot be read twice: pages that arrive before their page map stay unread.
                return try CheckpointReader.read(
                    source: FileDescriptorSource(descriptor: 0, ownsDescriptor: false), options: options)
            }
            // A saved checkpoint image (oci-archive, docker-archive) is read through its one layer.
            return try CheckpointReader.readArchiveOrImage(path: path, options: options).manifest
        } catch let error as CheckpointError {
            throw ArchiveFailure(archive: path, error: error)
        }
    }

    /// Reads every archive before printing anything, so that a failure never leaves half a report on stdout.
    static func readAll(_ paths: [String], options: CheckpointReadOptions) throws -> [(String, CheckpointManifest)] {
        var manifests: [(String, CheckpointManifest)] = []
        var failed = false
        for path in paths {
            do {
                manifests.append((path, try read(path, options: options)))
            } catch let failure as ArchiveFailure {
                failure.report()
                failed = true
            }
        }
        if failed { throw ExitCode.failure }
        return manifests
    }

    static func displayName(_ path: String) -> String {
        path == standardInput ? "standard input" : (path as NSString).lastPathComponent
    }
}

/// An archive that could not be read, reported as one stderr line.
struct ArchiveFailure: Error {
    var archive: String
    var error: CheckpointError

    func report() {
        let name = archive == ArchiveArguments.standardInput ? "standard input" : archive
        let location = error.entry.map { "\(name): \($0)" } ?? name
        let line = "ferry: \(location): \(error.message) [\(error.code)]\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// Writes to stdout without holding a lock on `stdout` (not usable under strict concurrency).
enum Output {
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
