import FerryCatalog
import FerryTestSupport
import Foundation
import Testing

/// The registry view (`/v2/`) against real clients: skopeo (which checks every digest it copies) and the OCI
/// distribution-spec conformance suite built in the runtime lab, plus curl for the protocol's details.
@Suite("registry view", .serialized)
struct RegistryTests {
    static let gzipArchive = Fixtures.archive("podman-counter-gzip.tar.gz")
    static let zstdArchive = Fixtures.archive("podman-counter-zstd.tar.zst")
    static let plainArchive = Fixtures.archive("podman-counter-none.tar")
    static var skopeo: String { "/usr/bin/skopeo" }
    static var clientsPresent: Bool {
        FileManager.default.isExecutableFile(atPath: skopeo) || LabCluster.isAvailable(suite: "registry view (skopeo)")
    }

    func upload(_ server: TestServer, _ path: String, token: String? = nil) throws -> [String: Any] {
        let response = try server.upload(path, token: token)
        #expect(response.status == 201 || response.status == 200, "\(response.text)")
        return try #require(response.json["checkpoint"] as? [String: Any])
    }

    func registry(_ server: TestServer) -> String { String(server.base.dropFirst("http://".count)) }

    func skopeo(_ arguments: [String]) throws -> ProcessResult {
        try Fixtures.run(Self.skopeo, ["--command-timeout", "60s"] + arguments)
    }

    @Test("skopeo inspects and copies every compression; the layer is the archive byte for byte, the diff_id its tar's digest",
          .enabled(if: RegistryTests.clientsPresent))
    func skopeoCopies() throws {
        let server = try TestServer()
        for archive in [Self.gzipArchive, Self.zstdArchive, Self.plainArchive] {
            let checkpoint = try upload(server, archive)
            let id = try #require(checkpoint["id"] as? String)
            let reference = try #require(checkpoint["oci_reference"] as? String)
            #expect(reference == "\(registry(server))/checkpoints/counter:\(id.prefix(12))")

            let inspect = try skopeo(["inspect", "--tls-verify=false", "docker://\(reference)"])
            #expect(inspect.status == 0, "\(inspect.stderr)")
            let facts = (try JSONSerialization.jsonObject(with: inspect.stdoutData)) as? [String: Any] ?? [:]
            #expect(facts["Layers"] as? [String] == ["sha256:\(id)"])
            #expect((facts["RepoTags"] as? [String])?.contains("latest") == true)

            let directory = try Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            // dir: keeps each blob as it came (an oci: layout would compress a plain layer).
            let copy = try skopeo(["copy", "--src-tls-verify=false", "docker://\(reference)", "dir:\(directory.path)"])
            #expect(copy.status == 0, "\(copy.stderr)")
            let layer = directory.appendingPathComponent(id).path
            #expect(try sha256(ofFile: layer) == id)
            #expect(FileManager.default.contentsEqual(atPath: layer, andPath: archive))

            // The config's diff_id is the SHA-256 of the decompressed tar, as an engine checks when it unpacks.
            let raw = try Fixtures.run("/bin/sh", ["-c", "\(Self.skopeo) inspect --tls-verify=false --config --raw docker://\(reference)"])
            let config = (try JSONSerialization.jsonObject(with: raw.stdoutData)) as? [String: Any] ?? [:]
            let diffIDs = (config["rootfs"] as? [String: Any])?["diff_ids"] as? [String]
            let tar = try Fixtures.write(try Fixtures.uncompressedBytes(of: (archive as NSString).lastPathComponent), name: "layer.tar")
            #expect(diffIDs == ["sha256:\(try sha256(ofFile: tar))"], "\(config)")
        }
        // latest is the newest upload: the plain tar.
        let tags = try server.request("GET", "/v2/checkpoints/counter/tags/list")
        #expect((tags.json["tags"] as? [String])?.count == 4, "\(tags.text)")
    }

