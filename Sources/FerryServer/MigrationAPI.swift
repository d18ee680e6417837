import Crypto
import FerryCatalog
import FerryHTTP
import FerryValidation
import Foundation

/// `POST /api/v1/migrations`: move a catalogued checkpoint, or a running container (checkpointed first on its
/// source node), to a target node and restore it there.
struct MigrationRequest: Decodable {
    struct Source: Decodable {
        var node: String
        var container: String
    }

    /// A catalogued checkpoint (ID or unique prefix)…
    var checkpoint: String?
    /// …or a running container to checkpoint first.
    var source: Source?
    var target: String
    /// Restore options, passed to the target agent's driver (RestoreOptions' keys, plus `keep`, `ignore_volumes`).
    var options: [String: JSONScalar]?
    /// Options of the checkpoint on the source node (`compress`, `leave_running`, `tcp_established`, `keep`).
    var checkpointOptions: [String: JSONScalar]?
    /// Preflight finding codes to accept anyway.
    var waive: [String]?
    var timeoutSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case checkpoint, source, target, options, waive
        case checkpointOptions = "checkpoint_options"
        case timeoutSeconds = "timeout_seconds"
    }
}

/// A JSON string, number or boolean (option values).
enum JSONScalar: Codable, Equatable {
    case string(String), number(Double), bool(Bool)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if let value = try? container.decode(Double.self) { self = .number(value); return }
        self = .string(try container.decode(String.self))
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        }
    }
}

/// What is stored in a migration's `options` column.
struct StoredMigrationOptions: Codable {
    var restore: [String: JSONScalar]
    var checkpoint: [String: JSONScalar]
    var waive: [String]

    var restoreOptions: RestoreOptions {
        let data = (try? JSONEncoder().encode(restore)) ?? Data("{}".utf8)
        return (try? JSONDecoder().decode(RestoreOptions.self, from: data)) ?? RestoreOptions()
    }
}

/// `/api/v1/migrations`.
struct MigrationAPI: Sendable {
    let api: CheckpointAPI
    let orchestrator: MigrationOrchestrator
    var catalog: Catalog { api.context.catalog }

    static let defaultTimeout: Double = 3600

