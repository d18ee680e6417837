import FerryTestSupport
import Foundation
import Testing

/// Validation through the service: findings stored at upload, shown by the API and the page; preflight; hostile
/// uploads neither write outside the data directory nor stop the service.
@Suite("validation API")
struct ValidationAPITests {
    static let counter: [UInt8] = (try? Fixtures.uncompressedBytes(of: "podman-counter-none.tar")) ?? []

    /// The counter archive with its rootfs diff replaced by one that escapes the root in every way.
    static func hostileRootfsArchive() throws -> String {
        var diff = TarBuilder()
        diff.file("../../../tmp/ferry-escaped-by-traversal", "x")
        diff.file("/tmp/ferry-escaped-by-absolute-path", "x")
        diff.symlink("etc/link", to: "../../../../etc/shadow")
        diff.device("dev/evil")
        var builder = TarBuilder()
        builder.copyEntries(of: counter) { $0 == "rootfs-diff.tar" }
        builder.file("rootfs-diff.tar", diff.finished())
        return try Fixtures.write(builder.finished(), name: "hostile.tar")
    }

    @Test("a clean archive is clean; a hostile one is catalogued with its error findings")
    func findingsAtUpload() throws {
        let server = try TestServer()
        let clean = try server.upload(Fixtures.archive("podman-counter-none.tar"))
        let cleanID = try #require((clean.json["checkpoint"] as? [String: Any])?["id"] as? String)
        let cleanFindings = try server.request("GET", "/api/v1/checkpoints/\(cleanID)/findings")
        #expect(cleanFindings.json["validation_state"] as? String != "errors")
        #expect(((cleanFindings.json["findings"] as? [[String: Any]]) ?? []).allSatisfy { $0["severity"] as? String != "error" })

        let hostile = try server.upload(try Self.hostileRootfsArchive())
        #expect(hostile.status == 201)
        let checkpoint = try #require(hostile.json["checkpoint"] as? [String: Any])
        #expect(checkpoint["validation_state"] as? String == "errors")
        let id = try #require(checkpoint["id"] as? String)
        let detail = try server.request("GET", "/api/v1/checkpoints/\(id)")
        let codes = Set(((detail.json["findings"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String })
        #expect(codes.isSuperset(of: ["INNER_ENTRY_PATH_TRAVERSAL", "INNER_ENTRY_ABSOLUTE_PATH", "INNER_ENTRY_SYMLINK_ESCAPES", "INNER_ENTRY_DEVICE_NODE"]), "\(codes)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/ferry-escaped-by-traversal"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/ferry-escaped-by-absolute-path"))

        let errors = try server.request("GET", "/api/v1/checkpoints?validation=errors")
        #expect((errors.json["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id])
        let page = try server.request("GET", "/checkpoints/\(id)")
        #expect(page.text.contains("INNER_ENTRY_PATH_TRAVERSAL"))
        #expect(page.text.contains("badge bad"))
    }

    @Test("an upload with 1 MiB of garbage after its gzip stream is catalogued whole, with a trailing-data error")
    func trailingDataAtUpload() throws {
        let server = try TestServer()
        let gzip = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive("podman-counter-gzip.tar.gz"))))
        let bytes = gzip + (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) | 0x80 }
        let upload = try server.upload(try Fixtures.write(bytes, name: "trailing.tar.gz"))
        #expect(upload.status == 201, "\(upload.text)")
        let checkpoint = try #require(upload.json["checkpoint"] as? [String: Any])
        #expect((checkpoint["size"] as? NSNumber)?.intValue == bytes.count)
        let id = try #require(checkpoint["id"] as? String)
        let findings = try server.request("GET", "/api/v1/checkpoints/\(id)/findings")
        let trailing = ((findings.json["findings"] as? [[String: Any]]) ?? []).filter { $0["code"] as? String == "ARCHIVE_TRAILING_DATA" }
        #expect(trailing.count == 1, "\(findings.text)")
        #expect(trailing.first?["severity"] as? String == "error")
        #expect((trailing.first?["message"] as? String)?.hasPrefix("1048576 bytes follow the end of the gzip stream") == true)
    }

    @Test("preflight names each incompatibility and the option that waives it")
    func preflight() throws {
        let server = try TestServer()
        let upload = try server.upload(Fixtures.archive("podman-staticip-leave-running.tar"))
        let id = try #require((upload.json["checkpoint"] as? [String: Any])?["id"] as? String)
        func check(_ body: String) throws -> (Bool?, Set<String>, [[String: Any]]) {
            let file = try Fixtures.write(Array(body.utf8), name: "preflight.json")
            let response = try server.request("POST", "/api/v1/checkpoints/\(id)/preflight", upload: file,
                                              headers: ["Content-Type: application/json"])
            #expect(response.status == 200, "\(response.text)")
            let findings = response.json["findings"] as? [[String: Any]] ?? []
            return (response.json["restorable"] as? Bool, Set(findings.compactMap { $0["code"] as? String }), findings)
        }
        let compatible = try check(#"{"target": {"architecture": "amd64", "runtimes": ["runc", "crun"], "networks": [{"name": "ferrynet", "subnet": "10.89.0.0/24"}], "ips_in_use": ["10.89.0.7"]}}"#)
        #expect(compatible.0 == true, "\(compatible.2)")

        let clash = try check(#"{"target": {"architecture": "aarch64", "runtimes": ["crun"], "ips_in_use": ["10.89.0.42"], "container_names": ["staticip"]}}"#)
        #expect(clash.0 == false)
        #expect(clash.2.contains { ($0["waiver"] as? String)?.contains("--ignore-static-ip") == true }, "\(clash.2)")
        #expect(clash.2.contains { ($0["waiver"] as? String)?.contains("--name") == true }, "\(clash.2)")
        #expect(clash.1.count >= 4, "architecture, runtime, IP and name: \(clash.1)")

        let waived = try check(#"{"target": {"ips_in_use": ["10.89.0.42"], "container_names": ["staticip"]}, "options": {"name": "staticip-2", "ignore_static_ip": true}}"#)
        #expect(waived.0 == true, "\(waived.2)")

        // A registered node's reported facts serve as the target.
        let heartbeat = try Fixtures.write(Array(#"{"name": "node-x", "agent_url": "http://127.0.0.1:9", "facts": {"architecture": "aarch64"}}"#.utf8))
        #expect(try server.request("POST", "/api/v1/nodes/node-x/heartbeat", upload: heartbeat, headers: ["Content-Type: application/json"]).status == 200)
        let byNode = try check(#"{"node": "node-x"}"#)
        #expect(byNode.0 == false)
        #expect(byNode.1.contains("ARCHITECTURE_MISMATCH"), "\(byNode.1)")

        let bad = try server.request("POST", "/api/v1/checkpoints/\(id)/preflight", upload: try Fixtures.write(Array("{}".utf8)),
                                     headers: ["Content-Type: application/json"])
        #expect(bad.status == 400)
        #expect(bad.errorCode == "INVALID_PREFLIGHT")
    }

    @Test("a loop of hostile uploads neither stops the service nor leaves files behind")
    func hostileLoop() throws {
        let server = try TestServer(maximumUploadSize: 64 << 20)
        var hostile: [String] = []
        hostile.append(try Self.hostileRootfsArchive())
        // A zstd bomb: a small archive whose one entry is 2 GiB of zeros.
        let bombPath = try Fixtures.temporaryDirectory().appendingPathComponent("bomb.tar.zst").path
        let script = """
            import io, tarfile, subprocess, sys
            header = tarfile.TarInfo("checkpoint/pages-1.img"); header.size = 2 << 30
            zstd = subprocess.Popen(["zstd", "-q", "-19", "-o", sys.argv[1]], stdin=subprocess.PIPE)
            zstd.stdin.write(header.tobuf(format=tarfile.GNU_FORMAT))
            zero = bytes(1 << 20)
            for _ in range(2048): zstd.stdin.write(zero)
            zstd.stdin.write(bytes(1024)); zstd.stdin.close(); zstd.wait()
            """
        let made = try Fixtures.run("/usr/bin/env", ["python3", "-c", script, bombPath])
        #expect(made.status == 0, "\(made.stderr)")
        hostile.append(bombPath)
        var duplicate = TarBuilder()
        duplicate.copyEntries(of: Self.counter)
        duplicate.file("config.dump", "{}")
        hostile.append(try Fixtures.write(duplicate.finished(), name: "duplicate.tar"))
        var traversal = TarBuilder()
        traversal.copyEntries(of: Self.counter)
        traversal.file("../../outside-the-data-dir", "x")
        hostile.append(try Fixtures.write(traversal.finished(), name: "traversal.tar"))
        hostile.append(try Fixtures.write(Array(Self.counter.prefix(70_000)), name: "truncated.tar"))

        for round in 0..<3 {
            for path in hostile {
                let response = try server.upload(path)
                #expect([201, 200, 413, 422].contains(response.status), "round \(round) \(path): \(response.status) \(response.text)")
            }
        }
        #expect(try server.upload(hostile[1]).errorCode == "DECOMPRESSION_BOMB")
        #expect(try server.upload(Fixtures.archive("podman-web-tcp.tar")).status == 201, "still serving")
        #expect(try FileManager.default.contentsOfDirectory(atPath: server.temporaryDirectory.path).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: server.dataDirectory.appendingPathComponent("outside-the-data-dir").path))
        #expect(!FileManager.default.fileExists(atPath: server.dataDirectory.deletingLastPathComponent().appendingPathComponent("outside-the-data-dir").path))
    }
}