    @Test("the index and the manifest carry the annotations Podman, CRI-O and containerd look for",
          .enabled(if: RegistryTests.clientsPresent))
    func annotations() throws {
        let server = try TestServer()
        _ = try upload(server, Self.gzipArchive)
        let index = try server.request("GET", "/v2/checkpoints/counter/manifests/latest")
        #expect(index.headers["content-type"] == "application/vnd.oci.image.index.v1+json")
        let manifestDigest = try #require(((index.json["manifests"] as? [[String: Any]])?.first)?["digest"] as? String)
        let manifest = try server.request("GET", "/v2/checkpoints/counter/manifests/\(manifestDigest)",
                                          headers: ["Accept: application/vnd.oci.image.manifest.v1+json"])
        #expect(manifest.status == 200)
        #expect(manifest.headers["docker-content-digest"] == manifestDigest)
        for document in [index.json, manifest.json] {
            let annotations = document["annotations"] as? [String: String] ?? [:]
            #expect(annotations["io.podman.annotations.checkpoint.name"] == "counter")
            #expect(annotations["io.podman.annotations.checkpoint.runtime.name"] == "runc")
            #expect(annotations["io.podman.annotations.checkpoint.rootfsImageName"] == "localhost/busybox:test")
            #expect(annotations["io.kubernetes.cri-o.annotations.checkpoint.name"] == "counter")
            #expect(annotations["org.criu.checkpoint.container.name"] == "counter")
            #expect(annotations["org.criu.checkpoint.engine.name"] == "Podman")
        }
        let layers = manifest.json["layers"] as? [[String: Any]]
        #expect(layers?.first?["mediaType"] as? String == "application/vnd.oci.image.layer.v1.tar+gzip")
        // A client that does not take an index gets the manifest itself.
        let direct = try server.request("GET", "/v2/checkpoints/counter/manifests/latest",
                                        headers: ["Accept: application/vnd.oci.image.manifest.v1+json"])
        #expect(direct.headers["docker-content-digest"] == manifestDigest)
        // HEAD: the digest and the length, no body.
        let head = try server.request("HEAD", "/v2/checkpoints/counter/manifests/latest")
        #expect(head.status == 200 && head.headers["docker-content-digest"] == index.headers["docker-content-digest"])
        #expect(head.headers["content-length"] == "\(index.body.count)")
    }

    @Test("tokens: 401 with a Basic challenge without one, skopeo --creds with a read token, a bearer token with curl",
          .enabled(if: RegistryTests.clientsPresent))
    func tokens() throws {
        let server = try TestServer(tokens: true)
        let checkpoint = try upload(server, Self.gzipArchive, token: TestServer.writeToken)
        let reference = try #require(checkpoint["oci_reference"] as? String)

        let anonymous = try server.request("GET", "/v2/")
        #expect(anonymous.status == 401)
        #expect(anonymous.headers["www-authenticate"]?.hasPrefix("Basic realm=") == true)
        #expect(((anonymous.json["errors"] as? [[String: Any]])?.first)?["code"] as? String == "UNAUTHORIZED")
        #expect(try skopeo(["inspect", "--tls-verify=false", "docker://\(reference)"]).status != 0)
        #expect(try skopeo(["inspect", "--tls-verify=false", "--creds", "anyone:wrong-token", "docker://\(reference)"]).status != 0)

        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = try skopeo(["copy", "--src-tls-verify=false", "--src-creds", "anyone:\(TestServer.readToken)",
                               "docker://\(reference)", "oci:\(directory.path):copy"])
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(try server.request("GET", "/v2/checkpoints/counter/tags/list", token: TestServer.readToken).status == 200)
        // The registry takes no writes, whoever asks.
        let push = try server.request("PUT", "/v2/checkpoints/counter/manifests/latest", token: TestServer.adminToken)
        #expect(push.status == 405)
        #expect(((push.json["errors"] as? [[String: Any]])?.first)?["code"] as? String == "UNSUPPORTED")
    }

    @Test("a compressed checkpoint's diff_id is worked out in the background after ingest, before any pull")
    func diffIDInBackground() throws {
        let server = try TestServer()
        let checkpoint = try upload(server, Self.zstdArchive)
        let id = try #require(checkpoint["id"] as? String)
        let database = server.dataDirectory.appendingPathComponent("data/catalog.sqlite").path
        let tar = try Fixtures.write(try Fixtures.uncompressedBytes(of: "podman-counter-zstd.tar.zst"), name: "layer.tar")
        let expected = "sha256:" + (try sha256(ofFile: tar))
        try LabCluster.waitUntil("the diff_id to be recorded", timeout: 20, interval: 0.2) {
            let query = try Fixtures.run("/usr/bin/env", ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('SELECT uncompressed_digest FROM checkpoint WHERE id=?', (sys.argv[2],)).fetchone()[0])", database, id])
            return query.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == expected
        }
        #expect(!server.log.contains { $0.contains("GET /v2/") }, "no pull asked for it")
    }

