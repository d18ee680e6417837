public import Foundation
import Crypto

/// An error from the Ferry service or from reaching it. `code` is the service's stable code
/// (`NOT_A_CHECKPOINT`, `UNAUTHORIZED`, …) or one of the client's own: `SERVER_UNREACHABLE`, `BAD_RESPONSE`,
/// `DIGEST_MISMATCH`, `FILE_ERROR`.
public struct FerryClientError: Error, Sendable, CustomStringConvertible {
    public var status: Int?
    public var code: String
    public var message: String

    public init(status: Int? = nil, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(message) [\(code)]" }

    /// Whether the service answered (as opposed to a transport failure).
    public var isServerAnswer: Bool { status != nil }
}

/// A small blocking client for the Ferry REST API, for the CLI and node agents: streamed uploads from a file,
/// resumable, digest-checked downloads, listing. Calls block the calling thread in ``HTTPTransfer`` (never call
/// from the Swift concurrency pool).
public final class FerryClient: Sendable {
    public let server: URL
    private let token: String?

    public init(server: URL, token: String?) {
        self.server = server
        self.token = token
    }

    // MARK: Requests

    /// A request to `path` on the server, with the bearer token. No overall time limit: archives take as long
    /// as they take, and a transfer that stalls for `stallTimeout` seconds fails.
    public func request(_ method: String, _ path: String, query: [String: String] = [:]) -> TransferRequest {
        var components = URLComponents(url: server, resolvingAgainstBaseURL: false)!
        components.path = (components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path) + path
        if !query.isEmpty {
            components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        var request = TransferRequest(method: method, url: components.url!, timeout: nil)
        if let token { request.setHeader("Authorization", "Bearer \(token)") }
        return request
    }

    /// Sends a request and returns the answer; turns non-2xx answers into `FerryClientError` (the JSON error's
    /// code), and transport failures into `SERVER_UNREACHABLE`.
    func send(_ request: TransferRequest, progress: (@Sendable (Int64, Int64) -> Void)? = nil) throws -> TransferResponse {
        let response = try transport(request, onUpload: progress)
        guard (200..<300).contains(response.status) else { throw Self.error(status: response.status, body: response.body) }
        return response
    }

    /// Performs a request; a transport failure becomes `SERVER_UNREACHABLE`.
    public func transport(_ request: TransferRequest, cancellation: TransferCancellation? = nil,
                          onResponse: ((Int, [String: String]) -> Bool)? = nil,
                          onBody: ((UnsafeRawBufferPointer) -> Bool)? = nil,
                          onUpload: ((Int64, Int64) -> Void)? = nil) throws(FerryClientError) -> TransferResponse {
        do {
            return try HTTPTransfer.perform(request, cancellation: cancellation, onResponse: onResponse, onBody: onBody,
                                            onUpload: onUpload)
        } catch {
            throw FerryClientError(code: error.cancelled ? "CANCELLED" : "SERVER_UNREACHABLE",
                                   message: "cannot reach \(server.absoluteString): \(error.message)")
        }
    }

    public static func error(status: Int, body: Data) -> FerryClientError {
        struct Envelope: Decodable {
            struct Detail: Decodable { var code: String; var message: String }
            var error: Detail
        }
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: body) {
            return FerryClientError(status: status, code: envelope.error.code, message: envelope.error.message)
        }
        return FerryClientError(status: status, code: "HTTP_\(status)", message: "the server answered \(status)")
    }

    /// A JSON request to any path of the server (the node agents' API, for the service). Answers of every status
    /// are returned, not thrown; only transport failures throw (`SERVER_UNREACHABLE`).
    public func call(_ method: String, _ path: String, query: [String: String] = [:], json: Data? = nil,
                     timeout: TimeInterval = 30, idempotencyKey: String? = nil) throws -> (status: Int, body: Data) {
        var request = request(method, path, query: query)
        request.timeout = timeout
        if let idempotencyKey { request.setHeader("Idempotency-Key", idempotencyKey) }
        if let json {
            request.body = .data(json)
            request.setHeader("Content-Type", "application/json")
        }
        let response = try transport(request)
        return (response.status, response.body)
    }

