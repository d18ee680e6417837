import FerryAPI
public import FerryCatalog
public import FerryProvenance
import Foundation

/// Signs what the catalog records of a checkpoint: the statement binds its digest to its identity, findings and
/// place in its container's chain. The catalog calls it inside the insert's transaction (``Catalog/insert``).
public struct CheckpointSigning: Sendable {
    public let signer: ProvenanceSigner

    public init(signer: ProvenanceSigner) { self.signer = signer }

    /// The key file in a data directory.
    public static func keyPath(dataDirectory: String) -> String { dataDirectory + "/provenance-key" }

    public func sign(_ record: CheckpointRecord, findings: [FindingRecord], at position: ChainPosition) throws
        -> (envelope: String, digest: String)
    {
        let statement = ProvenanceStatement(
            subject: .init(digest: "sha256:" + record.id, size: record.size, compression: record.compression),
            identity: .init(engine: record.engine, containerID: record.containerID, containerName: record.containerName,
                            podName: record.podName, podNamespace: record.podNamespace, sourceNode: record.sourceNode),
            uploadedAt: record.uploadedAt, signedAt: WireTime.string(),
            findings: .init(state: record.validationState,
                            errors: findings.filter { $0.severity == "error" }.count,
                            warnings: findings.filter { $0.severity == "warning" }.count),
            chain: .init(key: position.key, index: position.index, previousStatement: position.previousStatement,
                         previousCheckpoint: position.previousCheckpoint))
        let (envelope, digest) = try signer.sign(statement)
        return (String(decoding: try JSONEncoder.wire.encode(envelope), as: UTF8.self), digest)
    }

    /// Signs the checkpoints catalogued before provenance existed (or by a build without it), oldest first, so
    /// their chains start where their history does. Returns how many were signed.
    @discardableResult
    public func signUnsigned(in catalog: Catalog) throws -> Int {
        let unsigned = try catalog.unsignedCheckpoints()
        for record in unsigned {
            let findings = try catalog.findings(of: record.id)
            try catalog.addStatement(for: record.id) { record, position in try sign(record, findings: findings, at: position) }
        }
        return unsigned.count
    }
}
