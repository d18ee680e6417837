import FerryClient
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Brings a checkpoint archive from the service to the node: resumable, digest-checked, optionally throttled,
/// and interruptible.
///
/// The bytes come in `Range` slices appended to `DESTINATION.partial` — the file `FerryClient.download` resumes
/// from — so that a download can be paced to `maximumRate` (a real limit: nothing is fetched ahead of the pace,
/// and at most one slice is in memory), stopped between slices or mid-slice by a cancel or an agent shutdown,
/// and picked up by the next agent from the bytes on disk. Once the partial file is complete,
/// `FerryClient.download` checks the SHA-256 against the checkpoint ID and moves the file into place (it finds
/// nothing left to fetch; if the service ignored the `Range`, it fetches the rest itself).
struct ArchiveDownload {
    let client: FerryClient
    let token: String?
    /// Bytes per second; nil for as fast as the network goes.
    let maximumRate: Int64?
    /// Consecutive failed requests (service unreachable, 5xx) before the download gives up.
    var maximumAttempts = 10

    /// Slice size: about a quarter second's worth when throttled, so the pace stays smooth; 8 MiB otherwise.
    var sliceBytes: Int64 {
        guard let maximumRate else { return 8 << 20 }
        return min(max(maximumRate / 4, 4096), 8 << 20)
    }

    /// Downloads checkpoint `id` to `destination`; returns the verified digest.
    /// - Parameter progress: bytes on disk and the archive's size, after each slice.
    /// - Throws: `AgentError` — the service's own code when it refuses (`CHECKPOINT_NOT_FOUND`, `UNAUTHORIZED`,
    ///   `DIGEST_MISMATCH` twice in a row), `DOWNLOAD_FAILED` when it stays unreachable, `CANCELLED` when the
    ///   control interrupted the download (cancel or stop; the partial file stays for the next attempt).
    func run(_ id: String, to destination: URL, control: JobControl,
             progress: (Int64, Int64) -> Void) throws(AgentError) -> String {
        var digestFailures = 0
        while true {
            let size = try retrying(control) { () throws(FerryClientError) -> Int64 in
                let summary: [String: Any]
                do {
                    summary = try client.checkpoint(id)
                } catch let error as FerryClientError {
                    throw error
                } catch {
                    throw FerryClientError(code: "BAD_RESPONSE", message: "\(error)")
                }
                guard let checkpoint = summary["checkpoint"] as? [String: Any],
                      let size = (checkpoint["size"] as? NSNumber)?.int64Value, size >= 0 else {
                    throw FerryClientError(code: "BAD_RESPONSE", message: "the service's description of \(id) has no size")
                }
                return size
            }
            try fetchSlices(id, size: size, into: destination.appendingPathExtension("partial").path,
                            control: control, progress: progress)
            do {
                return try client.download(id, to: destination)
            } catch let error as FerryClientError where error.code == "DIGEST_MISMATCH" && digestFailures == 0 {
                // FerryClient removed the bad partial file: start once more from nothing.
                digestFailures += 1
                continue
            } catch let error as FerryClientError {
                throw AgentError(AgentErrorCode(error.code), error.message)
            } catch {
                throw AgentError(.downloadFailed, "\(error)")
            }
        }
    }

