import FerryAPI
import FerryCatalog
import FerryHTTP
import FerryInspect
import Foundation

/// `GET /api/v1/checkpoints/{a}/diff/{b}` (read): checkpointctl's `diff` of two catalogued checkpoints of one
/// container, as ``CheckpointDiff`` JSON (or its tree text with `format=tree`). Query flags are ``DiffQuery``'s;
/// 404 `CHECKPOINT_NOT_FOUND`, 409 `AMBIGUOUS_ID`, 409 `CONTAINER_MISMATCH`.
///
/// Both sides come from the inspection the service stored at ingest (``subject(of:)``), never from the archives
/// again: a diff costs two catalog reads whatever the archives' size, and does not depend on how blobs are stored.
struct DiffAPI: Sendable {
    let api: CheckpointAPI

    func register(in router: inout Router) {
        router.add("GET", "/api/v1/checkpoints/{a}/diff/{b}") { request, parameters, _ in
            try diff(request, a: parameters["a"] ?? "", b: parameters["b"] ?? "")
        }
    }

    func diff(_ request: HTTPRequest, a: String, b: String) throws -> HTTPResponse {
        try api.authorize(request, .read)
        let options = try Self.options(from: request.query)
        let tree: Bool
        switch request.query[DiffQuery.format] ?? "json" {
        case "json": tree = false
        case "tree": tree = true
        default: throw HTTPError(.invalidQuery, "format is json or tree")
        }
        let result = try compare(a, b, options: options).diff
        if tree {
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8")],
                                body: .bytes(Array(result.tree(options: options).utf8)))
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: .bytes(Array(try result.json())))
    }

    /// Both records and their diff; the page uses it too.
    func compare(_ a: String, _ b: String, options: DiffOptions) throws
        -> (a: CheckpointRecord, b: CheckpointRecord, diff: CheckpointDiff)
    {
        let recordA = try api.catalog { try api.context.catalog.checkpoint(a) }
        let recordB = try api.catalog { try api.context.catalog.checkpoint(b) }
        do {
            return (recordA, recordB, try CheckpointDiff.compare(subject(of: recordA), subject(of: recordB), options: options))
        } catch let mismatch as ContainerMismatch {
            throw HTTPError(.containerMismatch, mismatch.message)
        }
    }

    /// The one place a diff reads a catalogued checkpoint: the inspection stored at ingest (every section, so any
    /// flags can be answered), decoded as checkpointctl's diff reads its inspect JSON.
    func subject(of record: CheckpointRecord) throws -> DiffSubject {
        let inspection = try api.catalog { try api.context.catalog.inspection(of: record.id) }
        do {
            return try DiffSubject(inspection: Data(inspection.utf8))
        } catch {
            api.context.log("diff: the stored inspection of \(record.id.prefix(12)) does not decode: \(error)")
            throw HTTPError(.internalError, "the stored inspection of checkpoint \(record.id.prefix(12)) cannot be read")
        }
    }

    /// ``DiffQuery/flags`` as booleans: `true`/`1` or `false`/`0`, absent is false.
    static func options(from query: [String: String]) throws -> DiffOptions {
        var values: [String: Bool] = [:]
        for name in DiffQuery.flags {
            switch query[name] {
            case nil, "false", "0": values[name] = false
            case "true", "1": values[name] = true
            default: throw HTTPError(.invalidQuery, "\(name) is true or false")
            }
        }
        return DiffOptions(files: values["files"]!, sockets: values["sockets"]!, commandLines: values["ps_tree_cmd"]!,
                           environment: values["ps_tree_env"]!, showUnchanged: values["show_unchanged"]!)
    }
}
