import FerryAPI
import FerryCatalog

/// Which checkpoints retention policies delete, as a pure function of the catalog's checkpoints (oldest upload
/// first), the policies and an orphan test. No I/O: ``RetentionService`` performs the plan.
///
/// The checkpoint-restore-operator's model:
/// - **The most specific policy governs a checkpoint**: the first container policy with its namespace, pod and
///   container; else the first pod policy with its namespace and pod; else the first namespace policy with its
///   namespace; else the global policy.
/// - **Scopes.** A container policy's limits count that container's checkpoints; a pod policy's, the pod's
///   checkpoints that no container policy governs; a namespace policy's, the namespace's that no container or pod
///   policy governs. The global policy applies, to the checkpoints it governs, its per-container limits, then its
///   per-pod limits, then its per-namespace limits, each pass seeing what the one before deleted.
/// - **In each scope, in order:** with `retainOrphan: false` and an orphaned scope, every deletable checkpoint
///   goes (and nothing else is checked); then each deletable checkpoint larger than `maxCheckpointSize`; then the
///   oldest deletable ones until at most `maxCheckpoints` remain; then the oldest until at most `maxTotalSize`
///   bytes remain.
/// - **Pinned checkpoints and those an unfinished migration uses are never deleted but count toward every limit.**
///   A limit they keep from being met is reported as a ``RetentionBlock`` naming them.
enum RetentionPlanner {
    /// A scope's level, for the orphan test.
    enum Level: String, Sendable {
        case container, pod, namespace
    }

    struct Plan: Sendable, Equatable {
        var deletions: [RetentionDeletion] = []
        var blocked: [RetentionBlock] = []
    }

    private struct Limits {
        var policy: String
        var retainOrphan: Bool
        var maxCheckpoints: Int?
        var maxCheckpointSize: Int64?
        var maxTotalSize: Int64?
    }

    private enum Governor: Hashable {
        case container(Int), pod(Int), namespace(Int), global
    }

    /// - Parameter isOrphan: whether none of these checkpoints' containers still exists (a scope's checkpoints and
    ///   its level); called only for scopes whose policy has `retainOrphan: false`.
    static func plan(_ items: [RetentionItem], policies: RetentionPolicies,
                     isOrphan: ([RetentionItem], Level) -> Bool) -> Plan {
        var plan = Plan()
        var deleted: Set<String> = []
        let containers = policies.containerPolicies ?? []
        let pods = policies.podPolicies ?? []
        let namespaces = policies.namespacePolicies ?? []
        func governor(_ item: RetentionItem) -> Governor {
            if let index = containers.firstIndex(where: { $0.namespace == item.namespace && $0.pod == item.pod && $0.container == item.container }) {
                return .container(index)
            }
            if let index = pods.firstIndex(where: { $0.namespace == item.namespace && $0.pod == item.pod }) { return .pod(index) }
            if let index = namespaces.firstIndex(where: { $0.namespace == item.namespace }) { return .namespace(index) }
            return .global
        }
        let governed = Dictionary(grouping: items, by: governor)

        func run(_ scopeItems: [RetentionItem], _ level: Level, _ limits: Limits) {
            let live = scopeItems.filter { !deleted.contains($0.id) }
            guard let first = live.first else { return }
            let scope = Self.describe(level, first)
            evaluate(live, scope: scope, level: level, limits: limits, plan: &plan, deleted: &deleted, isOrphan: isOrphan)
        }

        for (index, policy) in containers.enumerated() {
            guard let items = governed[.container(index)] else { continue }
            run(items, .container, Limits(policy: "containerPolicies[\(index)]", retainOrphan: policy.retainOrphan ?? true,
                                          maxCheckpoints: policy.maxCheckpoints, maxCheckpointSize: policy.maxCheckpointSize?.bytes,
                                          maxTotalSize: policy.maxTotalSize?.bytes))
        }
        for (index, policy) in pods.enumerated() {
            guard let items = governed[.pod(index)] else { continue }
            run(items, .pod, Limits(policy: "podPolicies[\(index)]", retainOrphan: policy.retainOrphan ?? true,
                                    maxCheckpoints: policy.maxCheckpoints, maxCheckpointSize: policy.maxCheckpointSize?.bytes,
                                    maxTotalSize: policy.maxTotalSize?.bytes))
        }
        for (index, policy) in namespaces.enumerated() {
            guard let items = governed[.namespace(index)] else { continue }
            run(items, .namespace, Limits(policy: "namespacePolicies[\(index)]", retainOrphan: policy.retainOrphan ?? true,
                                          maxCheckpoints: policy.maxCheckpoints, maxCheckpointSize: policy.maxCheckpointSize?.bytes,
                                          maxTotalSize: policy.maxTotalSize?.bytes))
        }
        if let global = policies.globalPolicy, let items = governed[.global] {
            let passes: [(Level, Int?, Int64?, (RetentionItem) -> [String])] = [
                (.container, global.maxCheckpointsPerContainer, global.maxTotalSizePerContainer?.bytes, { [$0.namespace, $0.pod, $0.container] }),
                (.pod, global.maxCheckpointsPerPod, global.maxTotalSizePerPod?.bytes, { [$0.namespace, $0.pod] }),
                (.namespace, global.maxCheckpointsPerNamespace, global.maxTotalSizePerNamespace?.bytes, { [$0.namespace] }),
            ]
            for (level, count, total, key) in passes {
                // Scopes in the order of their oldest checkpoint, so the plan reads the same every time.
                var order: [[String]] = []
                let groups = Dictionary(grouping: items) { item in
                    let k = key(item)
                    if !order.contains(k) { order.append(k) }
                    return k
                }
                for k in order {
                    run(groups[k] ?? [], level, Limits(policy: "globalPolicy", retainOrphan: global.retainOrphan ?? true,
                                                      maxCheckpoints: count, maxCheckpointSize: global.maxCheckpointSize?.bytes,
                                                      maxTotalSize: total))
                }
            }
        }
        return plan
    }

