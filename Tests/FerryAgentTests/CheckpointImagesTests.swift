@testable import FerryAgent
import FerryTestSupport
import Foundation
import Testing

/// The criu driver unpacks only the `checkpoint/` images, and refuses names that could escape.
@Suite("criu image extraction")
struct CheckpointImagesTests {
    @Test("only the regular files directly under checkpoint/ of a real archive are written, byte for byte")
    func realArchive() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let images = directory.appendingPathComponent("images").path
        let archive = Fixtures.archive("podman-counter-zstd.tar.zst")
        let written = try CheckpointImages.extract(archive: archive, into: images)
        let listing = try Fixtures.run("/usr/bin/tar", ["-tf", archive])
        let expected = listing.stdout.split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("checkpoint/") && !$0.hasSuffix("/") }.map { String($0.dropFirst("checkpoint/".count)) }
        #expect(!expected.isEmpty)
        #expect(Set(written) == Set(expected))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: images)) == Set(expected))
        #expect(!FileManager.default.fileExists(atPath: images + "/config.dump"))
        let mode = try FileManager.default.attributesOfItem(atPath: images)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        // The bytes are the archive's.
        let inventory = try Fixtures.run("/usr/bin/tar", ["-xOf", archive, "checkpoint/inventory.img"]).stdoutData
        #expect(try Data(contentsOf: URL(fileURLWithPath: images + "/inventory.img")) == inventory)
    }

    @Test("entries outside checkpoint/, in subdirectories, and links are skipped")
    func skipsTheRest() throws {
        var tar = TarBuilder()
        tar.directory("checkpoint")
        tar.file("checkpoint/inventory.img", "inv")
        tar.file("checkpoint/core-1.img", "core")
        tar.file("config.dump", "{}")
        tar.file("checkpoint/sub/x.img", "nested")
        tar.symlink("checkpoint/parent", to: "../pre-checkpoint")
        tar.hardlink("checkpoint/hard.img", to: "config.dump")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = directory.appendingPathComponent("a.tar")
        try Data(tar.finished()).write(to: archive)
        let images = directory.appendingPathComponent("images").path
        #expect(Set(try CheckpointImages.extract(archive: archive.path, into: images)) == ["inventory.img", "core-1.img"])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: images)) == ["inventory.img", "core-1.img"])
        #expect(try String(contentsOfFile: images + "/core-1.img", encoding: .utf8) == "core")
    }

    @Test("checkpoint/../evil and checkpoint/x/../../y refuse the whole archive with UNSAFE_ARCHIVE")
    func unsafeNames() throws {
        for hostile in ["checkpoint/../evil", "checkpoint/x/../../y", "checkpoint/./z", "checkpoint/.."] {
            let directory = try Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let jobs = directory.appendingPathComponent("jobs/j1")
            try FileManager.default.createDirectory(at: jobs, withIntermediateDirectories: true)
            var tar = TarBuilder()
            tar.file("checkpoint/inventory.img", "inv")
            tar.file(hostile, "owned")
            let archive = directory.appendingPathComponent("a.tar")
            try Data(tar.finished()).write(to: archive)
            let images = jobs.appendingPathComponent("images").path
            #expect(throws: AgentError(.unsafeArchive, "the archive has an unsafe entry name under checkpoint/; nothing was restored"),
                    "\(hostile)") {
                try CheckpointImages.extract(archive: archive.path, into: images)
            }
            #expect(!FileManager.default.fileExists(atPath: images), "the images directory is removed")
            for escaped in ["evil", "y", "jobs/evil", "jobs/y", "jobs/j1/evil", "jobs/j1/y"] {
                #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(escaped).path), "\(hostile) → \(escaped)")
            }
        }
    }

    @Test("the criu driver's restore preparation unpacks into the job's images directory")
    func criuPrepare() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let job = JobContext(id: "j", directory: directory.path)
        try CRIUDriver().prepareRestore(archive: Fixtures.archive("podman-counter-none.tar"), job: job)
        #expect(FileManager.default.fileExists(atPath: directory.path + "/images/inventory.img"))
    }

    @Test("a file that is not an archive fails the restore, not the agent")
    func notAnArchive() throws {
        let path = try Fixtures.write(Array("hello".utf8), name: "x.tar")
        let images = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("images").path
        #expect(throws: AgentError.self) { try CheckpointImages.extract(archive: path, into: images) }
    }
}
