import FerryTestSupport
import Foundation
import Testing

/// A full disk, for real: the data directory on a 24 MiB tmpfs filled to the last byte. Uploads get 507, `/readyz`
/// says why, a delete still works (the space reserve is given up for the catalog's write), and uploads work again.
@Suite("disk full", .serialized)
struct DiskFullTests {
    /// A fresh tmpfs mount, or nil (said loudly) when this process may not mount one.
    static func smallDisk(megabytes: Int) throws -> URL? {
        let directory = try Fixtures.temporaryDirectory()
        let mount = try Fixtures.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", directory.path])
        guard mount.status == 0 else {
            FileHandle.standardError.write(Data("DISK-FULL TEST SKIPPED: cannot mount a tmpfs (\(mount.stderr.trimmingCharacters(in: .whitespacesAndNewlines)))\n".utf8))
            return nil
        }
        return directory
    }

    static func unmount(_ directory: URL) {
        _ = try? Fixtures.run("/usr/bin/umount", ["-l", directory.path])
    }

    @Test("fill the disk: 507 and LOW_DISK_SPACE; delete still works; uploads work again",
          .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func fullDiskCycle() throws {
        guard let disk = try Self.smallDisk(megabytes: 24) else { return }
        defer { Self.unmount(disk) }
        let server = try TestServer(reusing: disk, minimumFreeBytes: 2 << 20)
        let kept = try server.upload(Fixtures.archive("podman-counter-none.tar"))
        #expect(kept.status == 201)
        let big = try server.upload(Fixtures.archive("podman-web-tcp.tar"))
        let bigID = try #require((big.json["checkpoint"] as? [String: Any])?["id"] as? String)
        #expect(try server.request("GET", "/readyz").status == 200)
        #expect(FileManager.default.fileExists(atPath: server.dataDirectory.appendingPathComponent("data/reserve.bin").path))

        // Every last byte taken, by someone else's file.
        let filler = disk.appendingPathComponent("filler").path
        _ = try Fixtures.run("/usr/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
        _ = try Fixtures.run("/usr/bin/dd", ["if=/dev/zero", "of=\(filler)-tail", "bs=512"])

        let refused = try server.upload(Fixtures.archive("podman-inpod.tar"))
        #expect(refused.status == 507, "\(refused.text)")
        #expect(refused.errorCode == "STORAGE_FULL")
        let ready = try server.request("GET", "/readyz")
        #expect(ready.status == 503)
        #expect(ready.errorCode == "LOW_DISK_SPACE")
        #expect(try server.blobFiles().count == 2, "the refused upload left nothing")

        let deleted = try server.request("DELETE", "/api/v1/checkpoints/\(bigID)")
        #expect(deleted.status == 204, "a delete works on a full disk: \(deleted.text)")
        #expect(try server.request("GET", "/api/v1/checkpoints/\(bigID)").status == 404)

        let again = try server.upload(Fixtures.archive("podman-inpod.tar"))
        #expect(again.status == 201, "the freed space takes an upload again: \(again.text)")

        try FileManager.default.removeItem(atPath: filler)
        #expect(try server.request("GET", "/readyz").status == 200)
        let list = try server.request("GET", "/api/v1/checkpoints")
        #expect((list.json["items"] as? [Any])?.count == 2)
    }
}