    @Test("unknown names, tags and blobs get the spec's error codes; tags page with n and last; blobs take Range")
    func protocolDetails() throws {
        let server = try TestServer()
        let checkpoint = try upload(server, Self.gzipArchive)
        let id = try #require(checkpoint["id"] as? String)
        func code(_ response: TestServer.Response) -> String? { ((response.json["errors"] as? [[String: Any]])?.first)?["code"] as? String }
        let v2 = try server.request("GET", "/v2/")
        #expect(v2.status == 200 && v2.headers["docker-distribution-api-version"] == "registry/2.0")
        let noName = try server.request("GET", "/v2/checkpoints/nobody/manifests/latest")
        #expect(noName.status == 404 && code(noName) == "NAME_UNKNOWN")
        let noTag = try server.request("GET", "/v2/checkpoints/counter/manifests/000000000000")
        #expect(noTag.status == 404 && code(noTag) == "MANIFEST_UNKNOWN")
        let noBlob = try server.request("GET", "/v2/checkpoints/counter/blobs/sha256:" + String(repeating: "0", count: 64))
        #expect(noBlob.status == 404 && code(noBlob) == "BLOB_UNKNOWN")
        let badName = try server.request("GET", "/v2/Checkpoints/Counter/manifests/latest")
        #expect(badName.status == 400 && code(badName) == "NAME_INVALID")

        let firstPage = try server.request("GET", "/v2/checkpoints/counter/tags/list?n=1")
        #expect(firstPage.json["tags"] as? [String] == [String(id.prefix(12))])
        #expect(firstPage.headers["link"]?.contains("last=\(id.prefix(12))") == true)
        let secondPage = try server.request("GET", "/v2/checkpoints/counter/tags/list?n=1&last=\(id.prefix(12))")
        #expect(secondPage.json["tags"] as? [String] == ["latest"])

        let range = try server.request("GET", "/v2/checkpoints/counter/blobs/sha256:\(id)", headers: ["Range: bytes=0-9"])
        #expect(range.status == 206 && range.body.count == 10)
        #expect(range.headers["docker-content-digest"] == "sha256:\(id)")
        // An xz archive has no image layer type: it is catalogued without an oci_reference.
        let xz = try Fixtures.write(try Fixtures.compress(try Fixtures.uncompressedBytes(of: "podman-counter-gzip.tar.gz"), with: "xz"), name: "c.tar.xz")
        let xzCheckpoint = try upload(server, xz)
        #expect(xzCheckpoint["oci_reference"] == nil)
    }

    @Test("a containerd archive is catalogued and served under checkpoints/NAMESPACE/POD/CONTAINER with containerd's annotations")
    func containerdArchive() throws {
        let server = try TestServer()
        let checkpoint = try upload(server, try ContainerdFixture.archive())
        #expect(checkpoint["engine"] as? String == "containerd")
        let id = try #require(checkpoint["id"] as? String)
        #expect((checkpoint["oci_reference"] as? String)?.hasSuffix("/checkpoints/shop/counter-7d9f8b6c5-x2kqz/counter:\(id.prefix(12))") == true)
        let index = try server.request("GET", "/v2/checkpoints/shop/counter-7d9f8b6c5-x2kqz/counter/manifests/latest")
        let annotations = index.json["annotations"] as? [String: String] ?? [:]
        #expect(annotations["org.criu.checkpoint.container.name"] == "counter")
        #expect(annotations["org.criu.checkpoint.pod.namespace"] == "shop")
        #expect(annotations["org.criu.checkpoint.runtime.name"] == "io.containerd.runc.v2")
        #expect(annotations["org.criu.checkpoint.rootfsImageID"] == "sha256:7e63f2f9cf3ead6123ba467d90d5cbd0221e9838e3482e80ff42b0771e25994c")
        let findings = try server.request("GET", "/api/v1/checkpoints/\(id)/findings")
        #expect(!(findings.json["findings"] as? [[String: Any]] ?? []).contains { ($0["code"] as? String)?.hasPrefix("METADATA") == true })
    }

