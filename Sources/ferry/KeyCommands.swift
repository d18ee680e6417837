import ArgumentParser
import FerryCatalog
import Foundation

/// `ferry keygen -o FILE`: a new encryption key for `ferry serve --encryption-key`.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a new 256-bit encryption key for ferry serve --encryption-key.",
        discussion: """
            The file is created with mode 0600 and never overwritten (ENCRYPTION_KEY_EXISTS). Keep a copy apart \
            from the data directory: without the key its encrypted blobs cannot be read by anyone, Ferry included.
            """
    )

    @Option(name: [.short, .customLong("output")], help: "The key file to create.") var output: String

    func run() throws {
        let key = EncryptionKey.generate()
        try runOnStore { try key.write(toNewFile: output) }
        Output.write("wrote key \(key.id) to \(output)\n")
    }
}

/// `ferry rekey`: rotates a data directory's key-encryption key, offline.
struct RekeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Re-wrap every data key of a data directory from one encryption key to another.",
        discussion: """
            Needs the service stopped (it takes the data directory's lock). Each blob's wrapped key file (76 bytes) \
            is replaced by a synced rename; no blob is rewritten. Interrupted (even by kill -9), every blob stays \
            readable with one of the two keys: run the same command again to finish, then start ferry serve with \
            the new key. Prints {"rewrapped": N, "already_new": M} with --json.
            """
    )

    @Option(help: "Data directory (default ./ferry-data).") var dataDir: String = "ferry-data"
    @Option(help: "The key the data keys are wrapped under now.") var oldKey: String
    @Option(help: "The key to wrap them under (ferry keygen -o FILE).") var newKey: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let rotation = try runOnStore { () throws -> StoreKeys.Rotation in
            let old = try EncryptionKey.load(path: oldKey)
            let new = try EncryptionKey.load(path: newKey)
            let lock = try DataDirectoryLock(dataDir)
            defer { lock.release() }
            // Test hook: a real kill -9 part-way through, to show that an interrupted rotation loses nothing.
            let killAfter = ProcessInfo.processInfo.environment["FERRY_TEST_REKEY_KILL_AFTER"].flatMap(Int.init)
            return try StoreKeys.rotate(dataDirectory: dataDir, from: old, to: new) { count in
                if count == killAfter { kill(getpid(), SIGKILL) }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            Output.write(String(decoding: try encoder.encode(rotation), as: UTF8.self) + "\n")
        } else {
            Output.write("re-wrapped \(rotation.rewrapped) key file(s); \(rotation.alreadyNew) were under the new key already\n")
        }
    }
}
