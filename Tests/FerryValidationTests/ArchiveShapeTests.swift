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

/// Bytes after the end of an archive or of its compressed stream: no engine reads them, so they cannot be
/// checked, yet the catalog stores and serves them. libarchive reports exactly where its stream ended.
@Suite("archive shape: data after the end")
struct TrailingDataTests {
    func findings(_ bytes: [UInt8]) throws -> (TrailingBytes, [Finding]) {
        let path = try Fixtures.write(bytes)
        let manifest = try CheckpointReader.read(path: path)
        return (manifest.archive.trailing, ArchiveValidator.findings(for: manifest).filter { $0.code == FindingCode.archiveTrailingData.rawValue })
    }

    func garbage(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) | 1 } }

    @Test("1 MiB and 100 bytes of garbage after a gzip stream, or after a plain tar, are errors with their size")
    func garbageIsFound() throws {
        let gzip = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive("podman-counter-gzip.tar.gz"))))
        let plain = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive("podman-counter-none.tar"))))
        for (base, name) in [(gzip, "gzip"), (plain, "tar")] {
            for size in [1 << 20, 100] {
                let (trailing, found) = try findings(base + garbage(size))
                #expect(trailing == TrailingBytes(count: Int64(size), allZero: false), "\(name) + \(size)")
                #expect(found.count == 1 && found.first?.severity == .error, "\(name) + \(size): \(found)")
                #expect(found.first?.message.hasPrefix("\(size) bytes follow the end") == true, "\(found)")
            }
        }
    }

    @Test("zeros after a plain tar are its record padding; after a gzip stream they are reported")
    func zeros() throws {
        let plain = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive("podman-counter-none.tar"))))
        let padded = try findings(plain + [UInt8](repeating: 0, count: 9216))
        #expect(padded.0 == TrailingBytes(count: 9216, allZero: true))
        #expect(padded.1.isEmpty)
        let gzip = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive("podman-counter-gzip.tar.gz"))))
        let zeros = try findings(gzip + [UInt8](repeating: 0, count: 4096))
        #expect(zeros.1.first?.message.contains("4096 bytes of zeros follow the end of the gzip stream") == true, "\(zeros.1)")
        #expect(zeros.1.first?.severity == .warning)
    }

    @Test("the shipped archives (a plain tar's zero padding aside), a two-member gzip and xz end where their streams end")
    func cleanArchivesEndExactly() throws {
        for name in Fixtures.checkpointArchives {
            let (trailing, found) = try findings(Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive(name)))))
            // The CRI-O archive's tar writer pads its last record with 4096 zeros; Podman's writes none.
            #expect(trailing.count == 0 || (trailing.allZero && name.hasSuffix(".tar")), "\(name): \(trailing)")
            #expect(found.isEmpty, "\(name): \(found)")
        }
        let tar = try Fixtures.uncompressedBytes(of: "podman-counter-gzip.tar.gz")
        let half = tar.count / 2
        let twoMembers = try Fixtures.compress(Array(tar[..<half]), with: "gzip") + Fixtures.compress(Array(tar[half...]), with: "gzip")
        #expect(try findings(twoMembers).0.count == 0)
        #expect(try findings(try Fixtures.compress(tar, with: "xz")).0.count == 0)
    }

    @Test("garbage after a zstd frame is refused outright: libarchive's zstd reader fails on it")
    func zstdRefusesGarbage() throws {
        let zstd = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive("podman-counter-zstd.tar.zst"))))
        #expect(throws: CheckpointError.self) { _ = try findings(zstd + garbage(100)) }
    }
}