    /// Appends slices to the partial file until it holds `size` bytes (or the service ignores `Range`).
    private func fetchSlices(_ id: String, size: Int64, into path: String, control: JobControl,
                             progress: (Int64, Int64) -> Void) throws(AgentError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError(.fileError, "cannot open \(path)") }
        defer { close(fd) }
        var offset = Int64(lseek(fd, 0, SEEK_END))
        if offset > size {
            guard ftruncate(fd, 0) == 0 else { throw AgentError(.fileError, "cannot truncate \(path)") }
            offset = 0
        }
        progress(offset, size)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        let started = Date()
        var fetched: Int64 = 0
        while offset < size {
            let last = min(offset + sliceBytes, size) - 1
            var request = URLRequest(url: client.server.appendingPathComponent("api/v1/checkpoints/\(id)/archive"))
            request.setValue("bytes=\(offset)-\(last)", forHTTPHeaderField: "Range")
            request.setValue("\"sha256:\(id)\"", forHTTPHeaderField: "If-Range")
            if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            let body = try retrying(control) { () throws(FerryClientError) -> Data? in
                let (data, response, error) = fetch(request, session: session, control: control)
                if let error {
                    throw FerryClientError(code: "SERVER_UNREACHABLE", message: "the download broke off: \(error.localizedDescription)")
                }
                guard let http = response as? HTTPURLResponse else {
                    throw FerryClientError(code: "BAD_RESPONSE", message: "no HTTP response")
                }
                if http.statusCode == 200 { return nil }
                guard http.statusCode == 206 else { throw FerryClient.error(status: http.statusCode, body: data ?? Data()) }
                guard let data, data.count == Int(last - offset + 1),
                      http.value(forHTTPHeaderField: "Content-Range")?.hasPrefix("bytes \(offset)-") == true else {
                    throw FerryClientError(status: 502, code: "BAD_RESPONSE", message: "the service sent a different range than asked for")
                }
                return data
            }
            // A 200 means the service ignores Range: let FerryClient.download take the whole file in one go.
            guard let body else { return }
            guard body.withUnsafeBytes({ FileIO.writeAll(fd, $0) }) else {
                throw AgentError(.fileError, "cannot write \(path) (disk full?)")
            }
            offset += Int64(body.count)
            fetched += Int64(body.count)
            progress(offset, size)
            if let maximumRate {
                let due = Double(fetched) / Double(maximumRate) + started.timeIntervalSinceNow
                if due > 0, !control.sleep(due) { throw Self.interrupted }
            }
        }
    }

    /// One request, waited for on this thread; the control can cancel it.
    private func fetch(_ request: URLRequest, session: URLSession, control: JobControl) -> (Data?, URLResponse?, (any Error)?) {
        let reply = Reply()
        let task = session.dataTask(with: request) { data, response, error in reply.set(data, response, error) }
        guard control.attach(task) else { return (nil, nil, CancellationError()) }
        task.resume()
        let result = reply.wait()
        _ = control.attach(nil as URLSessionTask?)
        return result
    }

    /// Runs `body`, retrying with back-off (0.5 s doubling to 10 s) while the service is unreachable or answers
    /// 5xx; other answers are final. An interruption ends it with `CANCELLED`.
    private func retrying<T>(_ control: JobControl, _ body: () throws(FerryClientError) -> T) throws(AgentError) -> T {
        var attempt = 0
        while true {
            guard !control.isInterrupted else { throw Self.interrupted }
            do {
                return try body()
            } catch {
                guard !control.isInterrupted else { throw Self.interrupted }
                let transient = (error.status ?? 500) >= 500
                attempt += 1
                guard transient else { throw AgentError(AgentErrorCode(error.code), error.message) }
                guard attempt < maximumAttempts else {
                    throw AgentError(.downloadFailed, "gave up after \(attempt) attempts: \(error.message)")
                }
                guard control.sleep(min(0.5 * Double(1 << min(attempt - 1, 5)), 10)) else { throw Self.interrupted }
            }
        }
    }

    static let interrupted = AgentError(.cancelled, "the download was interrupted")
}

/// One request's outcome, handed from URLSession's queue to the waiting job thread. Guarded by `condition`.
private final class Reply: @unchecked Sendable {
    private let condition = NSCondition()
    private var done = false
    private var data: Data?
    private var response: URLResponse?
    private var error: (any Error)?

    func set(_ data: Data?, _ response: URLResponse?, _ error: (any Error)?) {
        condition.lock()
        (self.data, self.response, self.error, done) = (data, response, error, true)
        condition.broadcast()
        condition.unlock()
    }

    func wait() -> (Data?, URLResponse?, (any Error)?) {
        condition.lock()
        defer { condition.unlock() }
        while !done { condition.wait() }
        return (data, response, error)
    }
}