    private static func evaluate(_ items: [RetentionItem], scope: String, level: Level, limits: Limits, plan: inout Plan,
                                 deleted: inout Set<String>, isOrphan: ([RetentionItem], Level) -> Bool) {
        var remaining = items
        func delete(_ item: RetentionItem, _ reason: String) {
            plan.deletions.append(RetentionDeletion(
                checkpoint: item.id, container: item.container, pod: item.pod, namespace: item.namespace, size: item.size,
                uploadedAt: item.uploadedAt, policy: limits.policy, reason: reason))
            deleted.insert(item.id)
            remaining.removeAll { $0.id == item.id }
        }
        let deletable = { (item: RetentionItem) in !item.pinned && !item.inUse }

        if !limits.retainOrphan, isOrphan(items, level) {
            for item in items where deletable(item) {
                delete(item, "retainOrphan: false, and no node reports the \(level.rawValue) of \(scope) any more")
            }
            return
        }
        if let maximum = limits.maxCheckpointSize {
            for item in items where deletable(item) && item.size > maximum {
                delete(item, "maxCheckpointSize: \(item.size) bytes is more than \(maximum)")
            }
        }
        if let maximum = limits.maxCheckpoints, remaining.count > maximum {
            let count = remaining.count
            for item in remaining.filter(deletable).prefix(count - maximum) {
                delete(item, "maxCheckpoints: \(count) checkpoints of \(scope), at most \(maximum) kept; this is among the oldest")
            }
            if remaining.count > maximum {
                plan.blocked.append(RetentionBlock(
                    scope: scope, policy: limits.policy, limit: "maxCheckpoints", limitValue: Int64(maximum),
                    remaining: Int64(remaining.count), blocking: remaining.filter { !deletable($0) }.map(\.id)))
            }
        }
        if let maximum = limits.maxTotalSize {
            var total = remaining.reduce(0) { $0 + $1.size }
            if total > maximum {
                let before = total
                for item in remaining.filter(deletable) where total > maximum {
                    delete(item, "maxTotalSize: \(before) bytes in \(scope), at most \(maximum) kept; this is among the oldest")
                    total -= item.size
                }
                if total > maximum {
                    plan.blocked.append(RetentionBlock(
                        scope: scope, policy: limits.policy, limit: "maxTotalSize", limitValue: maximum, remaining: total,
                        blocking: remaining.filter { !deletable($0) }.map(\.id)))
                }
            }
        }
    }

    /// `container NS/POD/CONTAINER`, `pod NS/POD`, `namespace NS` (empty parts shown as `-`).
    static func describe(_ level: Level, _ item: RetentionItem) -> String {
        let part = { (text: String) in text.isEmpty ? "-" : text }
        switch level {
        case .container: return "container \(part(item.namespace))/\(part(item.pod))/\(item.container)"
        case .pod: return "pod \(part(item.namespace))/\(part(item.pod))"
        case .namespace: return "namespace \(part(item.namespace))"
        }
    }
}
