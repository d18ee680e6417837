import CheckpointArchive
import FerryTestSupport
import FerryValidation
import Foundation
import Testing

/// Entries of the archive itself that no engine writes and an extraction would follow or create: links, devices,
/// FIFOs, and paths through a symlink. Each is an error finding, and never read as the engine file it names.
@Suite("archive shape: links and special files")
struct ArchiveShapeTests {
    @Test("a top-level symlink to /etc, a file written through it, and a hard link to /etc/shadow are errors")
    func linksAreErrors() throws {
        let bytes = HostileArchive.bytes(from: HostileArchive.podman) { tar in
            tar.symlink("etc", to: "/etc")
            tar.file("etc/cron.d/evil", "* * * * * root sh -c 'id'\n")
            tar.hardlink("shadow", to: "/etc/shadow")
        }
        let findings = try HostileArchive.findings(bytes)
        let codes = findings.map(\.code)
        #expect(codes.filter { $0 == FindingCode.archiveLinkEntry.rawValue }.count == 2, "\(codes)")
        #expect(findings.contains { $0.code == FindingCode.archivePathThroughSymlink.rawValue && $0.path == "etc/cron.d/evil" })
        #expect(findings.first { $0.path == "etc" }?.message.contains("/etc") == true)
        #expect(findings.filter { $0.code.hasPrefix("ARCHIVE_") && $0.code != "ARCHIVE_UNKNOWN_ENTRY" }.allSatisfy { $0.severity == .error })
    }

    @Test("a character device and a FIFO at the top level are errors")
    func specialFilesAreErrors() throws {
        let bytes = HostileArchive.bytes(from: HostileArchive.podman) { tar in
            tar.device("console", type: .characterDevice)
            tar.device("pipe", type: .fifo)
        }
        let findings = try HostileArchive.findings(bytes).filter { $0.code == FindingCode.archiveSpecialFile.rawValue }
        #expect(findings.compactMap(\.path).sorted() == ["console", "pipe"])
        #expect(findings.contains { $0.message.contains("character device") } && findings.contains { $0.message.contains("FIFO") })
    }

    @Test("a symlink named config.dump is never read as the container's configuration")
    func linkNamedLikeAnEngineFileIsNotRead() throws {
        let bytes = HostileArchive.bytes(from: HostileArchive.podman, removing: ["config.dump"]) { tar in
            tar.symlink("config.dump", to: "/etc/passwd")
        }
        #expect(throws: (any Error).self, "without a real config.dump the archive is not a checkpoint") {
            _ = try HostileArchive.manifest(bytes)
        }
    }

    @Test("the shipped real archives have no link or special entry at their level")
    func realArchivesAreClean() throws {
        for name in Fixtures.checkpointArchives {
            let manifest = try CheckpointReader.read(path: Fixtures.archive(name))
            #expect(manifest.archive.specialEntries.isEmpty, "\(name): \(manifest.archive.specialEntries)")
            #expect(manifest.archive.pathsThroughSymlinks.isEmpty, "\(name)")
        }
    }
}
