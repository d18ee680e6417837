import FerryTestSupport
import Foundation
import Testing

/// `deploy/kubernetes/`: the manifests parse, and grant what the README says and no more. (No API server runs
/// here, so they are checked as documents, with PyYAML: not against a cluster's schema.)
@Suite("Kubernetes deployment manifests")
struct DeployManifestTests {
    /// The documents of a manifest file as JSON, through python3's yaml.
    static func documents(_ name: String) throws -> [[String: Any]] {
        let path = Fixtures.repositoryRoot.appendingPathComponent("deploy/kubernetes/\(name)").path
        let result = try Fixtures.run("/usr/bin/env", ["python3", "-c", "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))", path])
        guard result.status == 0 else { throw FixtureError("\(name): \(result.stderr)") }
        return (try JSONSerialization.jsonObject(with: result.stdoutData)) as? [[String: Any]] ?? []
    }

    static func first(_ documents: [[String: Any]], kind: String) -> [String: Any]? {
        documents.first { $0["kind"] as? String == kind }
    }

    static func container(_ workload: [String: Any]?) -> [String: Any]? {
        (((workload?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
            .flatMap { ($0["containers"] as? [[String: Any]])?.first }
    }

    @Test("the agent may create nodes/checkpoint and nothing else, runs the kubelet driver and collects the kubelet's directory")
    func agent() throws {
        let documents = try Self.documents("agent.yaml")
        let role = try #require(Self.first(documents, kind: "ClusterRole"))
        let rules = role["rules"] as? [[String: Any]] ?? []
        #expect(rules.count == 1)
        #expect(rules.first?["resources"] as? [String] == ["nodes/checkpoint"] && rules.first?["verbs"] as? [String] == ["create"])
        let daemonSet = try #require(Self.first(documents, kind: "DaemonSet"))
        let container = try #require(Self.container(daemonSet))
        let arguments = container["args"] as? [String] ?? []
        for expected in ["--driver=kubelet", "--collect=/var/lib/kubelet/checkpoints", "--kubelet-url=https://$(NODE_IP):10250"] {
            #expect(arguments.contains(expected), "\(arguments)")
        }
        let environment = container["env"] as? [[String: Any]] ?? []
        let node = environment.first { $0["name"] as? String == "FERRY_NODE" }
        #expect(((node?["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String == "spec.nodeName")
        let volumes = ((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any]).flatMap { ($0["spec"] as? [String: Any])?["volumes"] as? [[String: Any]] } ?? []
        #expect(volumes.contains { ($0["hostPath"] as? [String: Any])?["path"] as? String == "/var/lib/kubelet/checkpoints" })
        // Every flag the manifest passes is one ferry agent takes.
        let help = try Fixtures.ferry(["agent", "--help"]).stdout
        for flag in arguments.dropFirst().map({ String($0.split(separator: "=").first ?? "") }) {
            #expect(help.contains(flag), "ferry agent has no \(flag)")
        }
    }

    @Test("the service is one replica with a volume, its tokens from a Secret, and no API credentials")
    func service() throws {
        let documents = try Self.documents("service.yaml")
        let set = try #require(Self.first(documents, kind: "StatefulSet"))
        #expect((set["spec"] as? [String: Any])?["replicas"] as? Int == 1)
        #expect(((set["spec"] as? [String: Any])?["volumeClaimTemplates"] as? [[String: Any]])?.isEmpty == false)
        let podSpec = ((set["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        #expect(podSpec?["automountServiceAccountToken"] as? Bool == false)
        let arguments = Self.container(set)?["args"] as? [String] ?? []
        let help = try Fixtures.ferry(["serve", "--help"]).stdout
        for flag in arguments where flag.hasPrefix("--") { #expect(help.contains(flag), "ferry serve has no \(flag)") }
    }

    @Test("the restorer may get nodes (and nodes/proxy), create and get pods in a bound namespace, and nothing else")
    func restorer() throws {
        let documents = try Self.documents("restorer.yaml")
        let roles = documents.filter { $0["kind"] as? String == "ClusterRole" }
        var grants: [String: [String]] = [:]
        for role in roles {
            for rule in role["rules"] as? [[String: Any]] ?? [] {
                #expect(rule["apiGroups"] as? [String] == [""])
                for resource in rule["resources"] as? [String] ?? [] { grants[resource, default: []] += rule["verbs"] as? [String] ?? [] }
            }
        }
        #expect(grants == ["nodes": ["get"], "nodes/proxy": ["get"], "pods": ["create", "get"]], "\(grants)")
        // Pods are granted per namespace (a RoleBinding), nodes cluster-wide.
        let podBinding = documents.first { $0["kind"] as? String == "RoleBinding" }
        #expect((podBinding?["roleRef"] as? [String: Any])?["name"] as? String == "ferry-restorer-pods")
        let clusterBindings = documents.filter { $0["kind"] as? String == "ClusterRoleBinding" }
        #expect(clusterBindings.map { ($0["roleRef"] as? [String: Any])?["name"] as? String } == ["ferry-restorer-nodes"])
    }
}
