import FerryClient
import FerryTestSupport
import Foundation
import Testing

/// `ferry migrate --to-kubernetes` without --manifest-only: preflight against the node, the migration recorded in a
/// real Ferry service, the Pod created and followed through a Kubernetes API server double over HTTPS
/// (`Doubles/apiserver_double.py`: core/v1 nodes and pods as the API server answers them, its Status errors, and a
/// kubelet's progression of Pod status), since no API server runs here.
@Suite("restore into Kubernetes", .serialized)
final class KubernetesRestoreTests {
    let directory: URL
    let server: TestServer
    var double: pid_t?
    var port = 0
    static let token = "apiserver-token-0123456789"
    static let crioArchive = Fixtures.archive("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")
    var common: [String] { ["--server", server.base, "--token", TestServer.writeToken] }

    init() throws {
        directory = try Fixtures.temporaryDirectory()
        server = try TestServer(tokens: true)
        try makeCertificates()
        try setNodes([
            "crio-1": ["runtime": "cri-o://1.31.1", "kubelet": "v1.31.2", "gates": ["ContainerCheckpoint": true]],
            "containerd-23": ["runtime": "containerd://2.3.1", "kubelet": "v1.33.0"],
            "containerd-24": ["runtime": "containerd://2.4.0", "kubelet": "v1.34.0"],
            "gate-off": ["runtime": "cri-o://1.31.1", "kubelet": "v1.31.2", "gates": ["ContainerCheckpoint": false]],
            "not-ready": ["runtime": "cri-o://1.31.1", "kubelet": "v1.31.2", "ready": false],
            "arm": ["runtime": "cri-o://1.31.1", "kubelet": "v1.31.2", "arch": "arm64"],
        ])
        try setBehaviour(["default": "run"])
        let script = Fixtures.repositoryRoot.appendingPathComponent("Tests/FerryServerTests/Doubles/apiserver_double.py").path
        double = try Fixtures.spawn("/usr/bin/python3", [script, file("port").path, file("server.pem").path, file("server.key").path,
                                                         file("ca.pem").path, Self.token, file("nodes.json").path,
                                                         file("behaviour.json").path, file("requests.log").path],
                                    stdout: file("double.out").path, stderr: file("double.err").path)
        try LabCluster.waitUntil("the API server double to listen", timeout: 20) {
            FileManager.default.fileExists(atPath: self.file("port").path)
        }
        port = Int(try String(contentsOf: file("port"), encoding: .utf8)) ?? 0
        try writeKubeconfig(name: "kubeconfig", user: "    token: \(Self.token)")
    }

    deinit {
        if let double { kill(double, SIGKILL); _ = Fixtures.wait(double) }
        try? FileManager.default.removeItem(at: directory)
    }

    func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    func setNodes(_ nodes: [String: [String: Any]]) throws {
        try JSONSerialization.data(withJSONObject: nodes).write(to: file("nodes.json"))
    }

    func setBehaviour(_ behaviour: [String: String]) throws {
        try JSONSerialization.data(withJSONObject: behaviour).write(to: file("behaviour.json"))
    }

    /// A CA, the double's certificate for 127.0.0.1, and a client certificate (CN=ferry-client).
    func makeCertificates() throws {
        try TestCertificates.make(in: directory, authority: "apiserver-test-ca", clientCommonName: "ferry-client")
    }

    /// A kubeconfig whose current context points at the double, the CA inline (`certificate-authority-data`).
    func writeKubeconfig(name: String, user: String) throws {
        let ca = try Data(contentsOf: file("ca.pem")).base64EncodedString()
        try """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters:
            - name: double
              cluster:
                server: https://127.0.0.1:\(port)
                certificate-authority-data: \(ca)
            contexts:
            - name: test
              context:
                cluster: double
                user: restorer
            users:
            - name: restorer
              user:
            \(user)
            """.write(to: file(name), atomically: true, encoding: .utf8)
    }

