import FerryTestSupport
import Foundation
import Testing

/// `ferry agent --collect DIR`: archives that appear in the directory (as the kubelet leaves them) are catalogued
/// once each, from the agent's node, whatever the order, pace and interruptions. A real service and a real agent
/// process; the archives are the shipped real ones.
@Suite("checkpoint collector", .serialized)
final class CollectorTests {
    let server: TestServer
    let directory: URL
    let inbox: URL
    var agent: pid_t?

    init() throws {
        server = try TestServer(tokens: true)
        directory = try Fixtures.temporaryDirectory()
        inbox = directory.appendingPathComponent("checkpoints")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
    }

    deinit {
        if let agent { kill(agent, SIGKILL); _ = Fixtures.wait(agent) }
        try? FileManager.default.removeItem(at: directory)
    }

    func startAgent(afterUpload: String = "keep") throws {
        let port = try Fixtures.freeLoopbackPort()
        agent = try Fixtures.spawn(Fixtures.ferryBinary, [
            "agent", "--server", server.base, "--node", "node-a", "--token", TestServer.nodeToken,
            "--listen", "127.0.0.1:\(port)", "--driver", "command", "--restore-command", "/bin/true {archive}",
            "--work-dir", directory.appendingPathComponent("agent").path, "--heartbeat", "1",
            "--collect", inbox.path, "--after-upload", afterUpload,
        ], stdout: directory.appendingPathComponent("agent.out").path,
           stderr: directory.appendingPathComponent("agent-\(Date().timeIntervalSince1970).log").path)
    }

    func killAgent() {
        if let agent { kill(agent, SIGKILL); _ = Fixtures.wait(agent) }
        agent = nil
    }

    func catalogued() throws -> [[String: Any]] {
        let list = try server.request("GET", "/api/v1/checkpoints?limit=100", token: TestServer.readToken)
        return list.json["items"] as? [[String: Any]] ?? []
    }

    func waitForCatalog(_ ids: Set<String>, timeout: Double = 30) throws {
        try LabCluster.waitUntil("the catalog to hold \(ids.count) collected checkpoints", timeout: timeout, interval: 0.2) {
            Set(try self.catalogued().compactMap { $0["id"] as? String }).isSuperset(of: ids)
        }
    }

    func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive(name)))) }

    func write(_ bytes: some Collection<UInt8>, to name: String, appending: Bool = false) throws {
        try Self.write(bytes, to: inbox.appendingPathComponent(name).path, appending: appending)
    }

    static func write(_ bytes: some Collection<UInt8>, to path: String, appending: Bool) throws {
        if !appending { FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
    }

    func digest(_ bytes: [UInt8]) throws -> String { try sha256(ofFile: try Fixtures.write(bytes, name: "digest")) }

    @Test("archives present at start, written slowly, truncated then completed, several at once, and one gone before it was whole: each catalogued once from the node, across an agent restart")
    func collectsEachOnce() throws {
        let crio = try bytes("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")
        let plain = try bytes("podman-counter-none.tar")
        let zstd = try bytes("podman-counter-zstd.tar.zst")
        let gzip = try bytes("podman-counter-gzip.tar.gz")
        let multinet = try bytes("podman-multinet.tar")
        let inPod = try bytes("podman-inpod.tar")
        // The kubelet's names say which container; Ferry reads that from the archive, so names here are arbitrary.
        try write(crio, to: "checkpoint-counter_shop-counter-2026-11-25T05:00:00Z.tar")
        try startAgent()

        // Written slowly, 32 KiB at a time over about 3 s.
        let slowPath = inbox.appendingPathComponent("slow.tar").path
        let slow = Thread {
            var offset = 0
            while offset < plain.count {
                try? Self.write(plain[offset..<min(offset + 32 << 10, plain.count)], to: slowPath, appending: offset > 0)
                offset += 32 << 10
                Thread.sleep(forTimeInterval: 0.35)
            }
        }
        slow.start()
        // Truncated for longer than the settling time, then completed.
        try write(zstd.prefix(zstd.count / 2), to: "truncated.tar.zst")
        // Gone before it was whole.
        try write(gzip.prefix(gzip.count / 3), to: "vanishing.tar.gz")
        Thread.sleep(forTimeInterval: 4)
        try FileManager.default.removeItem(at: inbox.appendingPathComponent("vanishing.tar.gz"))
        try write(zstd.dropFirst(zstd.count / 2), to: "truncated.tar.zst", appending: true)
        try waitForCatalog([try digest(crio), try digest(plain), try digest(zstd)])

        // A restart changes nothing: the same files are not uploaded again, and new ones are.
        killAgent()
        try startAgent()
        try write(multinet, to: "several-1.tar")
        try write(inPod, to: "several-2.tar")
        try write(gzip, to: "several-3.tar.gz")
        let expected = Set([crio, plain, zstd, multinet, inPod, gzip].map { try! digest($0) })
        try waitForCatalog(expected)
        Thread.sleep(forTimeInterval: 3)  // a few more rounds: nothing more may arrive

        let items = try catalogued()
        #expect(items.count == expected.count, "\(items.map { $0["id"] as? String ?? "" })")
        #expect(Set(items.compactMap { $0["id"] as? String }) == expected)
        #expect(items.allSatisfy { $0["source_node"] as? String == "node-a" })
        let uploads = server.log.filter { $0.contains("POST /api/v1/checkpoints") && $0.contains(" 201 ") }
        #expect(uploads.count == expected.count, "each uploaded once: \(uploads)")
        #expect(FileManager.default.fileExists(atPath: inbox.appendingPathComponent("slow.tar").path), "kept")
        #expect((try FileManager.default.contentsOfDirectory(atPath: server.temporaryDirectory.path)).filter { $0.hasPrefix("upload-") }.isEmpty)
    }

    @Test("with --after-upload remove a file goes once the catalog has it; a file that is not a checkpoint stays and is not retried")
    func removesAfterUpload() throws {
        try startAgent(afterUpload: "remove")
        let crio = try bytes("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")
        try write(crio, to: "checkpoint.tar")
        var junk = TarBuilder()
        junk.file("hello.txt", "not a checkpoint\n")
        let junkBytes = junk.finished()
        try write(junkBytes, to: "junk.tar")
        try waitForCatalog([try digest(crio)])
        let collectedPath = inbox.appendingPathComponent("checkpoint.tar").path
        try LabCluster.waitUntil("the collected file to be removed", timeout: 15) {
            !FileManager.default.fileExists(atPath: collectedPath)
        }
        Thread.sleep(forTimeInterval: 4)
        #expect(FileManager.default.fileExists(atPath: inbox.appendingPathComponent("junk.tar").path))
        #expect(try catalogued().count == 1)
    }
}