    /// A JSON request whose 2xx answer decodes as `Answer`; any other status throws the service's error.
    public func decode<Answer: Decodable>(_ type: Answer.Type, _ method: String, _ path: String, query: [String: String] = [:],
                                          json: Data? = nil, timeout: TimeInterval = 30, idempotencyKey: String? = nil) throws -> Answer {
        let (status, data) = try call(method, path, query: query, json: json, timeout: timeout, idempotencyKey: idempotencyKey)
        guard (200..<300).contains(status) else { throw FerryClient.error(status: status, body: data) }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw FerryClientError(code: "BAD_RESPONSE", message: "the answer to \(method) \(path) is not the expected JSON: \(error)")
        }
    }

    // MARK: API

    /// Uploads an archive file, streaming it from disk. Returns the service's JSON answer (`checkpoint`, `created`).
    /// - Parameter uploadID: a name under which nodes may read the upload while it arrives (`Ferry-Upload-ID`).
    public func push(file: URL, node: String?, labels: [String: String], uploadID: String? = nil,
                     progress: (@Sendable (Int64, Int64) -> Void)?) throws -> [String: Any] {
        guard FileManager.default.isReadableFile(atPath: file.path) else {
            throw FerryClientError(code: "FILE_ERROR", message: "cannot read \(file.path)")
        }
        var query: [String: String] = [:]
        if let node { query["node"] = node }
        if !labels.isEmpty { query["labels"] = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
        var request = request("POST", "/api/v1/checkpoints", query: query)
        request.setHeader("Content-Type", "application/octet-stream")
        if let uploadID { request.setHeader("Ferry-Upload-ID", uploadID) }
        request.body = .file(file.path)
        return try json(send(request, progress: progress).body)
    }

    /// One page of the catalog.
    public func list(query: [String: String]) throws -> [String: Any] {
        try json(send(request("GET", "/api/v1/checkpoints", query: query)).body)
    }

    /// A checkpoint's summary and inspection.
    public func checkpoint(_ id: String) throws -> [String: Any] {
        try json(send(request("GET", "/api/v1/checkpoints/\(id)")).body)
    }

    /// The diff of two catalogued checkpoints (`GET /api/v1/checkpoints/{a}/diff/{b}`), as the service sends it:
    /// JSON, or the tree text with `format=tree` (``DiffQuery``).
    public func diff(_ a: String, _ b: String, query: [String: String]) throws -> Data {
        let path = "/api/v1/checkpoints/\(a)/diff/\(b)"
        let (status, body) = try call("GET", path, query: query, timeout: 300)
        guard (200..<300).contains(status) else { throw Self.error(status: status, body: body) }
        return body
    }

    public func delete(_ id: String) throws {
        _ = try send(request("DELETE", "/api/v1/checkpoints/\(id)"))
    }

    /// Downloads a checkpoint archive to `destination`, resuming from `destination.partial` with a Range request if
    /// an earlier download stopped, and checking the SHA-256 before the file is moved into place (0600).
    /// Returns the digest.
    /// - Parameter known: the full ID and size when the caller has just read them (the service is not asked again).
    public func download(_ id: String, to destination: URL, known: (id: String, size: Int64)? = nil,
                         progress: (@Sendable (Int64, Int64) -> Void)? = nil) throws -> String {
        let fullID: String
        let size: Int64
        if let known {
            (fullID, size) = known
        } else {
            let summary = try checkpoint(id)
            guard let checkpoint = summary["checkpoint"] as? [String: Any], let id = checkpoint["id"] as? String,
                  let length = (checkpoint["size"] as? NSNumber)?.int64Value
            else { throw FerryClientError(code: "BAD_RESPONSE", message: "the server's checkpoint description is malformed") }
            (fullID, size) = (id, length)
        }
        let partial = destination.appendingPathExtension("partial")
        let sink = try DownloadSink(path: partial.path)
        if sink.offset > size { try sink.reset() }
        if sink.offset < size {
            var request = request("GET", "/api/v1/checkpoints/\(fullID)/archive")
            if sink.offset > 0 {
                request.setHeader("Range", "bytes=\(sink.offset)-")
                request.setHeader("If-Range", "\"sha256:\(fullID)\"")
            }
            var errorBody = Data()
            let response: TransferResponse
            do {
                response = try transport(request, onResponse: { status, _ in
                    // A 200 to a Range request means the server sends everything: start over.
                    if status == 200 && sink.offset > 0 { try? sink.reset() }
                    if status != 200 && status != 206 { sink.disable() }
                    return true
                }, onBody: { bytes in
                    guard sink.enabled else {
                        if errorBody.count < 1 << 20 { errorBody.append(contentsOf: bytes) }
                        return true
                    }
                    sink.append(bytes)
                    progress?(sink.offset, size)
                    return sink.error == nil
                })
            } catch {
                if let sinkError = sink.error { throw sinkError }
                throw FerryClientError(code: "SERVER_UNREACHABLE", message: "download interrupted after \(sink.offset) bytes: \(error.message); run again to resume")
            }
            if let sinkError = sink.error { throw sinkError }
            guard response.status == 200 || response.status == 206 else {
                throw Self.error(status: response.status, body: errorBody)
            }
        }
        let digest = try sink.finish()
        guard digest == fullID else {
            try? FileManager.default.removeItem(at: partial)
            throw FerryClientError(code: "DIGEST_MISMATCH", message: "the downloaded bytes have SHA-256 \(digest), not \(fullID); the partial file was removed")
        }
        if FileManager.default.fileExists(atPath: destination.path) { try? FileManager.default.removeItem(at: destination) }
        do {
            try FileManager.default.moveItem(at: partial, to: destination)
        } catch {
            throw FerryClientError(code: "FILE_ERROR", message: "cannot move the download to \(destination.path)")
        }
        return digest
    }

    func json(_ data: Data) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FerryClientError(code: "BAD_RESPONSE", message: "the server's answer is not a JSON object")
        }
        return object
    }
}