    /// The double's request log.
    func requests() throws -> [[String: Any]] {
        let text = (try? String(contentsOf: file("requests.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func createdPods() throws -> [[String: Any]] {
        try requests().filter { $0["method"] as? String == "POST" && ($0["path"] as? String ?? "").hasSuffix("/pods") }
            .compactMap { $0["body"] as? [String: Any] }
    }

    func push(_ archive: String) throws -> String {
        let result = try Fixtures.ferry(["push"] + common + ["--node", "node-a", archive])
        #expect(result.status == 0, "\(result.stderr)")
        return String(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(7))
    }

    func migration(_ id: String) throws -> [String: Any] {
        try server.request("GET", "/api/v1/migrations/\(id)", token: TestServer.readToken).json
    }

    func post(_ path: String, _ body: String) throws -> TestServer.Response {
        try server.request("POST", path, token: TestServer.writeToken, headers: ["Content-Type: application/json"],
                           extra: ["--data-binary", body])
    }

    func restore(_ checkpoint: String, node: String, kubeconfig: String = "kubeconfig", _ extra: [String] = []) throws -> ProcessResult {
        try Fixtures.ferry(["migrate"] + common + ["--checkpoint", checkpoint, "--to-kubernetes", "--node", node,
                                                   "--kubeconfig", file(kubeconfig).path, "--json", "--timeout", "20"] + extra)
    }

    /// The CRI-O archive with a memory and CPU limit and a label of the user's in its spec, as CRI-O writes them.
    func archiveWithLimits() throws -> String {
        let output = file("crio-limits.tar").path
        let script = """
            import io, json, sys, tarfile
            source, target = sys.argv[1:3]
            with tarfile.open(source) as tin, tarfile.open(target, "w") as tout:
                for member in tin.getmembers():
                    data = tin.extractfile(member).read() if member.isfile() else None
                    if member.name == "spec.dump":
                        spec = json.loads(data)
                        spec["linux"]["resources"]["memory"] = {"limit": 268435456}
                        spec["linux"]["resources"]["cpu"] = {"shares": 512, "quota": 50000, "period": 100000}
                        labels = json.loads(spec["annotations"]["io.kubernetes.cri-o.Labels"])
                        labels["app"] = "counter"
                        spec["annotations"]["io.kubernetes.cri-o.Labels"] = json.dumps(labels)
                        data = json.dumps(spec).encode()
                        member.size = len(data)
                    tout.addfile(member, io.BytesIO(data) if data is not None else None)
            """
        let result = try Fixtures.run("/usr/bin/python3", ["-c", script, Self.crioArchive, output])
        guard result.status == 0 else { throw FixtureError("rewriting the archive: \(result.stderr)") }
        return output
    }

    @Test("a CRI-O node: preflight passes, the migration is recorded, the Pod is created as built and followed until it runs")
    func restoresAsAPod() throws {
        let id = try push(try archiveWithLimits())
        let result = try restore(id, node: "crio-1")
        #expect(result.status == 0, "\(result.stderr)")
        let view = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any])
        #expect(view["state"] as? String == "succeeded")
        #expect(view["running_on"] as? String == "crio-1")
        #expect(view["target"] as? String == "crio-1")
        #expect(view["checkpoint"] as? String == id)
        #expect(result.stderr.contains("ContainerCreating"), "the progress shows the kubelet's states: \(result.stderr)")
        let migrationID = try #require(view["id"] as? String)
        let recorded = try migration(migrationID)
        let kubernetes = (recorded["options"] as? [String: Any])?["kubernetes"] as? [String: String]
        #expect(kubernetes == ["namespace": "shop", "pod": "counter-7d9f8b6c5-x2kqz-restored"])
        let events = (recorded["events"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
        #expect(events.contains { $0.contains("runs on crio-1") }, "\(events)")

        // The Pod as the API server received it, field by field.
        let pods = try createdPods()
        #expect(pods.count == 1)
        let pod = try #require(pods.first)
        let metadata = pod["metadata"] as? [String: Any] ?? [:]
        #expect(metadata["name"] as? String == "counter-7d9f8b6c5-x2kqz-restored")
        #expect(metadata["namespace"] as? String == "shop")
        let annotations = metadata["annotations"] as? [String: String] ?? [:]
        #expect(annotations["ferry.io/migration"] == migrationID)
        #expect(annotations["ferry.io/checkpoint"] == "sha256:\(id)")
        let labels = metadata["labels"] as? [String: String] ?? [:]
        #expect(labels == ["app": "counter", "app.kubernetes.io/managed-by": "ferry", "ferry.io/checkpoint": String(id.prefix(12))])
        let spec = pod["spec"] as? [String: Any] ?? [:]
        #expect(spec["nodeName"] as? String == "crio-1")
        let container = (spec["containers"] as? [[String: Any]])?.first ?? [:]
        let reference = try Fixtures.ferry(["image", "ref"] + common + [id]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(container["image"] as? String == reference)
        let resources = container["resources"] as? [String: [String: String]]
        #expect(resources == ["limits": ["memory": "268435456", "cpu": "500m"], "requests": ["cpu": "500m"]], "\(String(describing: resources))")
        // Authenticated with the kubeconfig's token, over TLS checked against its inline CA.
        #expect(try requests().allSatisfy { $0["auth"] as? String == "token" })
    }

    @Test("a client certificate from the kubeconfig authenticates too; no credentials is a 401 with its code")
    func clientCertificatesAndRefusals() throws {
        let id = try push(Self.crioArchive)
        let certificate = try Data(contentsOf: file("client.pem")).base64EncodedString()
        let key = try Data(contentsOf: file("client.key")).base64EncodedString()
        try writeKubeconfig(name: "cert-kubeconfig", user: "    client-certificate-data: \(certificate)\n    client-key-data: \(key)")
        let byCertificate = try restore(id, node: "crio-1", kubeconfig: "cert-kubeconfig")
        #expect(byCertificate.status == 0, "\(byCertificate.stderr)")
        #expect(try requests().contains { $0["auth"] as? String == "certificate" })

        try writeKubeconfig(name: "anonymous", user: "    {}")
        let anonymous = try restore(id, node: "crio-1", kubeconfig: "anonymous", ["--pod-name", "anon"])
        #expect(anonymous.status == 1 && anonymous.stderr.contains("[KUBERNETES_UNAUTHORIZED]"), "\(anonymous.stderr)")
        try writeKubeconfig(name: "exec", user: "    exec:\n      command: /bin/true")
        let exec = try restore(id, node: "crio-1", kubeconfig: "exec")
        #expect(exec.status == 1 && exec.stderr.contains("[KUBECONFIG_INVALID]") && exec.stderr.contains("exec"), "\(exec.stderr)")
        let missing = try restore(id, node: "crio-1", kubeconfig: "no-such-file")
        #expect(missing.status == 1 && missing.stderr.contains("[KUBECONFIG_INVALID]"), "\(missing.stderr)")
        // A refusal before the Pod leaves no migration behind.
        let listed = try server.request("GET", "/api/v1/migrations", token: TestServer.readToken)
        let items = listed.json["items"] as? [Any] ?? []
        #expect(items.count == 1, "only the certificate run recorded a migration: \(listed.text)")
    }

    @Test("preflight refuses containerd 2.4, a gate that is off, a node not Ready, another architecture, an unknown node; nothing is created")
    func preflightRefusals() throws {
        let id = try push(Self.crioArchive)
        for (node, code) in [("containerd-24", "RUNTIME_CANNOT_RESTORE"), ("gate-off", "CHECKPOINT_RESTORE_DISABLED"),
                             ("not-ready", "NODE_NOT_READY"), ("arm", "ARCHITECTURE_MISMATCH"), ("nowhere", "NODE_NOT_FOUND")] {
            let result = try restore(id, node: node)
            #expect(result.status == 1, "\(node): \(result.stderr)")
            #expect(result.stderr.contains("[\(code)]"), "\(node): \(result.stderr)")
        }
        #expect(try createdPods().isEmpty)
        // containerd 2.3 still restores; a waived finding lets the restore go on.
        let containerd = try restore(id, node: "containerd-23", ["--pod-name", "on-containerd"])
        #expect(containerd.status == 0, "\(containerd.stderr)")
        let waived = try restore(id, node: "arm", ["--pod-name", "on-arm", "--waive", "ARCHITECTURE_MISMATCH"])
        #expect(waived.status == 0 && waived.stderr.contains("(waived)"), "\(waived.stderr)")
        #expect(try createdPods().count == 2)
    }

    @Test("a base image named by ID only is refused as not pullable by digest")
    func basePinnedByDigest() throws {
        // The CRI-O archive without its ImageRef annotation: only rootfsImageRef (an image ID) and a tag remain.
        let output = file("crio-unpinned.tar").path
        let script = """
            import io, json, sys, tarfile
            with tarfile.open(sys.argv[1]) as tin, tarfile.open(sys.argv[2], "w") as tout:
                for member in tin.getmembers():
                    data = tin.extractfile(member).read() if member.isfile() else None
                    if member.name == "spec.dump":
                        spec = json.loads(data)
                        del spec["annotations"]["io.kubernetes.cri-o.ImageRef"]
                        data = json.dumps(spec).encode()
                        member.size = len(data)
                    tout.addfile(member, io.BytesIO(data) if data is not None else None)
            """
        #expect(try Fixtures.run("/usr/bin/python3", ["-c", script, Self.crioArchive, output]).status == 0)
        let id = try push(output)
        let result = try restore(id, node: "crio-1")
        #expect(result.status == 1 && result.stderr.contains("[BASE_IMAGE_NOT_PINNED]"), "\(result.stderr)")
        #expect(result.stderr.contains("sha256:7e63f2f9"), "the message names what the archive has: \(result.stderr)")
        #expect(try createdPods().isEmpty)
    }

    @Test("a Pod that fails (pull, restore, exit) fails the migration with the kubelet's reason; a taken name is refused")
    func failedPods() throws {
        let id = try push(Self.crioArchive)
        try setBehaviour(["default": "run", "pulls": "pull-fails", "restores": "restore-fails", "exits": "exits"])
        for (pod, code, words) in [("pulls", "IMAGE_PULL_FAILED", "ImagePullBackOff"),
                                   ("restores", "RESTORE_FAILED", "criu failed"),
                                   ("exits", "RESTORED_CONTAINER_EXITED", "exit 1")] {
            let result = try restore(id, node: "crio-1", ["--pod-name", pod])
            #expect(result.status == 1, "\(pod): \(result.stderr)")
            #expect(result.stderr.contains("[\(code)]") && result.stderr.contains(words), "\(pod): \(result.stderr)")
            let view = try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any] ?? [:]
            #expect(view["state"] as? String == "failed")
            #expect((view["error"] as? [String: String])?["code"] == code)
        }
        // A second migration for a name the first one took: its Pod is not ours, so it is left alone.
        let again = try restore(id, node: "crio-1", ["--pod-name", "pulls"])
        #expect(again.status == 1 && again.stderr.contains("[POD_EXISTS]"), "\(again.stderr)")
        #expect(try createdPods().count == 4)
    }

    @Test("kill -9 of the client after it created the Pod: the same command again (same idempotency key) follows that Pod to its outcome")
    func rerunAfterCrashFollowsItsOwnPod() throws {
        let id = try push(Self.crioArchive)
        try setBehaviour(["default": "stuck"])
        let arguments = ["migrate"] + common + ["--checkpoint", id, "--to-kubernetes", "--node", "crio-1",
                                                "--kubeconfig", file("kubeconfig").path, "--timeout", "60",
                                                "--idempotency-key", "k8s-1", "--pod-name", "slow", "--json"]
        let client = try Fixtures.spawn(Fixtures.ferryBinary, arguments, stdout: file("first.out").path, stderr: file("first.err").path)
        // Killed while it follows the Pod (the double has seen the create and a status read).
        try LabCluster.waitUntil("the client to follow its Pod", timeout: 20) {
            (try? self.requests())?.contains { $0["method"] as? String == "GET" && ($0["path"] as? String ?? "").hasSuffix("/pods/slow") } ?? false
        }
        kill(client, SIGKILL)
        _ = Fixtures.wait(client)
        let listed = try server.request("GET", "/api/v1/migrations", token: TestServer.readToken).json["items"] as? [[String: Any]] ?? []
        #expect(listed.count == 1 && listed.first?["state"] as? String == "restoring", "\(listed)")

        try setBehaviour(["default": "run"])
        let again = try Fixtures.ferry(arguments)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("earlier run"), "\(again.stderr)")
        let view = try JSONSerialization.jsonObject(with: again.stdoutData) as? [String: Any] ?? [:]
        #expect(view["state"] as? String == "succeeded" && view["id"] as? String == listed.first?["id"] as? String)
        // One Pod: the second create was the API server's 409, and the Pod was recognised by its migration.
        let creates = try requests().filter { $0["method"] as? String == "POST" }
        #expect(creates.count == 2)

        // Another migration (another key) for that name: not its Pod, so refused and left alone.
        let other = try restore(id, node: "crio-1", ["--pod-name", "slow", "--idempotency-key", "k8s-2"])
        #expect(other.status == 1 && other.stderr.contains("[POD_EXISTS]"), "\(other.stderr)")
    }

    @Test("a Pod still creating at the client's deadline fails the migration with POD_TIMEOUT and what the kubelet last said")
    func podTimeout() throws {
        let id = try push(Self.crioArchive)
        try setBehaviour(["default": "stuck"])
        let result = try restore(id, node: "crio-1", ["--pod-name", "slow", "--timeout", "2"])
        #expect(result.status == 1 && result.stderr.contains("[POD_TIMEOUT]") && result.stderr.contains("ContainerCreating"), "\(result.stderr)")
    }

    @Test("a migration into Kubernetes whose client never reports fails at its deadline with KUBERNETES_OUTCOME_UNKNOWN")
    func outcomeNeverReported() throws {
        let id = try push(Self.crioArchive)
        let body = #"{"checkpoint":"\#(id)","target":"crio-1","kubernetes":{"namespace":"shop","pod":"lost"},"timeout_seconds":1}"#
        let created = try post("/api/v1/migrations", body)
        #expect(created.status == 201, "\(created.text)")
        let view = try JSONSerialization.jsonObject(with: Data(created.body)) as? [String: Any] ?? [:]
        #expect(view["state"] as? String == "restoring")
        let migrationID = view["id"] as? String ?? ""
        let failed = server.eventually(15) {
            (try? self.migration(migrationID))?["state"] as? String == "failed"
        }
        #expect(failed)
        #expect(((try migration(migrationID))["error"] as? [String: String])?["code"] == "KUBERNETES_OUTCOME_UNKNOWN")
        // An outcome after the end is refused; an outcome for an ordinary migration is refused.
        let late = try post("/api/v1/migrations/\(migrationID)/outcome", #"{"succeeded":true}"#)
        #expect(late.status == 409, "\(late.text)")
        let bad = try post("/api/v1/migrations", #"{"source":{"node":"a","container":"c"},"target":"crio-1","kubernetes":{"namespace":"shop","pod":"x"}}"#)
        #expect(bad.status == 400, "\(bad.text)")
        let badName = try post("/api/v1/migrations", #"{"checkpoint":"\#(id)","target":"crio-1","kubernetes":{"namespace":"Shop","pod":"x"}}"#)
        #expect(badName.status == 400, "\(badName.text)")
    }

    @Test("in a pod: the service account's token, CA and namespace; $KUBECONFIG wins over them, as in kubectl")
    func inClusterCredentials() throws {
        let account = file("serviceaccount")
        try FileManager.default.createDirectory(at: account, withIntermediateDirectories: true)
        try Self.token.write(to: account.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: file("ca.pem"), to: account.appendingPathComponent("ca.crt"))
        try "ferry-system\n".write(to: account.appendingPathComponent("namespace"), atomically: true, encoding: .utf8)
        let environment = ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(port), "HOME": directory.path]
        let credentials = try KubernetesCredentials.load(kubeconfig: nil, context: nil, environment: environment,
                                                         serviceAccount: account.path)
        #expect(credentials.origin == "the pod's service account")
        #expect(credentials.namespace == "ferry-system")
        let node = try KubernetesClient(credentials: credentials).node("crio-1")
        #expect(node.status?.nodeInfo?.containerRuntimeVersion == "cri-o://1.31.1")
        #expect(try requests().last?["auth"] as? String == "token")
        var withKubeconfig = environment
        withKubeconfig["KUBECONFIG"] = file("kubeconfig").path + ":/elsewhere"
        let chosen = try KubernetesCredentials.load(kubeconfig: nil, context: nil, environment: withKubeconfig, serviceAccount: account.path)
        #expect(chosen.origin.hasPrefix(file("kubeconfig").path))
        chosen.discard()
    }

    @Test("kubectl reads the generated manifest (YAML and JSON) into a typed Pod and loses no field of it")
    func kubectlReadsTheManifest() throws {
        let kubectl = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let kubectl else {
            Issue.record("kubectl is missing: scripts/install-deps.sh --test installs Debian's kubernetes-client")
            return
        }
        let id = try push(try archiveWithLimits())
        for format in [[], ["--json"]] {
            let manifest = try Fixtures.ferry(["migrate"] + common + ["--checkpoint", id, "--to-kubernetes", "--node", "crio-1",
                                                                      "--pull-secret", "ferry-registry", "--manifest-only"] + format)
            #expect(manifest.status == 0, "\(manifest.stderr)")
            let path = try Fixtures.write(Array(manifest.stdoutData), name: format.isEmpty ? "pod.yaml" : "pod.json")
            // Client-side dry run: kubectl maps the kind through the double's discovery and decodes the manifest into
            // its Pod type (a wrong type or a bad quantity is an error), then prints the object it decoded.
            let typed = try Fixtures.run(kubectl, ["--kubeconfig", file("kubeconfig").path, "create", "--dry-run=client",
                                                   "--validate=false", "-f", path, "-o", "json"])
            #expect(typed.status == 0, "kubectl: \(typed.stderr)")
            let decoded = try #require(try JSONSerialization.jsonObject(with: typed.stdoutData) as? [String: Any])
            let original: [String: Any]
            if format.isEmpty {
                let converted = try Fixtures.run("/usr/bin/env", ["python3", "-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", path])
                original = try JSONSerialization.jsonObject(with: converted.stdoutData) as? [String: Any] ?? [:]
            } else {
                original = try JSONSerialization.jsonObject(with: manifest.stdoutData) as? [String: Any] ?? [:]
            }
            // Every field Ferry wrote survives the typed decoding (an unknown or misplaced field would be dropped);
            // kubectl adds only empty defaults (creationTimestamp: null, status: {}, resources: {}).
            #expect(Self.contains(decoded, original), "kubectl dropped or changed a field:\n\(typed.stdout)")
        }
    }

    /// Whether `whole` has every key of `part` with the same value, recursively (arrays element by element).
    static func contains(_ whole: Any?, _ part: Any?) -> Bool {
        switch (whole, part) {
        case (let w as [String: Any], let p as [String: Any]):
            return p.allSatisfy { key, value in contains(w[key], value) }
        case (let w as [Any], let p as [Any]):
            return w.count == p.count && zip(w, p).allSatisfy { contains($0, $1) }
        case (let w as NSObject, let p as NSObject):
            return w == p
        default:
            return false
        }
    }
}
