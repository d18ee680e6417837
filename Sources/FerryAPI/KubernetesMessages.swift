/// A migration that restores into Kubernetes (`MigrationRequest.kubernetes`): the Pod the client creates on the
/// migration's `target`, a Kubernetes node. The service records such a migration but does not drive it: the
/// client that holds the Kubernetes credentials creates and follows the Pod and reports the outcome
/// (`KubernetesOutcome`); a migration whose outcome never comes fails at its deadline.
public struct KubernetesTarget: Codable, Sendable, Equatable {
    public var namespace: String
    public var pod: String

    public init(namespace: String, pod: String) {
        self.namespace = namespace
        self.pod = pod
    }
}

/// `POST /api/v1/migrations/{id}/outcome` (client → service): what became of a migration's Pod.
public struct KubernetesOutcome: Codable, Sendable, Equatable {
    /// True when the Pod's container runs (restored); false when the Pod failed (`error` says why).
    public var succeeded: Bool
    public var error: MigrationView.Failure?
    /// The Pod's phase and UID as last seen.
    public var phase: String?
    public var podUID: String?

    public init(succeeded: Bool, error: MigrationView.Failure? = nil, phase: String? = nil, podUID: String? = nil) {
        self.succeeded = succeeded
        self.error = error
        self.phase = phase
        self.podUID = podUID
    }

    enum CodingKeys: String, CodingKey {
        case succeeded, error, phase
        case podUID = "pod_uid"
    }
}
