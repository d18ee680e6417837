import ArgumentParser
import FerryCatalog
import FerryServer
import Foundation

/// Runs work on a data directory (no service), turning a catalog or store error into one stderr line with its
/// code and the exit status `failure`.
func runOnStore<T>(failure: Int32 = 1, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CatalogError {
        FileHandle.standardError.write(Data("ferry: \(error.message) [\(error.code)]\n".utf8))
        throw ExitCode(failure)
    }
}

/// `ferry fsck`: the blob store checked against the catalog, without a running service.
struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Check a data directory: blobs no catalog row names, and rows whose blob is gone.",
        discussion: """
            Reports without changing anything (a running service may be using the directory). With --repair, which \
            needs the service stopped, orphan blobs are removed and rows without a blob are marked, as `ferry \
            serve` does at start-up. Exit status: 0 when the store is consistent (or was repaired), 1 when problems \
            were found and not repaired, 2 when the directory cannot be checked.
            """
    )

    @Option(help: "Data directory (default ./ferry-data).") var dataDir: String = "ferry-data"
    @Option(help: "Folder of the NNNN_name.sql migrations (default: the ones built in).") var migrationsDir: String?
    @Flag(help: "Remove orphan blobs and mark rows without a blob (the service must be stopped).") var repair = false
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        let report = try runOnStore(failure: 2) { () throws -> StoreConsistency.Report in
            guard FileManager.default.fileExists(atPath: dataDir + "/catalog.sqlite") else {
                throw CatalogError(.storageFailed, "no catalog at \(dataDir)/catalog.sqlite")
            }
            let lock = repair ? try DataDirectoryLock(dataDir) : nil
            defer { lock?.release() }
            guard let migrations = migrationsDir ?? Catalog.bundledMigrationsDirectory else {
                throw CatalogError(.storageFailed, "no migrations directory: give --migrations-dir")
            }
            let catalog = try Catalog(path: dataDir + "/catalog.sqlite", migrationsDirectory: migrations)
            let blobs = try BlobStore(dataDirectory: dataDir, removingLeftovers: repair)
            return try StoreConsistency.check(catalog: catalog, blobs: blobs, repair: repair)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            Output.write(String(decoding: try encoder.encode(report), as: UTF8.self) + "\n")
        } else {
            Output.write("\(report.rows) rows, \(report.blobs) blobs\n")
            for digest in report.orphanBlobs { Output.write("orphan blob \(digest)\(repair ? " (removed)" : "")\n") }
            for id in report.rowsWithoutBlob { Output.write("row without blob \(id)\(repair ? " (marked)" : "")\n") }
            if report.isClean { Output.write("consistent\n") }
        }
        if !report.isClean && !repair { throw ExitCode.failure }
    }
}
