import FerryTestSupport
import Foundation
import Testing

/// `ferry push`, `ls`, `get` and `rm` against a real service.
@Suite("ferry push, ls, get")
struct ClientCommandTests {
    @Test("push prints the digest, ls lists it, get downloads and verifies it")
    func roundTrip() throws {
        let server = try TestServer(tokens: true)
        let archive = Fixtures.archive("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")
        let digest = try sha256(ofFile: archive)
        let common = ["--server", server.base, "--token", TestServer.writeToken]

        let push = try Fixtures.ferry(["push"] + common + ["--node", "worker-7", "--label", "app=counter", archive])
        #expect(push.status == 0, "stderr: \(push.stderr)")
        #expect(push.stdout == "sha256:\(digest)\n")

        let list = try Fixtures.ferry(["ls"] + common + ["--namespace", "shop"])
        #expect(list.status == 0, "stderr: \(list.stderr)")
        let lines = list.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("ID ") == true)
        #expect(lines.count == 3)
        #expect(lines.last?.contains(String(digest.prefix(12))) == true)
        #expect(lines.last?.contains("worker-7") == true)

        let json = try Fixtures.ferry(["ls", "--json", "--label", "app=counter"] + common)
        let items = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [[String: Any]])
        #expect(items.count == 1)

        let output = try Fixtures.temporaryDirectory().appendingPathComponent("copy.tar").path
        let get = try Fixtures.ferry(["get"] + common + [String(digest.prefix(16)), "-o", output])
        #expect(get.status == 0, "stderr: \(get.stderr)")
        #expect(try sha256(ofFile: output) == digest)
        #expect(try FileManager.default.attributesOfItem(atPath: output)[.posixPermissions] as? Int == 0o600)

        #expect(try Fixtures.ferry(["rm"] + common + [digest]).status == 0)
        #expect(try Fixtures.ferry(["ls", "--json"] + common).stdout.contains(digest) == false)
    }

    @Test("push takes a saved checkpoint image; image ref prints the pull reference, or says why there is none")
    func imageReference() throws {
        let server = try TestServer(tokens: true)
        let common = ["--server", server.base, "--token", TestServer.writeToken]
        let push = try Fixtures.ferry(["push"] + common + [Fixtures.archive("podman-checkpoint-image.oci.tar")])
        #expect(push.status == 0, "\(push.stderr)")
        let digest = push.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(digest == "sha256:ab7ee9f79b4eb16edb1a6865501fed35f133e55404050115b84c9140d549c81e", "the image's layer")
        let id = String(digest.dropFirst(7))
        let reference = try Fixtures.ferry(["image", "ref"] + common + [String(id.prefix(12))])
        #expect(reference.status == 0, "\(reference.stderr)")
        let api = try server.request("GET", "/api/v1/checkpoints/\(id)", token: TestServer.readToken)
        #expect(reference.stdout == ((api.json["checkpoint"] as? [String: Any])?["oci_reference"] as? String ?? "?") + "\n")
        #expect(reference.stdout.hasSuffix("/checkpoints/cd-ckptimg:\(id.prefix(12))\n"))

        let xz = try Fixtures.write(try Fixtures.compress(try Fixtures.uncompressedBytes(of: "podman-counter-gzip.tar.gz"), with: "xz"), name: "c.tar.xz")
        let xzID = String(try Fixtures.ferry(["push"] + common + [xz]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(7))
        let none = try Fixtures.ferry(["image", "ref"] + common + [xzID])
        #expect(none.status == 1 && none.stdout.isEmpty)
        #expect(none.stderr.hasSuffix("[NO_IMAGE_REFERENCE]\n") && none.stderr.split(separator: "\n").count == 1, "\(none.stderr)")
        let unknown = try Fixtures.ferry(["image", "ref"] + common + [String(repeating: "0", count: 12)])
        #expect(unknown.status == 1 && unknown.stderr.contains("[CHECKPOINT_NOT_FOUND]"), "\(unknown.stderr)")
    }

    @Test("migrate --to-kubernetes --manifest-only prints the Pod that restores a checkpoint, field by field, as YAML and JSON")
    func restorePodManifest() throws {
        let server = try TestServer(tokens: true)
        let common = ["--server", server.base, "--token", TestServer.writeToken]
        let archive = Fixtures.archive("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")
        let id = String(try Fixtures.ferry(["push"] + common + ["--node", "node-a", archive]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(7))
        let reference = try Fixtures.ferry(["image", "ref"] + common + [id]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let arguments = ["migrate"] + common + ["--checkpoint", String(id.prefix(12)), "--to-kubernetes", "--node", "node-b",
                                                 "--pull-secret", "ferry-registry", "--manifest-only"]
        let json = try Fixtures.ferry(arguments + ["--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let pod = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any])
        #expect(pod["apiVersion"] as? String == "v1" && pod["kind"] as? String == "Pod")
        let metadata = pod["metadata"] as? [String: Any] ?? [:]
        #expect(metadata["name"] as? String == "counter-7d9f8b6c5-x2kqz-restored")
        #expect(metadata["namespace"] as? String == "shop")
        #expect((metadata["annotations"] as? [String: String])?["ferry.io/checkpoint"] == "sha256:\(id)")
        #expect((metadata["annotations"] as? [String: String])?["ferry.io/source-node"] == "node-a")
        #expect((metadata["annotations"] as? [String: String])?["ferry.io/source-pod"] == "shop/counter-7d9f8b6c5-x2kqz")
        let spec = pod["spec"] as? [String: Any] ?? [:]
        #expect(spec["nodeName"] as? String == "node-b")
        #expect(spec["restartPolicy"] as? String == "Never")
        #expect((spec["imagePullSecrets"] as? [[String: String]]) == [["name": "ferry-registry"]])
        let containers = spec["containers"] as? [[String: Any]] ?? []
        #expect(containers.count == 1)
        #expect(containers.first?["name"] as? String == "counter")
        #expect(containers.first?["image"] as? String == reference)
        // The YAML says the same (read back with PyYAML).
        let yaml = try Fixtures.ferry(arguments)
        #expect(yaml.status == 0)
        let manifest = try Fixtures.write(Array(yaml.stdoutData), name: "pod.yaml")
        let parsed = try Fixtures.run("/usr/bin/env", ["python3", "-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", manifest])
        #expect((try JSONSerialization.jsonObject(with: parsed.stdoutData) as? NSDictionary) == (pod as NSDictionary), "\(yaml.stdout)")
        // Overrides, and what cannot be restored this way.
        let renamed = try Fixtures.ferry(["migrate"] + common + ["--checkpoint", id, "--to-kubernetes", "--node", "n", "--namespace", "other",
                                                                  "--pod-name", "again", "--manifest-only", "--json"])
        let renamedPod = (try JSONSerialization.jsonObject(with: renamed.stdoutData) as? [String: Any])?["metadata"] as? [String: Any]
        #expect(renamedPod?["name"] as? String == "again" && renamedPod?["namespace"] as? String == "other")
        // Without --manifest-only the Pod is created through the Kubernetes API (KubernetesRestoreTests): with no
        // usable kubeconfig that is one clear line.
        let noCluster = try Fixtures.ferry(["migrate"] + common + ["--checkpoint", id, "--to-kubernetes", "--node", "n",
                                                                    "--kubeconfig", "/nonexistent/kubeconfig"])
        #expect(noCluster.status == 1 && noCluster.stderr.hasSuffix("[KUBECONFIG_INVALID]\n")
                && noCluster.stderr.split(separator: "\n").count == 1, "\(noCluster.stderr)")
        let xz = try Fixtures.write(try Fixtures.compress(try Fixtures.uncompressedBytes(of: "podman-counter-gzip.tar.gz"), with: "xz"), name: "c.tar.xz")
        let xzID = String(try Fixtures.ferry(["push"] + common + [xz]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(7))
        let noImage = try Fixtures.ferry(["migrate"] + common + ["--checkpoint", xzID, "--to-kubernetes", "--node", "n", "--manifest-only"])
        #expect(noImage.status == 1 && noImage.stderr.hasSuffix("[NO_IMAGE_REFERENCE]\n"), "\(noImage.stderr)")
    }

    @Test("a --label without '=' is a usage error for push and checkpoint, before anything is sent")
    func malformedLabels() throws {
        for arguments in [["push", "--server", "http://127.0.0.1:1", "--label", "novalue", Fixtures.archive("podman-counter-none.tar")],
                          ["checkpoint", "--server", "http://127.0.0.1:1", "--node", "n", "--label", "novalue", "counter"]] {
            let result = try Fixtures.ferry(arguments)
            #expect(result.status == 64, "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.contains("--label takes KEY=VALUE, not novalue"), "\(result.stderr)")
        }
    }

    @Test("get resumes a partial download with a Range request")
    func resume() throws {
        let server = try TestServer()
        let archive = Fixtures.archive("podman-tcp-established.tar")
        let digest = try sha256(ofFile: archive)
        #expect(try Fixtures.ferry(["push", "--server", server.base, archive]).status == 0)
        let output = try Fixtures.temporaryDirectory().appendingPathComponent("resumed.tar")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        try bytes.prefix(300_000).write(to: output.appendingPathExtension("partial"))
        let get = try Fixtures.ferry(["get", "--server", server.base, digest, "-o", output.path])
        #expect(get.status == 0, "stderr: \(get.stderr)")
        #expect(try sha256(ofFile: output.path) == digest)
        #expect(!FileManager.default.fileExists(atPath: output.appendingPathExtension("partial").path))
        #expect(server.log.contains { $0.contains("206") }, "the second part came as a 206")
    }

    @Test("a corrupt partial download is caught by the digest check")
    func digestMismatch() throws {
        let server = try TestServer()
        let archive = Fixtures.archive("podman-counter-none.tar")
        let digest = try sha256(ofFile: archive)
        #expect(try Fixtures.ferry(["push", "--server", server.base, archive]).status == 0)
        let output = try Fixtures.temporaryDirectory().appendingPathComponent("bad.tar")
        try Data(repeating: 0x41, count: 4096).write(to: output.appendingPathExtension("partial"))
        let get = try Fixtures.ferry(["get", "--server", server.base, digest, "-o", output.path])
        #expect(get.status == 1)
        #expect(get.stderr.hasSuffix("[DIGEST_MISMATCH]\n"))
        #expect(!FileManager.default.fileExists(atPath: output.path))
        // Run again: the bad partial file is gone, so it now succeeds.
        #expect(try Fixtures.ferry(["get", "--server", server.base, digest, "-o", output.path]).status == 0)
    }

    @Test("exit statuses: refused is 1, unreachable is 2")
    func exitStatuses() throws {
        let server = try TestServer()
        var builder = TarBuilder()
        builder.file("x", "y")
        let notCheckpoint = try Fixtures.write(builder.finished())
        let refused = try Fixtures.ferry(["push", "--server", server.base, notCheckpoint])
        #expect(refused.status == 1)
        #expect(refused.stderr == "ferry: checkpoint directory is missing in the archive [NOT_A_CHECKPOINT]\n")
        let unreachable = try Fixtures.ferry(["ls", "--server", "http://127.0.0.1:9"])
        #expect(unreachable.status == 2)
        #expect(unreachable.stderr.hasSuffix("[SERVER_UNREACHABLE]\n"))
        let unknown = try Fixtures.ferry(["get", "--server", server.base, "deadbeefdeadbeef", "-o", "/tmp/never"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.hasSuffix("[CHECKPOINT_NOT_FOUND]\n"))
    }
}
