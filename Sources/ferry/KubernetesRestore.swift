import ArgumentParser
import FerryAPI
import FerryClient
import Foundation

/// `ferry migrate --checkpoint ID --to-kubernetes --node NODE`: preflight against the node, a migration recorded
/// in Ferry, the Pod created through the Kubernetes API and followed until its container runs or fails, and that
/// outcome recorded as the migration's.
///
/// Crash safety: the migration is recorded before the Pod is created and the Pod carries its ID
/// (`ferry.io/migration`), so the same command run again (same `--idempotency-key`) finds both and goes on
/// following; a migration whose client never reports fails at its deadline with KUBERNETES_OUTCOME_UNKNOWN.
extension MigrateCommand {
    static let outcomeGraceSeconds: Double = 30

    func restoreInKubernetes(client: FerryClient, checkpoint: String, node: String) throws {
        let credentials: KubernetesCredentials
        do {
            credentials = try KubernetesCredentials.load(kubeconfig: kubeconfig, context: context)
        } catch {
            return try refuse(error.description)
        }
        defer { credentials.discard() }
        let kubernetes = KubernetesClient(credentials: credentials)

        // Preflight: nothing is recorded or created unless the node can restore this checkpoint.
        // Read once: the draft (for preflight and the Pod's name) and the Pod itself come from the same answer.
        let summary = try checkpointSummary(client: client, checkpoint: checkpoint)
        let draft = try restorePod(summary, node: node, migration: nil)
        let nodeObject: KubernetesObjects.Node
        do {
            nodeObject = try kubernetes.node(node)
        } catch {
            return try refuse(error.code == "KUBERNETES_NOT_FOUND" ? "Kubernetes has no node \(node) [NODE_NOT_FOUND]" : error.description)
        }
        let findings = KubernetesPreflight.findings(node: nodeObject, featureGates: kubernetes.kubeletFeatureGates(node: node),
                                                    checkpoint: draft.facts)
        var blocking: [KubernetesPreflight.Finding] = []
        for finding in findings {
            let waived = waivers.contains(finding.code)
            let note = finding.severity == "error" && !waived ? "" : (waived ? " (waived)" : "")
            progress("preflight \(finding.severity): \(finding.message) [\(finding.code)]\(note)")
            if finding.severity == "error" && !waived { blocking.append(finding) }
        }
        if !blocking.isEmpty {
            return try refuse("preflight refused the restore on \(node) (\(blocking.map(\.code).joined(separator: ", "))); --waive CODE to accept a finding [PREFLIGHT_FAILED]")
        }

        // Recorded first, so a Pod never exists that no migration describes.
        let target = KubernetesTarget(namespace: draft.pod.metadata.namespace, pod: draft.pod.metadata.name)
        // The record's deadline leaves the client time to report after its own (--timeout) has passed.
        let request = MigrationRequest(checkpoint: checkpoint, target: node, waive: waivers.isEmpty ? nil : waivers,
                                       timeoutSeconds: timeout + Self.outcomeGraceSeconds, kubernetes: target)
        let migration = try runClient {
            try client.decode(MigrationView.self, "POST", "/api/v1/migrations", json: try JSONEncoder.wire.encode(request),
                              idempotencyKey: idempotencyKey)
        }
        if migration.state.isTerminal { return try finish(migration) }
        let pod = try restorePod(summary, node: node, migration: migration.id).pod
        let name = "\(target.namespace)/\(target.pod)"

        do {
            _ = try kubernetes.createPod(pod)
            progress("created Pod \(name) on \(node) (migration \(migration.id))")
        } catch where error.code == "POD_EXISTS" {
            // Ours from an earlier run of this migration: follow it. Anyone else's: leave it alone.
            let existing = try? kubernetes.pod(namespace: target.namespace, name: target.pod)
            guard existing?.metadata.annotations?["ferry.io/migration"] == migration.id else {
                return try report(client: client, migration: migration,
                                  KubernetesOutcome(succeeded: false, error: .init(code: "POD_EXISTS",
                                      message: "a Pod \(name) not made by this migration exists; choose another --pod-name")))
            }
            progress("Pod \(name) exists from an earlier run of migration \(migration.id); following it")
        } catch {
            return try report(client: client, migration: migration,
                              KubernetesOutcome(succeeded: false, error: .init(code: error.code, message: error.message)))
        }

        let deadline = Date().addingTimeInterval(timeout)
        var lastDetail = ""
        var lastSeen: KubernetesObjects.Pod?
        while Date() < deadline {
            let current: KubernetesObjects.Pod
            do {
                current = try kubernetes.pod(namespace: target.namespace, name: target.pod)
            } catch where error.code == "KUBERNETES_UNREACHABLE" {
                // The API server may be briefly away; the deadline bounds the wait.
                progress("Pod \(name): \(error.message); retrying")
                Thread.sleep(forTimeInterval: 1)
                continue
            } catch {
                let failure = error.code == "KUBERNETES_NOT_FOUND"
                    ? MigrationView.Failure(code: "POD_DELETED", message: "the Pod \(name) was deleted before it ran")
                    : MigrationView.Failure(code: error.code, message: error.message)
                return try report(client: client, migration: migration, KubernetesOutcome(succeeded: false, error: failure))
            }
            lastSeen = current
            switch PodProgress(current, container: pod.spec.containers[0].name) {
            case .running:
                return try report(client: client, migration: migration,
                                  KubernetesOutcome(succeeded: true, phase: current.status?.phase, podUID: current.metadata.uid))
            case .failed(let code, let message):
                return try report(client: client, migration: migration,
                                  KubernetesOutcome(succeeded: false, error: .init(code: code, message: message),
                                                    phase: current.status?.phase, podUID: current.metadata.uid))
            case .pending(let detail):
                if detail != lastDetail { progress("Pod \(name): \(detail)") }
                lastDetail = detail
            }
            Thread.sleep(forTimeInterval: 1)
        }
        try report(client: client, migration: migration,
                   KubernetesOutcome(succeeded: false, error: .init(code: "POD_TIMEOUT",
                       message: "the Pod \(name) did not run within \(Int(timeout)) s (last: \(lastDetail.isEmpty ? "no status" : lastDetail))"),
                                     phase: lastSeen?.status?.phase, podUID: lastSeen?.metadata.uid))
    }

    /// Records the outcome in Ferry, then prints it like any migration (exit 1 unless it succeeded).
    private func report(client: FerryClient, migration: MigrationView, _ outcome: KubernetesOutcome) throws {
        let recorded = try runClient {
            try client.decode(MigrationView.self, "POST", "/api/v1/migrations/\(migration.id)/outcome",
                              json: try JSONEncoder.wire.encode(outcome))
        }
        try finish(recorded)
    }

    private func refuse(_ line: String) throws {
        FileHandle.standardError.write(Data("ferry: \(line)\n".utf8))
        throw ExitCode(ClientExit.refused)
    }
}
