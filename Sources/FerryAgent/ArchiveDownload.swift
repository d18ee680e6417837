import FerryClient
import Foundation

/// Brings a checkpoint archive from the service to the node: resumable, digest-checked, optionally throttled,
/// and interruptible.
///
/// The bytes come in `Range` slices appended to `DESTINATION.partial` — the file `FerryClient.download` resumes
/// from — so that a download can be paced to `maximumRate` (a real limit: nothing is fetched ahead of the pace,
/// and at most one slice is in memory), stopped between slices or mid-slice by a cancel or an agent shutdown,
/// and picked up by the next agent from the bytes on disk. The SHA-256 is taken as the slices are written
/// (``DownloadDigest``), so once the partial file is complete it is
/// checked against the checkpoint ID and moved into place without being read again. It is not fsynced: the
/// catalog's copy is the durable one, and a job resumed after the agent stopped checks the archive's digest again
/// before it uses it (``JobRunner``), so the disk is left to writes that must be durable. If the service ignores the
/// `Range`, `FerryClient.download` fetches the whole file instead, with the same checks.
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
            let (fullID, size) = try retrying(control) { () throws(FerryClientError) -> (String, Int64) in
                let summary: [String: Any]
                do {
                    summary = try client.checkpoint(id)
                } catch let error as FerryClientError {
                    throw error
                } catch {
                    throw FerryClientError(code: "BAD_RESPONSE", message: "\(error)")
                }
                guard let checkpoint = summary["checkpoint"] as? [String: Any], let fullID = checkpoint["id"] as? String,
                      let size = (checkpoint["size"] as? NSNumber)?.int64Value, size >= 0 else {
                    throw FerryClientError(code: "BAD_RESPONSE", message: "the service's description of \(id) has no ID or size")
                }
                return (fullID, size)
            }
            let partial = destination.appendingPathExtension("partial")
            do {
                if let digest = try fetchSlices(id, size: size, into: partial.path, control: control, progress: progress) {
                    guard digest == fullID else {
                        try? FileManager.default.removeItem(at: partial)
                        throw FerryClientError(code: "DIGEST_MISMATCH",
                                               message: "the downloaded bytes have SHA-256 \(digest), not \(fullID); the partial file was removed")
                    }
                    guard rename(partial.path, destination.path) == 0 else {
                        throw FerryClientError(code: "FILE_ERROR", message: "cannot move the download to \(destination.path)")
                    }
                    return digest
                }
                return try client.download(id, to: destination, known: (fullID, size))
            } catch let error as FerryClientError where error.code == "DIGEST_MISMATCH" && digestFailures == 0 {
                // The bad partial file is gone: start once more from nothing.
                digestFailures += 1
                continue
            } catch let error as FerryClientError {
                throw AgentError(AgentErrorCode(error.code), error.message)
            } catch let error as AgentError {
                throw error
            } catch {
                throw AgentError(.downloadFailed, "\(error)")
            }
        }
    }

    /// Appends slices to the partial file until it holds `size` bytes; returns their SHA-256 once the file is on
    /// disk, or nil when the service ignores `Range`.
    private func fetchSlices(_ id: String, size: Int64, into path: String, control: JobControl,
                             progress: (Int64, Int64) -> Void) throws(AgentError) -> String? {
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError(.fileError, "cannot open \(path)") }
        defer { close(fd) }
        var offset = Int64(lseek(fd, 0, SEEK_END))
        if offset > size {
            guard ftruncate(fd, 0) == 0 else { throw AgentError(.fileError, "cannot truncate \(path)") }
            offset = 0
        }
        var digest: DownloadDigest
        do {
            digest = try DownloadDigest(resuming: fd, prefix: offset, durable: false)
        } catch {
            throw AgentError(.fileError, error.message)
        }
        progress(offset, size)
        let started = Date()
        var fetched: Int64 = 0
        while offset < size {
            let last = min(offset + sliceBytes, size) - 1
            var request = client.request("GET", "/api/v1/checkpoints/\(id)/archive")
            request.stallTimeout = 60
            request.maximumBodyBytes = Int(sliceBytes) + 1
            request.setHeader("Range", "bytes=\(offset)-\(last)")
            request.setHeader("If-Range", "\"sha256:\(id)\"")
            let body = try retrying(control) { () throws(FerryClientError) -> Data? in
                let response = try fetch(request, control: control)
                if response.status == 200 { return nil }
                guard response.status == 206 else { throw FerryClient.error(status: response.status, body: response.body) }
                guard response.body.count == Int(last - offset + 1),
                      response.header("Content-Range")?.hasPrefix("bytes \(offset)-") == true else {
                    throw FerryClientError(status: 502, code: "BAD_RESPONSE", message: "the service sent a different range than asked for")
                }
                return response.body
            }
            // A 200 means the service ignores Range: let FerryClient.download take the whole file in one go.
            guard let body else { return nil }
            guard body.withUnsafeBytes({ digest.append($0, to: fd) }) else {
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
        do {
            return try digest.finish(fsyncing: fd)
        } catch {
            throw AgentError(.fileError, error.message)
        }
    }

    /// One request, waited for on this thread; the control can cancel it. A 200 (the service ignoring `Range`)
    /// is not read: the caller hands the whole file to `FerryClient.download`.
    private func fetch(_ request: TransferRequest, control: JobControl) throws(FerryClientError) -> TransferResponse {
        let cancellation = TransferCancellation()
        guard control.attach(cancellation) else { throw FerryClientError(code: "CANCELLED", message: "the download was interrupted") }
        defer { _ = control.attach(nil as TransferCancellation?) }
        var ignoredRange = false
        do {
            return try client.transport(request, cancellation: cancellation, onResponse: { status, _ in
                ignoredRange = status == 200
                return !ignoredRange
            })
        } catch where ignoredRange {
            return TransferResponse(status: 200, headers: [:], body: Data())
        }
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
