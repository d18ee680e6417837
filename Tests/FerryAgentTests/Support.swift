import FerryAgent
import FerryAPI
import FerryHTTP
import FerryProvenance
import FerryTestSupport
import Foundation

/// A value behind a lock, for servers and agents to report to tests.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable invariant: `value` is only touched with `lock` held.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withValue<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }

    var current: Value { withValue { $0 } }
}

/// Polls `condition` every 50 ms for up to `seconds`.
func waitUntil(_ what: String, seconds: Double = 10, _ condition: () throws -> Bool) throws {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if (try? condition()) == true { return }
        usleep(50_000)
    }
    throw FixtureError("timed out after \(seconds) s waiting until \(what)")
}

/// The SHA-256 of a file, i.e. the checkpoint ID of an archive.
func sha256(_ path: String) throws -> String {
    let result = try Fixtures.run("/usr/bin/sha256sum", [path])
    guard result.status == 0 else { throw FixtureError("sha256sum failed: \(result.stderr)") }
    return String(result.stdout.prefix(64))
}

/// What curl brought back.
struct Reply {
    var status: Int
    var body: Data
    var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// One request with /usr/bin/curl over loopback (no pipes: the body goes through a file).
func curl(_ method: String, _ url: String, token: String?, json: String? = nil) throws -> Reply {
    let directory = try Fixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let out = directory.appendingPathComponent("body")
    var arguments = ["-sS", "--max-time", "10", "-X", method, "-o", out.path, "-w", "%{http_code}"]
    if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
    if let json { arguments += ["-H", "Content-Type: application/json", "--data-binary", json] }
    let result = try Fixtures.run("/usr/bin/curl", arguments + [url])
    guard result.status == 0, let status = Int(result.stdout) else { throw FixtureError("curl failed: \(result.stderr)") }
    return Reply(status: status, body: (try? Data(contentsOf: out)) ?? Data())
}

/// A stand-in for the Ferry service, on FerryHTTP: it records heartbeats, serves checkpoint descriptions and
/// archives (with Range, as the real service does), and takes uploads.
final class FakeService: Sendable {
    struct Heartbeat {
        var node: String
        var authorization: String?
        var body: [String: Any]
    }

    let server: HTTPServer
    /// Heartbeat bodies as received (JSON bytes), with the path's node and the Authorization header.
    let heartbeats: Locked<[(node: String, authorization: String?, body: Data)]>
    /// The Range header of each archive request ("" without one).
    let archiveRanges: Locked<[String]>
    /// Each upload: the `node` query parameter and the checkpoint ID of the bytes.
    let uploads: Locked<[(node: String?, id: String)]>

    var url: String { "http://127.0.0.1:\(server.port)" }

    /// The key the stand-in signs its archives' statements with, as the service does.
    static let signer = ProvenanceSigner.generate()

    /// - Parameter archives: the archive files to serve, by checkpoint ID (each with a statement signed by
    ///   ``signer``, as the service's).
    init(archives: [String: String], uploadDirectory: URL) throws {
        let heartbeats = Locked<[(node: String, authorization: String?, body: Data)]>([])
        let archiveRanges = Locked<[String]>([])
        let uploads = Locked<[(node: String?, id: String)]>([])
        (self.heartbeats, self.archiveRanges, self.uploads) = (heartbeats, archiveRanges, uploads)
        var router = Router()
        router.add("POST", "/api/v1/nodes/{node}/heartbeat") { request, parameters, body in
            let bytes = try body?.readAll(maximumBytes: 1 << 20) ?? []
            heartbeats.withValue { $0.append((parameters["node"] ?? "", request.header("authorization"), Data(bytes))) }
            return .text("{}", contentType: "application/json")
        }
        router.add("GET", "/api/v1/checkpoints/{id}") { _, parameters, _ in
            let id = parameters["id"] ?? ""
            guard let path = archives[id], let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int else {
                throw HTTPError(status: 404, code: "CHECKPOINT_NOT_FOUND", message: "no such checkpoint")
            }
            return .text(#"{"checkpoint": {"id": "\#(id)", "size": \#(size)}}"#, contentType: "application/json")
        }
        router.add("GET", "/.well-known/ferry/provenance-key") { _, _, _ in .json(Self.signer.publicKey.info) }
        router.add("GET", "/api/v1/checkpoints/{id}/statement") { _, parameters, _ in
            let id = parameters["id"] ?? ""
            guard let path = archives[id], let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int else {
                throw HTTPError(status: 404, code: "CHECKPOINT_NOT_FOUND", message: "no such checkpoint")
            }
            let statement = ProvenanceStatement(
                subject: .init(digest: "sha256:" + id, size: Int64(size), compression: "none"),
                identity: .init(engine: "podman", containerID: "", containerName: "stand-in", podName: nil, podNamespace: nil, sourceNode: nil),
                uploadedAt: WireTime.string(), signedAt: WireTime.string(), findings: .init(state: "clean", errors: 0, warnings: 0),
                chain: .init(key: "//stand-in", index: 0, previousStatement: nil, previousCheckpoint: nil))
            return .json(try Self.signer.sign(statement).envelope)
        }
        router.add("GET", "/api/v1/checkpoints/{id}/archive") { request, parameters, _ in
            let id = parameters["id"] ?? ""
            archiveRanges.withValue { $0.append(request.header("range") ?? "") }
            guard let path = archives[id] else { throw HTTPError(status: 404, code: "CHECKPOINT_NOT_FOUND", message: "no such checkpoint") }
            return .file(path: path, request: request, etag: "sha256:\(id)", contentType: "application/x-tar")
        }
        router.add("POST", "/api/v1/checkpoints") { request, _, body in
            guard let body else { throw HTTPError.badRequest("no body") }
            let path = uploadDirectory.appendingPathComponent(UUID().uuidString).path
            guard FileManager.default.createFile(atPath: path, contents: Data(try body.readAll(maximumBytes: 64 << 20))) else {
                throw HTTPError.internalError
            }
            let id = try sha256(path)
            uploads.withValue { $0.append((request.query["node"], id)) }
            return .text(#"{"checkpoint": {"id": "\#(id)"}, "created": true}"#, status: 201, contentType: "application/json")
        }
        server = HTTPServer(host: "127.0.0.1", port: 0, handler: router)
        try server.start()
    }

    /// The heartbeats received, decoded.
    var receivedHeartbeats: [Heartbeat] {
        heartbeats.current.map { Heartbeat(node: $0.node, authorization: $0.authorization,
                                           body: ((try? JSONSerialization.jsonObject(with: $0.body)) as? [String: Any]) ?? [:]) }
    }

    func stop() {
        server.shutdown(timeout: 2)
    }
}
