public import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
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
/// resumable, digest-checked downloads, listing. Calls block the calling thread (never call from the Swift
/// concurrency pool).
public final class FerryClient: Sendable {
    public let server: URL
    private let token: String?

    public init(server: URL, token: String?) {
        self.server = server
        self.token = token
    }

    /// A session for one task: FoundationNetworking on Linux only calls session-level delegates, so each
    /// transfer gets its own session with its own delegate, invalidated when the task ends.
    private func session(delegate: TaskDelegate) -> URLSession {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 300
        configuration.timeoutIntervalForResource = 7 * 24 * 3600
        return URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
    }

    // MARK: Requests

    func request(_ method: String, _ path: String, query: [String: String] = [:]) -> URLRequest {
        var components = URLComponents(url: server, resolvingAgainstBaseURL: false)!
        components.path = (components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path) + path
        if !query.isEmpty {
            components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        var request = URLRequest(url: components.url!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return request
    }

    /// Sends a request and returns the body and response; turns JSON errors into `FerryClientError`.
    func send(_ request: URLRequest, uploadFrom file: URL? = nil, progress: (@Sendable (Int64, Int64) -> Void)? = nil) throws -> (Data, HTTPURLResponse) {
        let delegate = TaskDelegate(progress: progress)
        let session = session(delegate: delegate)
        defer { session.finishTasksAndInvalidate() }
        let task = file.map { session.uploadTask(with: request, fromFile: $0) } ?? session.dataTask(with: request)
        task.resume()
        let (data, response, error) = delegate.wait()
        if let error {
            throw FerryClientError(code: "SERVER_UNREACHABLE", message: "cannot reach \(server.absoluteString): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw FerryClientError(code: "BAD_RESPONSE", message: "no HTTP response from \(server.absoluteString)")
        }
        guard (200..<300).contains(http.statusCode) else { throw Self.error(status: http.statusCode, body: data) }
        return (data, http)
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
        request.timeoutInterval = timeout
        if let idempotencyKey { request.setValue(idempotencyKey, forHTTPHeaderField: "Idempotency-Key") }
        if let json {
            request.httpBody = json
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let delegate = TaskDelegate(progress: nil)
        let session = session(delegate: delegate)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        let (data, response, error) = delegate.wait()
        if let error {
            throw FerryClientError(code: "SERVER_UNREACHABLE", message: "cannot reach \(server.absoluteString): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw FerryClientError(code: "BAD_RESPONSE", message: "no HTTP response from \(server.absoluteString)")
        }
        return (http.statusCode, data)
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
    public func push(file: URL, node: String?, labels: [String: String], progress: (@Sendable (Int64, Int64) -> Void)?) throws -> [String: Any] {
        guard FileManager.default.isReadableFile(atPath: file.path) else {
            throw FerryClientError(code: "FILE_ERROR", message: "cannot read \(file.path)")
        }
        var query: [String: String] = [:]
        if let node { query["node"] = node }
        if !labels.isEmpty { query["labels"] = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
        var request = request("POST", "/api/v1/checkpoints", query: query)
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        let (data, _) = try send(request, uploadFrom: file, progress: progress)
        return try json(data)
    }

    /// One page of the catalog.
    public func list(query: [String: String]) throws -> [String: Any] {
        let (data, _) = try send(request("GET", "/api/v1/checkpoints", query: query))
        return try json(data)
    }

    /// A checkpoint's summary and inspection.
    public func checkpoint(_ id: String) throws -> [String: Any] {
        let (data, _) = try send(request("GET", "/api/v1/checkpoints/\(id)"))
        return try json(data)
    }

    public func delete(_ id: String) throws {
        _ = try send(request("DELETE", "/api/v1/checkpoints/\(id)"))
    }

    /// Downloads a checkpoint archive to `destination`, resuming from `destination.partial` with a Range request if
    /// an earlier download stopped, and checking the SHA-256 before the file is moved into place (0600).
    /// Returns the digest.
    public func download(_ id: String, to destination: URL, progress: (@Sendable (Int64, Int64) -> Void)? = nil) throws -> String {
        let summary = try checkpoint(id)
        guard let checkpoint = summary["checkpoint"] as? [String: Any], let fullID = checkpoint["id"] as? String,
              let size = (checkpoint["size"] as? NSNumber)?.int64Value
        else { throw FerryClientError(code: "BAD_RESPONSE", message: "the server's checkpoint description is malformed") }
        let partial = destination.appendingPathExtension("partial")
        let sink = try DownloadSink(path: partial.path)
        if sink.offset > size { try sink.reset() }
        if sink.offset < size {
            var request = request("GET", "/api/v1/checkpoints/\(fullID)/archive")
            if sink.offset > 0 {
                request.setValue("bytes=\(sink.offset)-", forHTTPHeaderField: "Range")
                request.setValue("\"sha256:\(fullID)\"", forHTTPHeaderField: "If-Range")
            }
            let delegate = TaskDelegate(progress: progress, sink: sink, expectedTotal: size)
            let session = session(delegate: delegate)
            defer { session.finishTasksAndInvalidate() }
            let task = session.dataTask(with: request)
            task.resume()
            let (data, response, error) = delegate.wait()
            if let error {
                throw FerryClientError(code: "SERVER_UNREACHABLE", message: "download interrupted after \(sink.offset) bytes: \(error.localizedDescription); run again to resume")
            }
            if let sinkError = sink.error { throw sinkError }
            guard let http = response as? HTTPURLResponse, http.statusCode == 200 || http.statusCode == 206 else {
                throw Self.error(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
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

/// Receives one task's callbacks and lets the caller wait for the end. All state is guarded by `lock`.
private final class TaskDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSCondition()
    private var data = Data()
    private var response: URLResponse?
    private var error: (any Error)?
    private var done = false
    private let progress: (@Sendable (Int64, Int64) -> Void)?
    private let sink: DownloadSink?
    private let expectedTotal: Int64

    init(progress: (@Sendable (Int64, Int64) -> Void)?, sink: DownloadSink? = nil, expectedTotal: Int64 = 0) {
        self.progress = progress
        self.sink = sink
        self.expectedTotal = expectedTotal
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didSendBodyData bytesSent: Int64, totalBytesSent: Int64, totalBytesExpectedToSend: Int64) {
        progress?(totalBytesSent, totalBytesExpectedToSend)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse, completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
        lock.lock()
        self.response = response
        lock.unlock()
        if let sink, let http = response as? HTTPURLResponse {
            // A 200 to a Range request means the server sends everything: start over.
            if http.statusCode == 200 && sink.offset > 0 { try? sink.reset() }
            if http.statusCode != 200 && http.statusCode != 206 { sink.disable() }
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        if let sink, sink.enabled {
            sink.append(data)
            progress?(sink.offset, expectedTotal)
            return
        }
        lock.lock()
        self.data.append(data)
        lock.unlock()
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        lock.lock()
        self.error = error
        done = true
        lock.broadcast()
        lock.unlock()
    }

    func wait() -> (Data, URLResponse?, (any Error)?) {
        lock.lock()
        defer { lock.unlock() }
        while !done { lock.wait() }
        return (data, response, error)
    }
}

/// Appends downloaded bytes to a 0600 partial file and hashes the whole file. Guarded by `lock`: URLSession
/// calls back on its own queue while the caller waits.
final class DownloadSink: @unchecked Sendable {
    private let lock = NSLock()
    private let path: String
    private var handle: FileHandle
    private(set) var offset: Int64
    private(set) var error: FerryClientError?
    private(set) var enabled = true

    init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw FerryClientError(code: "FILE_ERROR", message: "cannot create \(path)")
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw FerryClientError(code: "FILE_ERROR", message: "cannot open \(path)")
        }
        self.handle = handle
        offset = Int64(handle.seekToEndOfFile())
    }

    func append(_ data: Data) {
        lock.lock()
        defer { lock.unlock() }
        guard error == nil else { return }
        do {
            try handle.write(contentsOf: data)
            offset += Int64(data.count)
        } catch {
            self.error = FerryClientError(code: "FILE_ERROR", message: "cannot write \(path)")
        }
    }

    func reset() throws {
        lock.lock()
        defer { lock.unlock() }
        try handle.truncate(atOffset: 0)
        offset = 0
    }

    func disable() {
        lock.lock()
        enabled = false
        lock.unlock()
    }

    /// SHA-256 of the whole file, read back from disk in 1 MiB pieces.
    func finish() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        try handle.synchronize()
        try handle.seek(toOffset: 0)
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        try handle.close()
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