    @Test("the OCI conformance suite's pull and tag-listing checks pass in read-only mode",
          .enabled(if: LabCluster.isAvailable(suite: "registry view (OCI conformance)")))
    func conformance() throws {
        let suite = LabCluster.labDirectory.appendingPathComponent("bin/oci-conformance").path
        try #require(FileManager.default.isExecutableFile(atPath: suite), "the lab has no \(suite)")
        let server = try TestServer()
        _ = try upload(server, Self.gzipArchive)
        _ = try upload(server, Self.zstdArchive)
        let repository = "checkpoints/counter"
        var manifests: [String] = []
        var blobs: [String] = []
        for tag in ["latest"] + (try server.request("GET", "/v2/\(repository)/tags/list").json["tags"] as? [String] ?? []).filter({ $0 != "latest" }) {
            let index = try server.request("GET", "/v2/\(repository)/manifests/\(tag)")
            let digest = try #require(((index.json["manifests"] as? [[String: Any]])?.first)?["digest"] as? String)
            let manifest = try server.request("GET", "/v2/\(repository)/manifests/\(digest)",
                                              headers: ["Accept: application/vnd.oci.image.manifest.v1+json"])
            manifests.append(digest)
            if let config = (manifest.json["config"] as? [String: Any])?["digest"] as? String { blobs.append(config) }
            blobs += (manifest.json["layers"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
        }
        let tags = try server.request("GET", "/v2/\(repository)/tags/list").json["tags"] as? [String] ?? []
        let results = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: results) }
        let manifestList = Array(Set(manifests)).sorted().joined(separator: " ")
        let blobList = Array(Set(blobs)).sorted().joined(separator: " ")
        var environment: [String: String] = ProcessInfo.processInfo.environment
        environment["OCI_REGISTRY"] = registry(server)
        environment["OCI_TLS"] = "disabled"
        environment["OCI_REPO1"] = repository
        for switchedOff in ["OCI_API_PUSH", "OCI_API_BLOBS_DELETE", "OCI_API_MANIFESTS_DELETE", "OCI_API_TAGS_DELETE"] {
            environment[switchedOff] = "false"
        }
        environment["OCI_API_REFERRER"] = "true"
        environment["OCI_RO_DATA_TAGS"] = tags.joined(separator: " ")
        environment["OCI_RO_DATA_MANIFESTS"] = manifestList
        environment["OCI_RO_DATA_BLOBS"] = blobList
        // No checkpoint has referrers: the referrers API answers each manifest with an empty index.
        environment["OCI_RO_DATA_REFERRERS"] = manifestList
        environment["OCI_FILTER_TEST"] = "OCI Conformance Test/read-only"
        environment["OCI_RESULTS_DIR"] = results.path
        let run = try Fixtures.run(suite, [], environment: environment)
        print(run.stdout.split(separator: "\n").filter { $0.contains("Pass....") || $0.contains("FAIL....") || $0.contains("Result") }.joined(separator: "\n"))
        #expect(run.status == 0, "\(run.stdout.suffix(3000))\n\(run.stderr.suffix(2000))")
        #expect(run.stdout.contains("FAIL..........................:          0"))
        #expect(!run.stdout.contains("Pass..........................:          0"))
    }
}

/// Repository names and tags as the distribution spec allows them.
@Suite("registry names")
struct OCINameTests {
    @Test("names become valid repository components, pods and namespaces first")
    func repositories() {
        #expect(OCIName.repository(containerName: "counter", podName: nil, podNamespace: nil) == "checkpoints/counter")
        #expect(OCIName.repository(containerName: "app", podName: "web-7d9f", podNamespace: "shop") == "checkpoints/shop/web-7d9f/app")
        #expect(OCIName.repository(containerName: "app", podName: "mypod", podNamespace: nil) == "checkpoints/mypod/app")
        #expect(OCIName.repository(containerName: "My App!!", podName: nil, podNamespace: nil) == "checkpoints/my-app")
        #expect(OCIName.repository(containerName: "a__b.c---d_-e", podName: nil, podNamespace: nil) == "checkpoints/a__b.c---d-e")
        #expect(OCIName.repository(containerName: "/../", podName: nil, podNamespace: nil) == "checkpoints/unnamed")
        let long = OCIName.repository(containerName: String(repeating: "x", count: 900_000), podName: String(repeating: "p-", count: 100), podNamespace: "ns")
        #expect(long.count < 255 && OCIName.isValidRepository(long), "\(long.count)")
        for name in ["checkpoints/counter", "checkpoints/shop/web-7d9f/app", "checkpoints/my-app", "checkpoints/a__b.c---d-e"] {
            #expect(OCIName.isValidRepository(name), "\(name)")
        }
        for name in ["Checkpoints/x", "checkpoints//x", "checkpoints/-x", "checkpoints/x_", "checkpoints/a___b", ""] {
            #expect(!OCIName.isValidRepository(name), "\(name)")
        }
    }

    @Test("tags")
    func tags() {
        #expect(OCIName.isValidTag("latest") && OCIName.isValidTag("9b6882e4e22f") && OCIName.isValidTag("_a.B-1"))
        #expect(!OCIName.isValidTag(".a") && !OCIName.isValidTag("-a") && !OCIName.isValidTag("") && !OCIName.isValidTag(String(repeating: "a", count: 129)))
    }
}
