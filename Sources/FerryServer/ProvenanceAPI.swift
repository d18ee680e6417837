import FerryAPI
import FerryCatalog
import FerryHTTP
import FerryProvenance
import Foundation

/// Signed provenance:
///
/// - `GET /.well-known/ferry/provenance-key` (no token: it is public) → ``ProvenanceKeyInfo``.
/// - `GET /api/v1/checkpoints/{id}/statement` (read) → the checkpoint's ``StatementEnvelope``; a deleted
///   checkpoint's statement is still served by its full ID. 404 `STATEMENT_NOT_FOUND`.
/// - `GET /api/v1/chain?container=CONTAINER|NAMESPACE/POD/CONTAINER` (read) → ``ProvenanceChain``, oldest first.
struct ProvenanceAPI: Sendable {
    let api: CheckpointAPI
    var context: FerryServiceContext { api.context }

    func register(in router: inout Router) {
        router.add("GET", "/.well-known/ferry/provenance-key") { _, _, _ in try key() }
        router.add("GET", "/api/v1/checkpoints/{id}/statement") { request, parameters, _ in
            try statement(request, id: parameters["id"] ?? "")
        }
        router.add("GET", "/api/v1/chain") { request, _, _ in try chain(request) }
    }

    func key() throws -> HTTPResponse {
        guard let signing = context.signing else { throw HTTPError(.notFound, "this service signs nothing") }
        return .json(signing.signer.publicKey.info)
    }

    func statement(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        try api.authorize(request, .read)
        let full = id.hasPrefix("sha256:") ? String(id.dropFirst(7)) : id
        // A full ID also finds the statement of a checkpoint since deleted; a prefix only a catalogued one.
        let checkpoint = full.count == 64 ? full : try api.catalog { try context.catalog.checkpoint(id).id }
        guard let stored = try api.catalog({ try context.catalog.statement(of: checkpoint) }) else {
            if try api.catalog({ try context.catalog.contains(checkpoint) }) {
                throw HTTPError(.statementNotFound, "checkpoint \(checkpoint.prefix(12)) has no signed statement")
            }
            throw HTTPError(.checkpointNotFound, "no checkpoint \(checkpoint.prefix(80))")
        }
        return CheckpointAPI.jsonText(stored.envelope)
    }

    func chain(_ request: HTTPRequest) throws -> HTTPResponse {
        try api.authorize(request, .read)
        guard let container = request.query["container"], container.utf8.count <= 512,
              let key = ProvenanceStatement.chainKey(parsing: container) else {
            throw HTTPError(.invalidQuery, "container is CONTAINER (a Podman container) or NAMESPACE/POD/CONTAINER")
        }
        let stored = try api.catalog { try context.catalog.chain(key) }
        guard !stored.isEmpty else { throw HTTPError(.statementNotFound, "no checkpoint of \(key) has been catalogued") }
        var links: [ProvenanceChain.Link] = []
        for statement in stored {
            guard let envelope = statement.decodedEnvelope else {
                throw HTTPError(.databaseFailed, "the stored statement of \(statement.checkpointID.prefix(12)) is not an envelope")
            }
            links.append(.init(checkpointID: statement.checkpointID, present: statement.present, envelope: envelope))
        }
        return .json(ProvenanceChain(key: key, links: links))
    }
}