    func create(_ request: HTTPRequest, body: HTTPRequestBody?) throws -> HTTPResponse {
        try api.authorize(request, .write)
        guard let body else { throw HTTPError(status: 400, code: "BODY_REQUIRED", message: "send the migration as JSON") }
        let bytes = try body.readAll(maximumBytes: 1 << 20)
        let input: MigrationRequest
        do {
            input = try JSONDecoder().decode(MigrationRequest.self, from: Data(bytes))
        } catch {
            throw HTTPError(status: 400, code: "INVALID_MIGRATION", message: "the body must be {checkpoint | source: {node, container}, target, options}: \(error)")
        }
        guard (input.checkpoint == nil) != (input.source == nil) else {
            throw HTTPError(status: 400, code: "INVALID_MIGRATION", message: "give either checkpoint or source, not both or neither")
        }
        guard NodeAPI.isValidName(input.target) else {
            throw HTTPError(status: 400, code: "INVALID_NODE", message: "target is a node name")
        }
        var checkpointID: String?
        if let reference = input.checkpoint {
            checkpointID = try api.catalog { try catalog.checkpoint(reference) }.id
        }
        if let source = input.source {
            guard NodeAPI.isValidName(source.node), !source.container.isEmpty, source.container.count <= 256 else {
                throw HTTPError(status: 400, code: "INVALID_MIGRATION", message: "source needs a node name and a container")
            }
        }
        let timeout = input.timeoutSeconds ?? Self.defaultTimeout
        guard timeout > 0, timeout <= 7 * 86400 else {
            throw HTTPError(status: 400, code: "INVALID_MIGRATION", message: "timeout_seconds is between 1 and 604800")
        }
        let options = StoredMigrationOptions(
            restore: input.options ?? [:], checkpoint: input.checkpointOptions ?? [:], waive: input.waive ?? [])
        let optionsText = String(decoding: try JSONEncoder.api.encode(options), as: UTF8.self)
        // The same request retried gives the same migration: by Idempotency-Key, else by its content while unfinished.
        let explicitKey = request.header("idempotency-key")
        var canonical = "\(checkpointID ?? "")|\(input.source?.node ?? "")|\(input.source?.container ?? "")|\(input.target)|\(optionsText)"
        if let explicitKey { canonical = "key:" + explicitKey }
        let requestKey = SHA256.hash(data: Data(canonical.utf8)).map { String(format: "%02x", $0) }.joined()
        let deadline = Catalog.timestamp(Date().addingTimeInterval(timeout))
        let migration = MigrationRecord(
            id: "mig-" + UUID().uuidString.lowercased(), requestKey: requestKey, explicitKey: explicitKey != nil,
            checkpointID: checkpointID, sourceNode: input.source?.node, sourceContainer: input.source?.container,
            targetNode: input.target, options: optionsText, deadlineAt: deadline)
        let (stored, created) = try api.catalog { try catalog.createMigration(migration) }
        if created { orchestrator.wake() }
        var response = CheckpointAPI.jsonText(try migrationJSON(stored, events: nil), status: created ? 201 : 200)
        response.headers.append(("Location", "/api/v1/migrations/\(stored.id)"))
        return response
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        try api.authorize(request, .read)
        var state: MigrationState?
        if let text = request.query["state"] {
            guard let value = MigrationState(rawValue: text) else {
                throw HTTPError(status: 400, code: "INVALID_QUERY", message: "state is one of \(MigrationState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            state = value
        }
        let limit = Int(request.query["limit"] ?? "100") ?? 100
        guard (1...1000).contains(limit) else { throw HTTPError(status: 400, code: "INVALID_QUERY", message: "limit is 1 to 1000") }
        let migrations = try api.catalog { try catalog.migrations(state: state, limit: limit) }
        return CheckpointAPI.jsonText("{\"items\":[\(try migrations.map { try migrationJSON($0, events: nil) }.joined(separator: ","))]}")
    }

    func detail(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        try api.authorize(request, .read)
        let migration = try api.catalog { try catalog.migration(id) }
        let events = try api.catalog { try catalog.migrationEvents(migration.id) }
        return CheckpointAPI.jsonText(try migrationJSON(migration, events: events))
    }

    func cancel(_ request: HTTPRequest, id: String) throws -> HTTPResponse {
        try api.authorize(request, .write)
        var migration = try api.catalog { try catalog.migration(id) }
        guard !migration.state.isTerminal else {
            throw HTTPError(status: 409, code: "MIGRATION_FINISHED", message: "the migration has already \(migration.state.rawValue)")
        }
        migration = try api.catalog {
            try catalog.updateMigration(id, event: "cancelled by request") {
                $0.state = .cancelled
                $0.errorCode = "CANCELLED"
                $0.errorMessage = "cancelled by request"
            }
        }
        orchestrator.cancelJobs(of: migration)
        return CheckpointAPI.jsonText(try migrationJSON(migration, events: nil))
    }

    /// A migration as the API shows it.
    func migrationJSON(_ migration: MigrationRecord, events: [MigrationEvent]?) throws -> String {
        struct View: Encodable {
            struct Source: Encodable { var node: String?; var container: String? }
            struct Failure: Encodable { var code: String; var message: String }
            struct Progress: Encodable {
                var bytesDone: Int64
                var bytesTotal: Int64
                enum CodingKeys: String, CodingKey { case bytesDone = "bytes_done", bytesTotal = "bytes_total" }
            }
            var id: String
            var state: String
            var checkpoint: String?
            var source: Source?
            var target: String
            var error: Failure?
            var progress: Progress
            var createdAt: String
            var updatedAt: String
            var finishedAt: String?
            var deadlineAt: String
            var events: [MigrationEvent]?
            enum CodingKeys: String, CodingKey {
                case id, state, checkpoint, source, target, error, progress, events
                case createdAt = "created_at"
                case updatedAt = "updated_at"
                case finishedAt = "finished_at"
                case deadlineAt = "deadline_at"
            }
        }
        let view = View(
            id: migration.id, state: migration.state.rawValue, checkpoint: migration.checkpointID,
            source: migration.sourceNode.map { View.Source(node: $0, container: migration.sourceContainer) },
            target: migration.targetNode,
            error: migration.errorCode.map { View.Failure(code: $0, message: migration.errorMessage ?? "") },
            progress: View.Progress(bytesDone: migration.bytesDone, bytesTotal: migration.bytesTotal),
            createdAt: migration.createdAt, updatedAt: migration.updatedAt, finishedAt: migration.finishedAt,
            deadlineAt: migration.deadlineAt, events: events)
        var text = String(decoding: try JSONEncoder.api.encode(view), as: UTF8.self)
        text.removeLast()
        text += ",\"options\":\(migration.options)"
        if let result = migration.result { text += ",\"result\":\(result)" }
        return text + "}"
    }
}
