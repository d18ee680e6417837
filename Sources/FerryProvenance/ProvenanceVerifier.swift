import Crypto
public import FerryAPI
public import Foundation

/// Checks statements against one trusted public key: their signatures, the archives they name, and the links of a
/// container's chain. Every failure is a ``ProvenanceError`` whose code says which of these broke.
public struct ProvenanceVerifier: Sendable {
    public let trusted: ProvenancePublicKey

    public init(trusting key: ProvenancePublicKey) { trusted = key }

    /// DSSE's pre-authentication encoding: what is signed, so a signature cannot be moved to another payload type.
    public static func preAuthenticationEncoding(type: String, payload: Data) -> Data {
        var data = Data("DSSEv1 \(type.utf8.count) \(type) \(payload.count) ".utf8)
        data.append(payload)
        return data
    }

    public static func digest(of data: Data) -> String {
        "sha256:" + Hex.string(SHA256.hash(data: data))
    }

    /// The statement an envelope carries, once a signature by the trusted key verifies over it.
    public func verify(_ envelope: StatementEnvelope) throws(ProvenanceError) -> (statement: ProvenanceStatement, digest: String) {
        guard envelope.payloadType == StatementEnvelope.payloadType else {
            throw ProvenanceError(.signatureInvalid, "the envelope's payload type is \(envelope.payloadType.prefix(80)), not a Ferry statement")
        }
        guard let payload = Data(base64Encoded: envelope.payload) else {
            throw ProvenanceError(.signatureInvalid, "the envelope's payload is not base64")
        }
        let signed = Self.preAuthenticationEncoding(type: envelope.payloadType, payload: payload)
        let mine = envelope.signatures.filter { $0.keyid == trusted.keyID }
        if mine.isEmpty {
            let others = envelope.signatures.map { String($0.keyid.prefix(32)) }.joined(separator: ", ")
            if others.isEmpty { throw ProvenanceError(.signatureInvalid, "the statement carries no signature") }
            throw ProvenanceError(.keyMismatch, "the statement is signed by key \(others), not by the trusted key \(trusted.keyID)")
        }
        guard mine.contains(where: { signature in
            Data(base64Encoded: signature.sig).map { trusted.key.isValidSignature($0, for: signed) } ?? false
        }) else {
            throw ProvenanceError(.signatureInvalid, "the signature by key \(trusted.keyID) does not verify: the statement or its signature was altered")
        }
        guard let statement = try? JSONDecoder().decode(ProvenanceStatement.self, from: payload),
              statement.type == ProvenanceStatement.type else {
            throw ProvenanceError(.signatureInvalid, "the signed payload is not a Ferry checkpoint statement")
        }
        return (statement, Self.digest(of: payload))
    }

    /// That an archive with this digest and size is the one the statement names.
    public static func checkArchive(_ statement: ProvenanceStatement, digest: String, size: Int64) throws(ProvenanceError) {
        let normalised = digest.hasPrefix("sha256:") ? digest : "sha256:" + digest
        guard normalised == statement.subject.digest else {
            throw ProvenanceError(.digestMismatch, "the archive hashes to \(normalised), the statement signs \(statement.subject.digest)")
        }
        guard size == statement.subject.size else {
            throw ProvenanceError(.digestMismatch, "the archive has \(size) bytes, the statement signs \(statement.subject.size)")
        }
    }

    /// One verified link of a chain.
    public struct VerifiedLink: Sendable {
        public var checkpointID: String
        public var present: Bool
        public var statement: ProvenanceStatement
        public var digest: String
    }

    /// Verifies every statement of a chain and that each names the one before it: indexes 0, 1, 2, … with no gap,
    /// all of the chain's key, each `previous_statement` the digest of the previous payload and each
    /// `previous_checkpoint` its subject. Returns the links, oldest first.
    public func verifyChain(_ chain: ProvenanceChain) throws(ProvenanceError) -> [VerifiedLink] {
        var links: [VerifiedLink] = []
        for (position, link) in chain.links.enumerated() {
            let (statement, digest) = try verify(link.envelope)
            guard statement.subject.digest == "sha256:" + link.checkpointID else {
                throw ProvenanceError(.chainBroken, "link \(position) is listed as checkpoint \(link.checkpointID.prefix(12)) but its statement signs \(statement.subject.digest)")
            }
            guard statement.chain.key == chain.key else {
                throw ProvenanceError(.chainBroken, "link \(position) belongs to chain \(statement.chain.key), not \(chain.key)")
            }
            guard statement.chain.index == position else {
                throw ProvenanceError(.chainBroken, "link \(position) says it is statement \(statement.chain.index) of the chain: statements are missing or out of order")
            }
            let previous = links.last
            guard statement.chain.previousStatement == previous?.digest,
                  statement.chain.previousCheckpoint == previous?.statement.subject.digest else {
                throw ProvenanceError(.chainBroken, "statement \(position) names \(statement.chain.previousStatement ?? "no statement") as the one before it, but the one before it is \(previous?.digest ?? "none")")
            }
            links.append(VerifiedLink(checkpointID: link.checkpointID, present: link.present, statement: statement, digest: digest))
        }
        return links
    }
}
