import FerryAPI
import FerryCatalog
import FerryHTTP
import Foundation

/// Retention, pins and the record of deletions:
///
/// - `GET /api/v1/retention` (read) → `{configured, interval_seconds, policies}`.
/// - `POST /api/v1/gc[?dry_run=true]` (write) → ``RetentionResult``: what went (or would go), by which policy and
///   why, and the limits pinned or in-use checkpoints keep from being met; 409 `RETENTION_NOT_CONFIGURED`.
/// - `PUT /api/v1/checkpoints/{id}/pin` (write, ``PinRequest``) → `{pin}`; `DELETE …/pin` (write) → `{checkpoint,
///   pinned: false}`.
/// - `GET /api/v1/deletions[?checkpoint=ID&limit=N]` (read) → `{items}`, newest first.
struct RetentionAPI: Sendable {
    let api: CheckpointAPI
    var context: FerryServiceContext { api.context }

    func register(in router: inout Router) {
        router.add("GET", "/api/v1/retention") { request, _, _ in try settings(request) }
        router.add("POST", "/api/v1/gc") { request, _, _ in try collect(request) }
        router.add("PUT", "/api/v1/checkpoints/{id}/pin") { request, parameters, body in
            try pin(request, id: parameters["id"] ?? "", body: body)
        }
        router.add("DELETE", "/api/v1/checkpoints/{id}/pin") { request, parameters, _ in
            try unpin(request, id: parameters["id"] ?? "")
        }
        router.add("GET", "/api/v1/deletions") { request, _, _ in try deletions(request) }
    }

    func settings(_ request: HTTPRequest) throws -> HTTPResponse {
        try api.authorize(request, .read)
        let retention = context.retention
        return .json([
            "configured": AnyEncodable(retention?.policies != nil),
            "interval_seconds": AnyEncodable(retention?.interval ?? 0),
            "policies": AnyEncodable(retention?.policies),
        ])
    }

    func collect(_ request: HTTPRequest) throws -> HTTPResponse {
        let identity = try api.authorize(request, .write)
        guard let retention = context.retention, retention.policies != nil else {
            throw HTTPError(.retentionNotConfigured, "no retention policies are configured (ferry serve --retention FILE)")
        }
        let dryRun: Bool
        switch request.query["dry_run"] {
        case nil, "false", "0": dryRun = false
        case "true", "1", "": dryRun = true
        default: throw HTTPError(.invalidQuery, "dry_run is true or false")
        }
        let result = try api.catalog { try retention.run(dryRun: dryRun, by: identity?.name ?? "anonymous") }
        return .json(result)
    }

    func pin(_ request: HTTPRequest, id: String, body: HTTPRequestBody?) throws -> HTTPResponse {
        let identity = try api.authorize(request, .write)
        let record = try api.catalog { try context.catalog.checkpoint(id) }
        guard let body else { throw HTTPError(.bodyRequired, "send {\"reason\": \"why it is kept\"}") }
        let input: PinRequest
        do {
            input = try JSONDecoder().decode(PinRequest.self, from: Data(body.readAll(maximumBytes: 16 << 10)))
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(.invalidPin, "the body must be {\"reason\": \"…\"}")
        }
        let reason = input.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...500).contains(reason.count) else {
            throw HTTPError(.invalidPin, "a pin needs a reason of 1 to 500 characters")
        }
        let pin = try api.catalog { try context.catalog.pin(record.id, reason: reason, by: identity?.name ?? "anonymous") }
        context.log("pinned \(record.id.prefix(12)) by \(pin.pinnedBy)")
        return .json(["pin": pin])
    }

    func unpin(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        let identity = try api.authorize(request, .write)
        let record = try api.catalog { try context.catalog.checkpoint(id) }
        if try api.catalog({ try context.catalog.unpin(record.id) }) {
            context.log("unpinned \(record.id.prefix(12)) by \(identity?.name ?? "anonymous")")
            context.retention?.trigger()
        }
        return .json(["checkpoint": AnyEncodable(record.id), "pinned": AnyEncodable(false)])
    }

    func deletions(_ request: HTTPRequest) throws -> HTTPResponse {
        try api.authorize(request, .read)
        var limit = 100
        if let text = request.query["limit"] {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw HTTPError(.invalidQuery, "limit is a number from 1 to 1000")
            }
            limit = value
        }
        let checkpoint = request.query["checkpoint"].flatMap { $0.isEmpty ? nil : $0 }
        let items = try api.catalog { try context.catalog.deletions(limit: limit, checkpoint: checkpoint) }
        return .json(["items": items])
    }
}
