import FerryValidation

/// `POST /api/v1/checkpoints/{id}/preflight`: the target and the restore options to check against.
struct PreflightRequest: Decodable {
    /// The target's facts given inline…
    var target: TargetFacts?
    /// …or a registered node, whose agent reported them.
    var node: String?
    var options: RestoreOptions?
}

/// The answer of a preflight: whether the restore can go ahead, and why not.
struct PreflightResponse: Encodable {
    var checkpoint: String
    var restorable: Bool
    var findings: [Finding]
}