/// Appends downloaded bytes to a 0600 partial file, hashing them as they go (``DownloadDigest``). Guarded by `lock`
/// (a reset may come from the response handler while bytes are being appended).
final class DownloadSink: @unchecked Sendable {
    private let lock = NSLock()
    private let path: String
    private let fd: Int32
    private var digest: DownloadDigest
    private(set) var offset: Int64
    private(set) var error: FerryClientError?
    private(set) var enabled = true

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FerryClientError(code: "FILE_ERROR", message: "cannot open \(path)") }
        offset = Int64(lseek(fd, 0, SEEK_END))
        do {
            digest = try DownloadDigest(resuming: fd, prefix: offset)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    func append(_ bytes: UnsafeRawBufferPointer) {
        lock.lock()
        defer { lock.unlock() }
        guard error == nil else { return }
        guard digest.append(bytes, to: fd) else {
            error = FerryClientError(code: "FILE_ERROR", message: "cannot write \(path) (disk full?)")
            return
        }
        offset += Int64(bytes.count)
    }

    func reset() throws {
        lock.lock()
        defer { lock.unlock() }
        guard ftruncate(fd, 0) == 0 else { throw FerryClientError(code: "FILE_ERROR", message: "cannot truncate \(path)") }
        digest = try DownloadDigest(resuming: fd, prefix: 0)
        offset = 0
    }

    func disable() {
        lock.lock()
        enabled = false
        lock.unlock()
    }

    /// The SHA-256 of the whole file, once it is on disk.
    func finish() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        return try digest.finish(fsyncing: fd)
    }
}
