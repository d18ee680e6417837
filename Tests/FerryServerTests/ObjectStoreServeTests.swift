import Crypto
import FerryObjectStore
import FerryTestSupport
import Foundation
import Testing

/// `ferry serve --blobs s3://…` against a real S3-compatible server (moto) on loopback: real archives in, bytes
/// and ranges out, one object per digest, nothing left under `uploads/`.
@Suite("object-store blobs", .serialized)
struct ObjectStoreServeTests {
    static let bucket = "ferry-blobs"

    /// moto with a bucket, a client of it, and the `ferry serve` arguments and environment that use it.
    struct Store {
        let moto: MotoServer
        let client: S3Client
        var arguments: [String] { ["--blobs", "s3://\(ObjectStoreServeTests.bucket)/fleet", "--s3-endpoint", moto.endpoint] }
        var environment: [String: String] { MotoServer.environment }

        func keys(_ under: String) throws -> [String] {
            try client.listObjects(prefix: client.key(under) + "/").map(\.key).sorted()
        }
    }

    static func withStore(_ body: (Store) throws -> Void) throws {
        guard let moto = try MotoServer.start(suite: "object-store blobs") else { return }
        defer { moto.stop() }
        try moto.createBucket(bucket)
        let configuration = try S3Configuration.parse(location: "s3://\(bucket)/fleet", endpoint: moto.endpoint,
                                                      pathStyle: true, environment: MotoServer.environment)
        try body(Store(moto: moto, client: S3Client(configuration: configuration)))
    }

