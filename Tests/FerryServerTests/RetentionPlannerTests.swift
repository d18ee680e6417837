@testable import FerryServer
import FerryAPI
import FerryCatalog
import Foundation
import Testing

/// The retention policies' decisions without I/O: which checkpoints go, by which policy, and which limits pinned or
/// in-use checkpoints block. The end-to-end test (RetentionTests) runs the same model on real archives.
@Suite("retention planner")
struct RetentionPlannerTests {
    /// A checkpoint uploaded at minute `minute`.
    static func item(_ id: String, _ namespace: String, _ pod: String, _ container: String, size: Int64 = 100, minute: Int,
                     pinned: Bool = false, inUse: Bool = false) -> RetentionItem {
        RetentionItem(id: id, namespace: namespace, pod: pod, container: container, size: size,
                      uploadedAt: String(format: "2026-12-01T10:%02d:00.000Z", minute), pinned: pinned, inUse: inUse)
    }

    static func deleted(_ plan: RetentionPlanner.Plan) -> [String] { plan.deletions.map(\.checkpoint) }

    @Test("the global policy's per-container, per-pod and per-namespace limits apply in that order, oldest first")
    func globalPasses() {
        let items = [
            Self.item("a1", "ns", "p", "a", minute: 1), Self.item("a2", "ns", "p", "a", minute: 2),
            Self.item("a3", "ns", "p", "a", minute: 3), Self.item("b1", "ns", "p", "b", minute: 4),
            Self.item("b2", "ns", "p", "b", minute: 5), Self.item("c1", "ns", "q", "c", minute: 6),
        ]
        let policies = RetentionPolicies(globalPolicy: .init(maxCheckpointsPerNamespace: 3, maxCheckpointsPerPod: 3,
                                                             maxCheckpointsPerContainer: 2))
        let plan = RetentionPlanner.plan(items, policies: policies) { _, _ in false }
        // container: a1 (a has 3 > 2); pod p: a2 (a2 a3 b1 b2 = 4 > 3); namespace: a3 (a3 b1 b2 c1 = 4 > 3).
        #expect(Self.deleted(plan) == ["a1", "a2", "a3"])
        #expect(plan.deletions.map(\.policy) == ["globalPolicy", "globalPolicy", "globalPolicy"])
        #expect(plan.deletions[0].reason.hasPrefix("maxCheckpoints: 3 checkpoints of container ns/p/a"), "\(plan.deletions[0].reason)")
        #expect(plan.deletions[1].reason.contains("of pod ns/p"))
        #expect(plan.deletions[2].reason.contains("of namespace ns"))
        #expect(plan.blocked.isEmpty)
    }

    @Test("the most specific policy governs: a container policy's checkpoints leave the pod's count, a pod policy's the namespace's")
    func precedence() {
        let items = [
            Self.item("k1", "shop", "cart", "special", minute: 1), Self.item("k2", "shop", "cart", "special", minute: 2),
            Self.item("k3", "shop", "cart", "special", minute: 3),
            Self.item("c1", "shop", "cart", "counter", minute: 4), Self.item("c2", "shop", "cart", "counter", minute: 5),
            Self.item("o1", "shop", "other", "x", minute: 6), Self.item("o2", "shop", "other", "x", minute: 7),
            Self.item("g1", "free", "p", "x", minute: 8), Self.item("g2", "free", "p", "x", minute: 9),
        ]
        let policies = RetentionPolicies(
            globalPolicy: .init(maxCheckpointsPerContainer: 1),
            namespacePolicies: [.init(namespace: "shop", maxCheckpoints: 1)],
            podPolicies: [.init(namespace: "shop", pod: "cart", maxCheckpoints: 1)],
            containerPolicies: [.init(namespace: "shop", pod: "cart", container: "special", maxCheckpoints: 5)])
        let plan = RetentionPlanner.plan(items, policies: policies) { _, _ in false }
        // special: 3 ≤ 5, all kept; the pod policy counts c1 c2 only (not special's) → c1; the namespace policy
        // counts o1 o2 only (cart is the pod policy's) → o1; free/p/x under the global policy → g1.
        #expect(Self.deleted(plan) == ["c1", "o1", "g1"])
        #expect(plan.deletions.map(\.policy) == ["podPolicies[0]", "namespacePolicies[0]", "globalPolicy"])
    }

