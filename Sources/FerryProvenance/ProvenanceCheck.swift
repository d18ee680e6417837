public import FerryAPI
public import FerryClient
import Foundation

/// What `ferry verify` and the agents check: a checkpoint's statement against a trusted key, the archive's bytes
/// against the statement, and the statement's place in its chain. Service errors other than a missing statement
/// are thrown as the client's errors; everything provenance finds wrong is a ``ProvenanceError``.
public struct ProvenanceCheck: Sendable {
    public let verifier: ProvenanceVerifier

    public init(trusting key: ProvenancePublicKey) { verifier = ProvenanceVerifier(trusting: key) }

    /// A checkpoint's verified statement, as the service holds it. An unsigned checkpoint fails with
    /// `SIGNATURE_INVALID`: nothing vouches for it.
    public func statement(_ id: String, client: FerryClient) throws -> (statement: ProvenanceStatement, digest: String) {
        let envelope: StatementEnvelope
        do {
            envelope = try client.statement(id)
        } catch let error as FerryClientError where error.code == "STATEMENT_NOT_FOUND" {
            throw ProvenanceError(.signatureInvalid, "checkpoint \(id.prefix(12)) has no signed statement")
        }
        let verified = try verifier.verify(envelope)
        let full = id.hasPrefix("sha256:") ? id : "sha256:" + id
        guard full.count != 71 || verified.statement.subject.digest == full else {
            throw ProvenanceError(.signatureInvalid, "the service answered a statement for \(verified.statement.subject.digest), not for \(full)")
        }
        return verified
    }

    /// Verifies one catalogued checkpoint: its statement, its archive as the service sends it, and its link to the
    /// statement before it in the chain.
    public func checkpoint(_ id: String, client: FerryClient) throws -> ProvenanceStatement {
        let (statement, digest) = try self.statement(id, client: client)
        let hex = String(statement.subject.digest.dropFirst("sha256:".count))
        let archive = try client.archiveDigest(hex)
        try ProvenanceVerifier.checkArchive(statement, digest: archive.digest, size: archive.size)
        let links = try verifier.verifyChain(client.chain(statement.chain.key))
        guard statement.chain.index < links.count, links[statement.chain.index].digest == digest else {
            throw ProvenanceError(.chainBroken, "statement \(statement.chain.index) of chain \(statement.chain.key) is not this checkpoint's statement")
        }
        return statement
    }

    /// The outcome of a chain's check: every link verified, and which archives were hashed.
    public struct ChainReport: Sendable {
        public var links: [ProvenanceVerifier.VerifiedLink]
        /// Checkpoints whose archives were downloaded and matched.
        public var archivesVerified: Int
    }

    /// Verifies a container's whole chain and, with `archives`, every archive still catalogued.
    public func chain(_ container: String, client: FerryClient, archives: Bool) throws -> ChainReport {
        let links = try verifier.verifyChain(client.chain(container))
        var verified = 0
        if archives {
            for link in links where link.present {
                let archive = try client.archiveDigest(link.checkpointID)
                try ProvenanceVerifier.checkArchive(link.statement, digest: archive.digest, size: archive.size)
                verified += 1
            }
        }
        return ChainReport(links: links, archivesVerified: verified)
    }

    /// Verifies an archive file against a statement envelope, with no service.
    public func offline(archive path: String, envelope: StatementEnvelope) throws -> ProvenanceStatement {
        let (statement, _) = try verifier.verify(envelope)
        let digest = try DownloadDigest.sha256(ofFile: path)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? -1
        try ProvenanceVerifier.checkArchive(statement, digest: digest, size: size)
        return statement
    }
}
