import FerryAPI
import FerryClient
import FerryProvenance
import Foundation
import Synchronization

/// The service key this agent trusts, and the check every restore passes before the runtime sees an archive.
///
/// The key is pinned: given with `--provenance-key FILE`, or else taken from the service the first time it is
/// needed and kept in the work directory (`provenance-key.json`, trust on first use). Once pinned, a service
/// answering with another key is refused (`SIGNATURE_INVALID`) until the operator pins the new one.
final class ProvenanceTrust: Sendable {
    let client: FerryClient
    let pinnedFile: String
    let given: ProvenancePublicKey?
    let log: @Sendable (String) -> Void
    private let cached = Mutex<ProvenancePublicKey?>(nil)

    init(client: FerryClient, workDirectory: String, keyFile: String?, log: @escaping @Sendable (String) -> Void) throws(AgentError) {
        self.client = client
        self.log = log
        pinnedFile = workDirectory + "/provenance-key.json"
        if let keyFile {
            guard let data = FileManager.default.contents(atPath: keyFile) else {
                throw AgentError(.fileError, "cannot read the provenance key \(keyFile)")
            }
            do {
                given = try ProvenancePublicKey(parsing: data)
            } catch {
                throw AgentError(.signatureInvalid, "\(keyFile): \(error.message)")
            }
        } else {
            given = nil
        }
    }

    /// The trusted key: the one given, the one pinned earlier, or the service's, pinned now.
    func key() throws(AgentError) -> ProvenancePublicKey {
        if let given { return given }
        if let key = cached.withLock({ $0 }) { return key }
        if let data = FileManager.default.contents(atPath: pinnedFile), let key = try? ProvenancePublicKey(parsing: data) {
            cached.withLock { $0 = key }
            return key
        }
        let info: ProvenanceKeyInfo
        do {
            info = try client.provenanceKey()
        } catch {
            throw AgentError(.downloadFailed, "cannot fetch the service's provenance key: \(error)")
        }
        let key: ProvenancePublicKey
        do {
            key = try ProvenancePublicKey(info: info)
        } catch {
            throw AgentError(.signatureInvalid, "the service's provenance key is not an Ed25519 key")
        }
        guard let document = try? JSONEncoder.wire.encode(key.info),
              FileWrite.replace(pinnedFile, with: document, temporarySuffix: ".new") else {
            throw AgentError(.fileError, "cannot write \(pinnedFile)")
        }
        log("pinned the service's provenance key \(key.keyID) in \(pinnedFile)")
        cached.withLock { $0 = key }
        return key
    }

    /// That the service vouches for checkpoint `id` with a statement the trusted key signed. Returns the statement.
    func check(_ id: String) throws(AgentError) -> ProvenanceStatement {
        let trusted = try key()
        do {
            return try ProvenanceCheck(trusting: trusted).statement(id, client: client).statement
        } catch let error as ProvenanceError {
            throw AgentError(.signatureInvalid, "checkpoint \(id.prefix(12)) is not restored: \(error.message) [\(error.code)]")
        } catch let error as FerryClientError {
            throw AgentError(error.isServerAnswer ? AgentErrorCode(error.code) : .downloadFailed,
                             "cannot fetch the statement of \(id.prefix(12)): \(error.message)")
        } catch {
            throw AgentError(.downloadFailed, "cannot fetch the statement of \(id.prefix(12)): \(error)")
        }
    }

    /// That the archive on disk is the one the statement signs (its size; its digest was checked as it arrived).
    static func checkArchive(_ statement: ProvenanceStatement, id: String, path: String) throws(AgentError) {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? -1
        do {
            try ProvenanceVerifier.checkArchive(statement, digest: id, size: size)
        } catch {
            throw AgentError(.signatureInvalid, "checkpoint \(id.prefix(12)) is not restored: \(error.message) [\(error.code)]")
        }
    }
}