    @Test("pinned and in-use checkpoints are never deleted but count; the limit they block names them")
    func pinsCount() {
        let items = [
            Self.item("w1", "", "", "web", minute: 1, pinned: true), Self.item("w2", "", "", "web", minute: 2),
            Self.item("w3", "", "", "web", minute: 3, inUse: true), Self.item("w4", "", "", "web", minute: 4),
        ]
        let policies = RetentionPolicies(containerPolicies: [.init(namespace: "", pod: "", container: "web", maxCheckpoints: 1)])
        let plan = RetentionPlanner.plan(items, policies: policies) { _, _ in false }
        #expect(Self.deleted(plan) == ["w2", "w4"], "the deletable ones go, even the newest, to get as near the limit as it can")
        #expect(plan.blocked == [RetentionBlock(scope: "container -/-/web", policy: "containerPolicies[0]", limit: "maxCheckpoints",
                                               limitValue: 1, remaining: 2, blocking: ["w1", "w3"])])
    }

    @Test("maxCheckpointSize deletes each larger archive; maxTotalSize the oldest until the rest fits")
    func sizes() {
        let items = [
            Self.item("s1", "n", "p", "c", size: 400, minute: 1), Self.item("s2", "n", "p", "c", size: 900, minute: 2),
            Self.item("s3", "n", "p", "c", size: 300, minute: 3), Self.item("s4", "n", "p", "c", size: 300, minute: 4),
            Self.item("big", "n", "p", "d", size: 2000, minute: 5, pinned: true),
        ]
        let policies = RetentionPolicies(podPolicies: [.init(namespace: "n", pod: "p", maxCheckpointSize: ByteQuantity(bytes: 800),
                                                            maxTotalSize: ByteQuantity(bytes: 2700))])
        let plan = RetentionPlanner.plan(items, policies: policies) { _, _ in false }
        // s2 > 800; then 400 + 300 + 300 + 2000 = 3000 > 2700 → s1 goes (2600); big is pinned, above the size limit, kept.
        #expect(Self.deleted(plan) == ["s2", "s1"])
        #expect(plan.deletions[0].reason.hasPrefix("maxCheckpointSize: 900 bytes is more than 800"))
        #expect(plan.blocked.isEmpty)
        let tight = RetentionPolicies(podPolicies: [.init(namespace: "n", pod: "p", maxTotalSize: ByteQuantity(bytes: 1000))])
        let blocked = RetentionPlanner.plan(items, policies: tight) { _, _ in false }
        #expect(Self.deleted(blocked) == ["s1", "s2", "s3", "s4"])
        #expect(blocked.blocked.first?.limit == "maxTotalSize" && blocked.blocked.first?.remaining == 2000 && blocked.blocked.first?.blocking == ["big"])
    }

    @Test("retainOrphan: false deletes an orphaned scope's deletable checkpoints and skips its other limits")
    func orphans() {
        let items = [
            Self.item("g1", "", "", "ghost", minute: 1), Self.item("g2", "", "", "ghost", minute: 2, pinned: true),
            Self.item("a1", "", "", "alive", minute: 3), Self.item("a2", "", "", "alive", minute: 4),
        ]
        let policies = RetentionPolicies(containerPolicies: [
            .init(namespace: "", pod: "", container: "ghost", retainOrphan: false, maxCheckpoints: 5),
            .init(namespace: "", pod: "", container: "alive", retainOrphan: false, maxCheckpoints: 1),
        ])
        var asked: [String] = []
        let plan = RetentionPlanner.plan(items, policies: policies) { scope, _ in
            asked.append(scope[0].container)
            return scope[0].container == "ghost"
        }
        #expect(Self.deleted(plan) == ["g1", "a1"])
        #expect(plan.deletions[0].reason.hasPrefix("retainOrphan: false"))
        #expect(asked == ["ghost", "alive"])
        // Only scopes whose policy drops orphans are asked about.
        var none = 0
        _ = RetentionPlanner.plan(items, policies: RetentionPolicies(globalPolicy: .init(maxCheckpointsPerContainer: 10))) { _, _ in
            none += 1
            return true
        }
        #expect(none == 0)
    }

    @Test("an orphan is a Podman container no node reports any more, by name or ID; never a Kubernetes checkpoint")
    func orphanRule() {
        let podman = [RetentionItem(id: "x", namespace: "", pod: "", container: "web", containerID: "abc", size: 1, uploadedAt: "t")]
        #expect(RetentionService.isOrphan(podman, reported: ["counter"]))
        #expect(!RetentionService.isOrphan(podman, reported: ["web"]))
        #expect(!RetentionService.isOrphan(podman, reported: ["abc"]))
        #expect(!RetentionService.isOrphan(podman, reported: nil), "no node reports its containers: unknown, kept")
        let kubernetes = [RetentionItem(id: "y", namespace: "shop", pod: "cart", container: "web", size: 1, uploadedAt: "t")]
        #expect(!RetentionService.isOrphan(kubernetes, reported: []))
    }

    @Test("the policy file: YAML or JSON, the operator's resource or its spec, sizes as quantities; unknown fields refused")
    func configuration() throws {
        let yaml = """
            apiVersion: criu.org/v1
            kind: CheckpointRestoreOperator
            spec:
              checkpointDirectory: /var/lib/kubelet/checkpoints
              applyPoliciesImmediately: true
              globalPolicy:
                retainOrphan: true
                maxCheckpointsPerContainer: 10
                maxCheckpointSize: 10Gi
                maxTotalSizePerNamespace: 500M
              containerPolicies:
                - namespace: ""
                  pod: ""
                  container: web
                  maxCheckpoints: 2
                  maxTotalSize: 1536
            """
        let policies = try RetentionConfiguration.parse(yaml)
        #expect(policies.applyPoliciesImmediately == true)
        #expect(policies.globalPolicy?.maxCheckpointSize?.bytes == 10 << 30)
        #expect(policies.globalPolicy?.maxTotalSizePerNamespace?.bytes == 500_000_000)
        #expect(policies.containerPolicies?.first == .init(namespace: "", pod: "", container: "web", maxCheckpoints: 2,
                                                          maxTotalSize: ByteQuantity(bytes: 1536)))
        let json = #"{"podPolicies": [{"namespace": "shop", "pod": "cart", "maxCheckpoints": 3}]}"#
        #expect(try RetentionConfiguration.parse(json).podPolicies?.first?.maxCheckpoints == 3)
        for (bad, says) in [
            ("globalPolicy:\n  maxCheckpointPerContainer: 3", "unknown field maxCheckpointPerContainer"),
            ("podPolicies:\n  - namespace: a\n    maxCheckpoints: 1", "podPolicies[0] needs pod"),
            ("globalPolicy:\n  maxCheckpointsPerPod: 0", "at least 1"),
            ("globalPolicy:\n  maxCheckpointSize: ten", "quantity"),
            ("[1, 2]", "mapping"),
        ] {
            #expect(throws: RetentionConfiguration.Invalid.self) { try RetentionConfiguration.parse(bad) }
            do {
                _ = try RetentionConfiguration.parse(bad)
            } catch {
                #expect(error.message.contains(says), "\(error.message)")
            }
        }
    }
}
