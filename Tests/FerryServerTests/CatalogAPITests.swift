import FerryTestSupport
import Foundation
import Testing

/// The catalog API over real loopback HTTP, a real SQLite file and the real shipped archives.
@Suite("catalog API", .serialized)
struct CatalogAPITests {
    @Test("every shipped archive uploads, is catalogued, inspected and downloads byte for byte")
    func uploadEveryArchive() throws {
        let server = try TestServer()
        for name in Fixtures.checkpointArchives {
            let path = Fixtures.archive(name)
            let response = try server.upload(path, query: "?node=node-a&labels=team=payments,tier=gold")
            #expect(response.status == 201, "\(name): \(response.text)")
            let checkpoint = try #require(response.json["checkpoint"] as? [String: Any])
            let digest = try sha256(ofFile: path)
            #expect(checkpoint["id"] as? String == digest)
            #expect(checkpoint["digest"] as? String == "sha256:\(digest)")
            #expect(response.headers["location"] == "/api/v1/checkpoints/\(digest)")
            #expect(checkpoint["source_node"] as? String == "node-a")
            #expect(checkpoint["labels"] as? [String: String] == ["team": "payments", "tier": "gold"])

            // The catalog row carries the same facts as checkpointctl's inspection.
            let reference = try #require(try JSONSerialization.jsonObject(
                with: Data(contentsOf: Fixtures.reference(for: name, suffix: ".inspect.json"))) as? [[String: Any]]).first!
            #expect((checkpoint["container"] as? [String: Any])?["name"] as? String == reference["container_name"] as? String)
            #expect((checkpoint["container"] as? [String: Any])?["id"] as? String == reference["id"] as? String)
            #expect(checkpoint["engine"] as? String == reference["engine"] as? String)
            #expect(checkpoint["image"] as? String == reference["image"] as? String)
            #expect(checkpoint["runtime"] as? String == reference["runtime"] as? String)
            #expect(checkpoint["created"] as? String == reference["created"] as? String)
            let sizes = reference["checkpoint_size"] as? [String: Any] ?? [:]
            #expect(checkpoint["checkpoint_size"] as? Int == sizes["total_size"] as? Int)
            #expect(checkpoint["memory_pages_size"] as? Int == sizes["memory_pages_size"] as? Int)
            if let ip = reference["ip"] as? String {
                #expect(checkpoint["ip_addresses"] as? [String] == ip.components(separatedBy: ", "))
            }
            let metadata = reference["metadata"] as? [String: Any] ?? [:]
            #expect((checkpoint["pod"] as? [String: Any])?["namespace"] as? String == metadata["kubernetes_namespace"] as? String)
            #expect(checkpoint["process_count"] as? Int ?? 0 >= 1)

            // Details: the stored inspection is `ferry inspect --all` of the archive.
            let detail = try server.request("GET", "/api/v1/checkpoints/\(digest)")
            #expect(detail.status == 200)
            let inspection = try #require(detail.json["inspection"] as? [String: Any])
            let cli = try Fixtures.ferry(["inspect", "--all", "--format", "json", path])
            let local = try #require(try JSONSerialization.jsonObject(with: cli.stdoutData) as? [[String: Any]]).first!
            #expect(NSDictionary(dictionary: inspection) == NSDictionary(dictionary: local))

