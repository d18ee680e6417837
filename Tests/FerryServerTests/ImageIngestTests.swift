import FerryTestSupport
import Foundation
import Testing

/// Saved checkpoint images in: `podman save --format oci-archive` (the shipped one), a docker-archive and a tarred
/// OCI layout with a nested index built from it. The stored blob is the image's one layer, itself a checkpoint
/// archive; the image's annotations are kept and feed preflight.
@Suite("checkpoint images in")
struct ImageIngestTests {
    static let ociArchive = Fixtures.archive("podman-checkpoint-image.oci.tar")
    /// The layer of the shipped image, by its digest.
    static let layerDigest = "ab7ee9f79b4eb16edb1a6865501fed35f133e55404050115b84c9140d549c81e"

    /// The shipped image's files (oci-layout, index.json, blobs/sha256/…).
    static func ociFiles() throws -> [String: [UInt8]] {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let untar = try Fixtures.run("/bin/tar", ["-xf", ociArchive, "-C", directory.path])
        guard untar.status == 0 else { throw FixtureError("tar: \(untar.stderr)") }
        var files: [String: [UInt8]] = [:]
        for name in FileManager.default.enumerator(atPath: directory.path)?.compactMap({ $0 as? String }) ?? [] {
            var isDirectory: ObjCBool = false
            let path = directory.appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[name] = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            }
        }
        return files
    }

    static func sha256(_ bytes: [UInt8]) throws -> String {
        let file = try Fixtures.write(bytes, name: "blob")
        return try FerryServerTests.sha256(ofFile: file)
    }

    func ingest(_ server: TestServer, _ path: String) throws -> [String: Any] {
        let response = try server.upload(path)
        #expect(response.status == 201, "\(response.text)")
        return try #require(response.json["checkpoint"] as? [String: Any])
    }

    @Test("podman save --format oci-archive: stored as its layer, with the image's annotations, and preflight uses them")
    func ociArchiveIn() throws {
        let server = try TestServer()
        let checkpoint = try ingest(server, Self.ociArchive)
        #expect(checkpoint["id"] as? String == Self.layerDigest, "the stored blob is the layer")
        #expect(checkpoint["compression"] as? String == "gzip")
        #expect((checkpoint["container"] as? [String: Any])?["name"] as? String == "cd-ckptimg")
        let source = try #require(checkpoint["source_image"] as? [String: Any])
        #expect(source["format"] as? String == "oci-archive")
        #expect(source["reference"] as? String == "localhost/cd-checkpoint-image:counter")
        let annotations = source["annotations"] as? [String: String] ?? [:]
        #expect(annotations["io.podman.annotations.checkpoint.host.kernel"] == "6.18.44-fc-v669")
        #expect(annotations["io.podman.annotations.checkpoint.criu.version"] == "40300")

        // The download is the checkpoint archive an engine restores with --import.
        let download = try Fixtures.temporaryDirectory().appendingPathComponent("archive")
        let archive = try server.request("GET", "/api/v1/checkpoints/\(Self.layerDigest)/archive", output: download.path)
        #expect(archive.status == 200)
        #expect(try FerryServerTests.sha256(ofFile: download.path) == Self.layerDigest)
        #expect(try Fixtures.run("/bin/tar", ["-tzf", download.path]).stdout.contains("checkpoint/inventory.img"))

        // The kernel and CRIU rules, which only an image's annotations can feed.
        let body = try Fixtures.write(Array(#"{"target": {"architecture": "x86_64", "kernel": "5.10.0-28-amd64", "criu_version": 40200, "cgroup_version": "v2", "runtimes": ["runc"]}}"#.utf8), name: "preflight.json")
        let preflight = try server.request("POST", "/api/v1/checkpoints/\(Self.layerDigest)/preflight", upload: body,
                                           headers: ["Content-Type: application/json"])
        let codes = Set(((preflight.json["findings"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String })
        #expect(codes.isSuperset(of: ["KERNEL_VERSION_DIFFERS", "CRIU_VERSION_OLDER_THAN_DUMP", "CGROUP_VERSION_DIFFERS"]), "\(preflight.text)")
    }

    @Test("a docker-archive and a tarred OCI layout with a nested index go in as their layer too")
    func otherImageTars() throws {
        let server = try TestServer()
        let files = try Self.ociFiles()
        let layer = try #require(files["blobs/sha256/\(Self.layerDigest)"])
        let config = try #require(files.first { $0.key.hasPrefix("blobs/") && $0.value.count == 286 }?.value)

        // docker-archive: manifest.json naming the config and the layer by path.
        var docker = TarBuilder()
        docker.file("config.json", config)
        docker.file("layer/layer.tar", layer)
        docker.file("manifest.json", #"[{"Config":"config.json","RepoTags":["localhost/ckpt:docker"],"Layers":["layer/layer.tar"]}]"#)
        let fromDocker = try ingest(server, try Fixtures.write(docker.finished(), name: "docker.tar"))
        #expect(fromDocker["id"] as? String == Self.layerDigest)
        #expect((fromDocker["source_image"] as? [String: Any])?["format"] as? String == "docker-archive")

        // An OCI layout whose index.json points at a nested index, as some tools write it.
        let manifestDigest = try #require(((try JSONSerialization.jsonObject(with: Data(files["index.json"]!)) as? [String: Any])?["manifests"] as? [[String: Any]])?.first?["digest"] as? String)
        let nested = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifestDigest)","size":1526}]}"#.utf8)
        let nestedDigest = try Self.sha256(nested)
        var layout = TarBuilder()
        for (name, bytes) in files where name.hasPrefix("blobs/") { layout.file(name, bytes) }
        layout.file("blobs/sha256/\(nestedDigest)", nested)
        layout.file("oci-layout", Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
        layout.file("index.json", #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:\#(nestedDigest)","size":\#(nested.count)}]}"#)
        // Same layer, same checkpoint: the catalog already has it.
        let again = try server.upload(try Fixtures.write(layout.finished(), name: "layout.tar"))
        #expect(again.status == 200, "\(again.text)")
        #expect((again.json["checkpoint"] as? [String: Any])?["id"] as? String == Self.layerDigest)
        // Nothing of either upload is left in tmp/.
        #expect((try FileManager.default.contentsOfDirectory(atPath: server.temporaryDirectory.path)).filter { $0.hasPrefix("upload-") }.isEmpty)
    }

    @Test("an image that is not a checkpoint image is refused with NOT_A_CHECKPOINT and leaves nothing behind")
    func notCheckpointImages() throws {
        let server = try TestServer()
        let files = try Self.ociFiles()
        var twoLayers = TarBuilder()
        twoLayers.file("manifest.json", #"[{"Config":"c.json","Layers":["a.tar","b.tar"]}]"#)
        twoLayers.file("a.tar", files["blobs/sha256/\(Self.layerDigest)"]!)
        twoLayers.file("b.tar", files["blobs/sha256/\(Self.layerDigest)"]!)
        var plainImage = TarBuilder()
        plainImage.file("manifest.json", #"[{"Config":"c.json","Layers":["a.tar"]}]"#)
        var inner = TarBuilder()
        inner.file("etc/hostname", "busybox\n")
        plainImage.file("a.tar", inner.finished())
        for (name, tar) in [("two layers", twoLayers), ("an ordinary image", plainImage)] {
            let response = try server.upload(try Fixtures.write(tar.finished(), name: "image.tar"))
            #expect(response.status == 422, "\(name): \(response.status) \(response.text)")
            #expect(response.errorCode == "NOT_A_CHECKPOINT", "\(name): \(response.text)")
        }
        #expect(try server.blobFiles().isEmpty)
        #expect((try FileManager.default.contentsOfDirectory(atPath: server.temporaryDirectory.path)).filter { $0.hasPrefix("upload-") }.isEmpty)
    }

    @Test("ferry inspect and ferry validate read the saved image through its layer")
    func cliReadsImages() throws {
        let inspect = try Fixtures.ferry(["inspect", "--format", "json", Self.ociArchive])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("cd-ckptimg"))
        let validate = try Fixtures.ferry(["validate", Self.ociArchive])
        #expect(validate.status == 0, "\(validate.stderr)")
    }
}