    static func digest(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    static func json(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    @Test("archives are ingested into the object store in one pass, served whole and by range, and deduplicated")
    func ingestDownloadRangeDedupe() throws {
        try Self.withStore { store in
            let service = try ServeProcess(arguments: store.arguments, environment: store.environment)
            #expect(service.logText.contains("blobs in s3://ferry-blobs/fleet"))
            var digests: [String] = []
            for name in ["podman-counter-none.tar", "podman-counter-gzip.tar.gz", "podman-counter-zstd.tar.zst"] {
                let path = Fixtures.archive(name)
                let digest = try Self.digest(path)
                digests.append(digest)
                let upload = try service.curl(["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(path)",
                                               "\(service.url)/api/v1/checkpoints"])
                #expect(upload.status == 201, "\(name): \(String(decoding: upload.body, as: UTF8.self))")
                #expect((Self.json(upload.body)["checkpoint"] as? [String: Any])?["id"] as? String == digest)
                let whole = try service.curl(["\(service.url)/api/v1/checkpoints/\(digest)/archive"])
                #expect(whole.status == 200)
                let original = try Data(contentsOf: URL(fileURLWithPath: path))
                #expect(whole.body == original, "\(name) comes back byte for byte")
                let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
                let range = try service.curl(["-H", "Range: bytes=\(size / 3)-\(size / 3 + 99_999)", "\(service.url)/api/v1/checkpoints/\(digest)/archive"])
                #expect(range.status == 206)
                let expected = original[(size / 3)..<min(size, size / 3 + 100_000)]
                #expect(range.body == expected, "\(name): the range is the archive's bytes")
                let tail = try service.curl(["-H", "Range: bytes=-1000", "\(service.url)/api/v1/checkpoints/\(digest)/archive"])
                #expect(tail.status == 206 && tail.body == original.suffix(1000))
            }
            // The same bytes again: the existing checkpoint, and still one object per digest.
            let again = try service.curl(["-X", "POST", "-H", "Content-Type: application/octet-stream",
                                          "--data-binary", "@\(Fixtures.archive("podman-counter-none.tar"))", "\(service.url)/api/v1/checkpoints"])
            #expect(again.status == 200)
            let prefix = store.client.key("blobs", "sha256") + "/"
            #expect(try store.keys("blobs") == digests.map { prefix + $0 }.sorted())
            #expect(try store.keys("uploads").isEmpty, "no temporary object is left behind")
            #expect(try store.client.listMultipartUploads(prefix: store.client.key("uploads")).isEmpty)
            // Nothing of the blobs is on local disk: the data directory holds the catalog and keys only.
            let local = FileManager.default.enumerator(atPath: service.dataDirectory.appendingPathComponent("blobs").path)?.allObjects ?? []
            #expect(local.isEmpty, "\(local)")

            // A delete removes the row and the object.
            let deleted = try service.curl(["-X", "DELETE", "\(service.url)/api/v1/checkpoints/\(digests[0])"])
            #expect(deleted.status == 200 || deleted.status == 204)
            #expect(try store.client.headObject(prefix + digests[0]) == nil)
            let gone = try service.curl(["\(service.url)/api/v1/checkpoints/\(digests[0])/archive"])
            #expect(gone.status == 404)
        }
    }

    @Test("an OCI checkpoint image is stored as its layer, and the registry view serves it from the object store")
    func checkpointImage() throws {
        try Self.withStore { store in
            let service = try ServeProcess(arguments: store.arguments, environment: store.environment)
            let upload = try service.curl(["-X", "POST", "-H", "Content-Type: application/octet-stream",
                                           "--data-binary", "@\(Fixtures.archive("podman-checkpoint-image.oci.tar"))",
                                           "\(service.url)/api/v1/checkpoints"])
            #expect(upload.status == 201, "\(String(decoding: upload.body, as: UTF8.self))")
            let id = try #require((Self.json(upload.body)["checkpoint"] as? [String: Any])?["id"] as? String)
            let prefix = store.client.key("blobs", "sha256") + "/"
            #expect(try store.keys("blobs") == [prefix + id], "the layer alone is stored")
            let layer = try service.curl(["\(service.url)/api/v1/checkpoints/\(id)/archive"])
            #expect(layer.status == 200)
            #expect(SHA256.hash(data: layer.body).map { String(format: "%02x", $0) }.joined() == id)
            guard let reference = (Self.json(upload.body)["checkpoint"] as? [String: Any])?["oci_reference"] as? String,
                  let repository = reference.split(separator: "/", maxSplits: 1).last?.split(separator: ":").first else {
                Issue.record("no oci_reference in \(String(decoding: upload.body, as: UTF8.self))")
                return
            }
            let blob = try service.curl(["\(service.url)/v2/\(repository)/blobs/sha256:\(id)"])
            #expect(blob.status == 200 && blob.body == layer.body, "the registry's blob is the stored layer")
        }
    }

    @Test("with --encryption-key the objects hold sealed bytes and a wrapped key; downloads and ranges are the plaintext")
    func encrypted() throws {
        try Self.withStore { store in
            let directory = try Fixtures.temporaryDirectory()
            let key = directory.appendingPathComponent("blob.key").path
            let made = try Fixtures.ferry(["keygen", "-o", key])
            #expect(made.status == 0, "\(made.stderr)")
            let service = try ServeProcess(arguments: store.arguments + ["--encryption-key", key], environment: store.environment)
            let path = Fixtures.archive("podman-counter-none.tar")
            let digest = try Self.digest(path)
            let upload = try service.curl(["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(path)",
                                           "\(service.url)/api/v1/checkpoints"])
            #expect(upload.status == 201)
            let object = store.client.key("blobs", "sha256", digest)
            #expect(try store.keys("blobs") == [object, object + ".key"].sorted())
            let stored = try store.client.getObjectData(object)
            let plain = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(stored.prefix(8) == Data("FRYBLOB1".utf8) || stored.prefix(4) != plain.prefix(4), "sealed, not the archive")
            #expect(stored.range(of: plain.prefix(4096)) == nil, "no plaintext in the object")
            let whole = try service.curl(["\(service.url)/api/v1/checkpoints/\(digest)/archive"])
            #expect(whole.status == 200 && whole.body == plain)
            let range = try service.curl(["-H", "Range: bytes=70000-200000", "\(service.url)/api/v1/checkpoints/\(digest)/archive"])
            #expect(range.status == 206 && range.body == plain[70000...200000])
        }
    }

    @Test("uploads a killed process left unfinished are removed at the next start; a store that cannot be reached stops the start")
    func leftoversAndUnreachable() throws {
        try Self.withStore { store in
            // What a process killed mid-upload leaves: a multipart upload with a part, and a completed temporary object.
            let stale = store.client.key("uploads", "killed-mid-upload")
            let upload = try store.client.createMultipartUpload(stale)
            _ = try store.client.uploadPart(stale, uploadID: upload, number: 1, data: Data(repeating: 1, count: 5 << 20))
            try store.client.putObject(store.client.key("uploads", "killed-before-commit"), data: Data([1, 2, 3]))
            let service = try ServeProcess(arguments: store.arguments, environment: store.environment)
            #expect(service.logText.contains("removed 2 upload(s)"), "\(service.logText)")
            #expect(try store.client.listMultipartUploads(prefix: store.client.key("uploads")).isEmpty)
            #expect(try store.keys("uploads").isEmpty)
            service.kill()

            let port = try Fixtures.freeLoopbackPort()
            let refused = try Fixtures.run(Fixtures.ferryBinary, [
                "serve", "--listen", "127.0.0.1:\(try Fixtures.freeLoopbackPort())", "--data-dir", try Fixtures.temporaryDirectory().path,
                "--blobs", "s3://\(Self.bucket)", "--s3-endpoint", "http://127.0.0.1:\(port)",
                "--migrations-dir", Fixtures.repositoryRoot.appendingPathComponent("migrations").path,
            ], environment: ProcessInfo.processInfo.environment.merging(store.environment) { $1 })
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("OBJECT_STORE_FAILED"), "\(refused.stderr)")
            // The log lines before it are timestamped; the error itself is one `ferry:` line.
            #expect(refused.stderr.split(separator: "\n").filter { $0.hasPrefix("ferry:") }.count == 1, "one line: \(refused.stderr)")
            let unset = try Fixtures.run(Fixtures.ferryBinary, [
                "serve", "--data-dir", try Fixtures.temporaryDirectory().path, "--blobs", "s3://\(Self.bucket)",
            ], environment: ["PATH": "/usr/bin:/bin"])
            #expect(unset.status == 1 && unset.stderr.contains("AWS_REGION is not set"), "\(unset.stderr)")
        }
    }
}