            // Download: the same bytes, with the digest in ETag and Docker-Content-Digest.
            let out = try Fixtures.temporaryDirectory().appendingPathComponent("download").path
            let download = try server.request("GET", "/api/v1/checkpoints/\(digest)/archive", output: out)
            #expect(download.status == 200)
            #expect(try sha256(ofFile: out) == digest)
            #expect(download.headers["etag"] == "\"sha256:\(digest)\"")
            #expect(download.headers["docker-content-digest"] == "sha256:\(digest)")
            #expect(download.headers["content-length"] == String(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int))
        }
        let list = try server.request("GET", "/api/v1/checkpoints?limit=100")
        #expect(list.json["total"] as? Int == Fixtures.checkpointArchives.count)
        #expect(try server.blobFiles().count == Fixtures.checkpointArchives.count)
    }

    @Test("Range, HEAD, If-None-Match and 416 on the archive")
    func ranges() throws {
        let server = try TestServer()
        let path = Fixtures.archive("podman-counter-none.tar")
        let id = try #require((server.upload(path).json["checkpoint"] as? [String: Any])?["id"] as? String)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))

        let partial = try server.request("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=100-1123"])
        #expect(partial.status == 206)
        #expect(partial.body == bytes[100...1123])
        #expect(partial.headers["content-range"] == "bytes 100-1123/\(bytes.count)")

        let suffix = try server.request("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=-10"])
        #expect(suffix.status == 206)
        #expect(suffix.body == bytes.suffix(10))

        let beyond = try server.request("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=\(bytes.count)-"])
        #expect(beyond.status == 416)
        #expect(beyond.headers["content-range"] == "bytes */\(bytes.count)")

        let head = try server.request("HEAD", "/api/v1/checkpoints/\(id)/archive")
        #expect(head.status == 200)
        #expect(head.headers["content-length"] == String(bytes.count))
        #expect(head.headers["docker-content-digest"] == "sha256:\(id)")

        let cached = try server.request("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["If-None-Match: \"sha256:\(id)\""])
        #expect(cached.status == 304)
        #expect(cached.body.isEmpty)

        // A short ID prefix works for downloads too.
        let byPrefix = try server.request("HEAD", "/api/v1/checkpoints/\(id.prefix(12))/archive")
        #expect(byPrefix.status == 200)
    }

    @Test("the same archive uploaded twice is stored once")
    func dedupe() throws {
        let server = try TestServer()
        let path = Fixtures.archive("podman-counter-zstd.tar.zst")
        let first = try server.upload(path)
        let second = try server.upload(path)
        #expect(first.status == 201)
        #expect(second.status == 200)
        #expect(second.json["created"] as? Bool == false)
        #expect((first.json["checkpoint"] as? [String: Any])?["id"] as? String == (second.json["checkpoint"] as? [String: Any])?["id"] as? String)
        #expect(try server.blobFiles().count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: server.temporaryDirectory.path).isEmpty)
    }

    @Test("archives that are not checkpoints are refused with the reader's code and leave nothing")
    func refusals() throws {
        let server = try TestServer(maximumUploadSize: 300_000)
        var builder = TarBuilder()
        builder.file("hello.txt", "not a checkpoint")
        let notCheckpoint = try Fixtures.write(builder.finished())
        let refused = try server.upload(notCheckpoint)
        #expect(refused.status == 422)
        #expect(refused.errorCode == "NOT_A_CHECKPOINT")
        #expect((refused.json["error"] as? [String: Any])?["message"] as? String == "checkpoint directory is missing in the archive")

        let garbage = try Fixtures.write((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        #expect(try server.upload(garbage).errorCode == "ARCHIVE_CORRUPT")

        let counter = try Fixtures.uncompressedBytes(of: "podman-counter-none.tar")
        let truncated = try Fixtures.write(Array(counter.prefix(100_000)))
        #expect(try server.upload(truncated).errorCode == "ARCHIVE_TRUNCATED")

        let empty = try Fixtures.write([])
        let emptyResponse = try server.upload(empty)
        #expect(emptyResponse.status == 400 || emptyResponse.status == 422, "\(emptyResponse.text)")

        // Over the size limit: refused before or while reading.
        let tooBig = try server.upload(Fixtures.archive("podman-tcp-established.tar"))
        #expect(tooBig.status == 413)
        #expect(tooBig.errorCode == "PAYLOAD_TOO_LARGE")

        let wrongType = try server.request("POST", "/api/v1/checkpoints", upload: Fixtures.archive("podman-counter-none.tar"),
                                           headers: ["Content-Type: application/json"])
        #expect(wrongType.status == 415)

        #expect(try server.request("GET", "/api/v1/checkpoints").json["total"] as? Int == 0)
        #expect(try server.blobFiles().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: server.temporaryDirectory.path).isEmpty)
        #expect(try server.request("GET", "/healthz").status == 200)
    }

    @Test("list filters, sorting and cursor pages")
    func listing() throws {
        let server = try TestServer()
        for name in Fixtures.checkpointArchives {
            _ = try server.upload(Fixtures.archive(name), query: name.hasPrefix("crio") ? "?node=worker-2" : "?node=worker-1")
        }
        let crio = try server.request("GET", "/api/v1/checkpoints?namespace=shop")
        #expect(crio.json["total"] as? Int == 1)
        #expect(((crio.json["items"] as? [[String: Any]])?.first?["pod"] as? [String: Any])?["name"] as? String == "counter-7d9f8b6c5-x2kqz")
        #expect(try server.request("GET", "/api/v1/checkpoints?engine=CRI-O").json["total"] as? Int == 1)
        #expect(try server.request("GET", "/api/v1/checkpoints?node=worker-1").json["total"] as? Int == Fixtures.checkpointArchives.count - 1)
        #expect(try server.request("GET", "/api/v1/checkpoints?q=10.89.0.42").json["total"] as? Int == 1)
        #expect(try server.request("GET", "/api/v1/checkpoints?container=cd-multinet").json["total"] as? Int == 1)

        var seen: [String] = []
        var cursor: String?
        repeat {
            let path = "/api/v1/checkpoints?limit=5&sort=size&order=asc" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try server.request("GET", path)
            #expect(page.status == 200)
            let items = page.json["items"] as? [[String: Any]] ?? []
            seen += items.compactMap { $0["id"] as? String }
            let sizes = items.compactMap { $0["size"] as? Int }
            #expect(sizes == sizes.sorted())
            cursor = page.json["next_cursor"] as? String
        } while cursor != nil && seen.count < 100
        #expect(seen.count == Fixtures.checkpointArchives.count)
        #expect(Set(seen).count == seen.count)

        #expect(try server.request("GET", "/api/v1/checkpoints?sort=colour").errorCode == "INVALID_QUERY")
        #expect(try server.request("GET", "/api/v1/checkpoints?limit=0").errorCode == "INVALID_QUERY")
        #expect(try server.request("GET", "/api/v1/checkpoints?cursor=bogus").errorCode == "INVALID_QUERY")
    }

    @Test("delete removes the row and the blob; unknown IDs are 404")
    func delete() throws {
        let server = try TestServer()
        let id = try #require((server.upload(Fixtures.archive("podman-inpod.tar")).json["checkpoint"] as? [String: Any])?["id"] as? String)
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(id)").status == 204)
        #expect(try server.request("GET", "/api/v1/checkpoints/\(id)").errorCode == "CHECKPOINT_NOT_FOUND")
        #expect(try server.request("GET", "/api/v1/checkpoints/\(id)/archive").status == 404)
        #expect(try server.blobFiles().isEmpty)
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(id)").status == 404)
    }

    @Test("tokens: reads need a read token, writes a write token")
    func auth() throws {
        let server = try TestServer(tokens: true)
        let path = Fixtures.archive("podman-counter-none.tar")
        let anonymous = try server.upload(path)
        #expect(anonymous.status == 401)
        #expect(anonymous.errorCode == "UNAUTHORIZED")
        #expect(try server.upload(path, token: "wrong-token-0123456789abcdef").status == 401)
        let reader = try server.upload(path, token: TestServer.readToken)
        #expect(reader.status == 403)
        #expect(reader.errorCode == "FORBIDDEN")
        let writer = try server.upload(path, token: TestServer.writeToken)
        #expect(writer.status == 201)
        let id = try #require((writer.json["checkpoint"] as? [String: Any])?["id"] as? String)

        // A node agent uploads the checkpoints it takes, for its own node only; it may not delete.
        let byNode = try server.upload(Fixtures.archive("podman-inpod.tar"), token: TestServer.nodeToken)
        #expect(byNode.status == 201)
        #expect((byNode.json["checkpoint"] as? [String: Any])?["source_node"] as? String == "node-a")
        #expect(try server.upload(Fixtures.archive("podman-volume.tar"), token: TestServer.nodeToken, query: "?node=node-b").status == 403)
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(id)", token: TestServer.nodeToken).status == 403)

        #expect(try server.request("GET", "/api/v1/checkpoints").status == 401)
        #expect(try server.request("GET", "/api/v1/checkpoints", token: TestServer.readToken).status == 200)
        #expect(try server.request("GET", "/api/v1/checkpoints/\(id)/archive", token: TestServer.readToken).status == 200)
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(id)", token: TestServer.readToken).status == 403)
        #expect(try server.request("GET", "/metrics").status == 401)
        #expect(try server.request("GET", "/healthz").status == 200, "health checks stay open")
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(id)", token: TestServer.adminToken).status == 204)
        #expect(!server.log.joined().contains(TestServer.writeToken), "tokens are never logged")
    }

    @Test("eight uploads at once all land")
    func concurrentUploads() async throws {
        let server = try TestServer()
        let names = Array(Fixtures.checkpointArchives.prefix(8))
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for name in names {
                group.addTask { try server.upload(Fixtures.archive(name)).status }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == [Int](repeating: 201, count: names.count))
        #expect(try server.request("GET", "/api/v1/checkpoints").json["total"] as? Int == names.count)
        #expect(try server.blobFiles().count == names.count)
    }

    @Test("metrics, health and readiness")
    func metrics() throws {
        let server = try TestServer()
        _ = try server.upload(Fixtures.archive("podman-counter-none.tar"))
        let metrics = try server.request("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        #expect(metrics.text.contains("ferry_catalog_checkpoints 1\n"))
        #expect(metrics.text.contains("ferry_ingests_total{outcome=\"created\"} 1\n"))
        #expect(metrics.text.contains("ferry_ingest_duration_seconds_count 1\n"))
        #expect(try server.request("GET", "/readyz").status == 200)
        #expect(try server.request("GET", "/nope").errorCode == "NOT_FOUND")
        #expect(try server.request("PUT", "/api/v1/checkpoints").status == 405)
    }

    @Test("stored files are private and archive contents never reach the log")
    func privacy() throws {
        let server = try TestServer()
        _ = try server.upload(Fixtures.archive("podman-counter-none.tar"))
        for file in try server.blobFiles() where !file.hasSuffix("/") {
            let attributes = try FileManager.default.attributesOfItem(atPath: server.blobsDirectory.appendingPathComponent(file).path)
            if attributes[.type] as? FileAttributeType == .typeRegular {
                #expect(attributes[.posixPermissions] as? Int == 0o600)
            } else {
                #expect(attributes[.posixPermissions] as? Int == 0o700)
            }
        }
        let catalog = try FileManager.default.attributesOfItem(atPath: server.dataDirectory.appendingPathComponent("data/catalog.sqlite").path)
        #expect(catalog[.posixPermissions] as? Int == 0o600)
        let log = server.log.joined(separator: "\n")
        #expect(!log.contains("hunter2"))
        #expect(!log.contains("SECRET"))
        #expect(log.contains("ingest created"))
    }
}
