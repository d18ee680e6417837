import FerryAPI
import FerryClient
import Foundation

/// The target's half of a migration's cut-through: fetches the source's upload from the service while it still
/// arrives (`GET /api/v1/nodes/{node}/uploads/{upload}/archive`, long-polled slices), so the restore job that
/// follows finds its archive on disk instead of downloading it after the upload.
///
/// Only ever a head start, never trusted: the finished file is named by the SHA-256 this agent computed as it
/// wrote (`PREFETCH_DIR/<sha256>.tar`), and a restore job takes it only when that is its checkpoint ID. A prefetch
/// that fails or stalls leaves its partial file, which the restore job's own download resumes from (and checks
/// the same way). Files nobody took are removed after an hour.
final class Prefetcher: @unchecked Sendable {
    // @unchecked Sendable invariant: `prefetches` is only touched with `condition` locked; each Prefetch's mutable
    // fields likewise.
    final class Prefetch: @unchecked Sendable {
        var bytes: Int64 = 0
        var progressAt = Date()
        /// Set when the fetch thread ended; `digest` when it brought the whole upload.
        var ended = false
        var digest: String?
        var stopRequested = false
        /// Whether the service has ever answered about the upload (bytes, or none yet), and whether it has ever
        /// answered that it does not know it.
        var uploadSeen = false
        var uploadUnknown = false
    }

    let client: FerryClient
    let directory: String
    let log: @Sendable (String) -> Void
    /// Prefetches at once; further requests are declined (the restore jobs then download as before).
    let maximumConcurrent: Int
    /// How long a prefetch may make no progress before the restore job waiting for it takes over.
    var stallSeconds = 15.0
    static let sliceBytes: Int64 = 8 << 20
    static let leftoverAge: Double = 3600

    private let condition = NSCondition()
    private var prefetches: [String: Prefetch] = [:]

    init(client: FerryClient, directory: String, maximumConcurrent: Int = 2, log: @escaping @Sendable (String) -> Void) throws(AgentError) {
        self.client = client
        self.directory = directory
        self.maximumConcurrent = maximumConcurrent
        self.log = log
        try JobStore.makePrivateDirectory(directory)
        removeLeftovers()
    }

    static func isValid(_ request: PrefetchRequest) -> Bool {
        Job.isValidName(request.node) && Job.isValidName(request.upload)
    }

    /// `node@upload.partial`: '@' is in neither name.
    func partialPath(_ request: PrefetchRequest) -> String { "\(directory)/\(request.node)@\(request.upload).partial" }
    func finishedPath(_ digest: String) -> String { "\(directory)/\(digest).tar" }

    /// Starts fetching the upload on a thread of its own. False when it is already fetched or being fetched, or
    /// when ``maximumConcurrent`` prefetches run.
    @discardableResult
    func start(_ request: PrefetchRequest) -> Bool {
        removeLeftovers()
        condition.lock()
        defer { condition.unlock() }
        guard prefetches[request.key] == nil,
              prefetches.values.filter({ !$0.ended }).count < maximumConcurrent else { return false }
        let prefetch = Prefetch()
        prefetches[request.key] = prefetch
        let thread = Thread { [self] in
            let digest = fetch(request, prefetch)
            condition.lock()
            prefetch.ended = true
            prefetch.digest = digest
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "ferry-agent-prefetch"
        thread.start()
        return true
    }

    /// Puts the prefetched archive of `checkpoint` at `destination` when the prefetch brought exactly it, waiting
    /// for a prefetch under way as long as it makes progress. Otherwise a partial file it left becomes
    /// `destination.partial` (unless one is there), for the download to resume. True when the archive is in place.
    func adopt(_ request: PrefetchRequest, checkpoint: String, to destination: URL, control: JobControl,
               progress: (Int64) -> Void) -> Bool {
        while true {
            condition.lock()
            let prefetch = prefetches[request.key]
            let (ended, bytes, progressAt) = (prefetch?.ended ?? true, prefetch?.bytes ?? 0, prefetch?.progressAt ?? Date())
            let neverSeen = prefetch.map { !$0.uploadSeen && $0.uploadUnknown } ?? false
            condition.unlock()
            if ended { break }
            progress(bytes)
            if control.isInterrupted { return false }
            if neverSeen {
                // The checkpoint is catalogued (a restore asks for it), yet the address the prefetch asks has never
                // known the upload: another replica received it, or its store cannot be read while written.
                log("prefetch \(request.key): the service does not follow this upload; the restore downloads the archive itself")
                stop(request.key)
                continue
            }
            if Date().timeIntervalSince(progressAt) > stallSeconds {
                log("prefetch \(request.key): no progress for \(Int(stallSeconds)) s; the restore downloads the rest itself")
                stop(request.key)
            }
            _ = control.sleep(0.1)
        }
        let finished = finishedPath(checkpoint)
        // A file an earlier agent fetched was not fsynced: after a crash of the machine it may be torn.
        let fetchedNow = prefetchedHere(request.key)
        if FileManager.default.fileExists(atPath: finished),
           fetchedNow || (try? DownloadDigest.sha256(ofFile: finished)) == checkpoint,
           rename(finished, destination.path) == 0 {
            log("prefetch \(request.key): the archive \(checkpoint.prefix(12)) was fetched as it arrived")
            return true
        }
        let partial = destination.appendingPathExtension("partial").path
        if FileManager.default.fileExists(atPath: partialPath(request)), !FileManager.default.fileExists(atPath: partial) {
            _ = rename(partialPath(request), partial)
        }
        return false
    }

    /// Whether this process fetched the upload to its end.
    private func prefetchedHere(_ key: String) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return prefetches[key]?.digest != nil
    }

    /// Asks a prefetch to stop, and waits for its thread to end.
    func stop(_ key: String) {
        condition.lock()
        defer { condition.unlock() }
        guard let prefetch = prefetches[key] else { return }
        prefetch.stopRequested = true
        while !prefetch.ended { condition.wait() }
    }

    /// Stops every prefetch (agent shutdown); their partial files stay for the restore jobs.
    func stopAll() {
        condition.lock()
        let keys = Array(prefetches.keys)
        condition.unlock()
        keys.forEach(stop)
    }

    // MARK: The fetch

    /// Appends slices to the partial file until the service says the upload is complete; returns the SHA-256 of
    /// the finished file (renamed to `<sha256>.tar`), or nil when it stopped short.
    private func fetch(_ request: PrefetchRequest, _ prefetch: Prefetch) -> String? {
        let path = partialPath(request)
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            log("prefetch \(request.key): cannot open \(path)")
            return nil
        }
        defer { close(fd) }
        var offset = Int64(lseek(fd, 0, SEEK_END))
        var digest: DownloadDigest
        do {
            digest = try DownloadDigest(resuming: fd, prefix: offset, durable: false)
        } catch {
            log("prefetch \(request.key): \(error.message)")
            return nil
        }
        var failures = 0
        let firstAsked = Date()
        while !isStopRequested(prefetch) {
            var transfer = client.request("GET", "/api/v1/nodes/\(request.node)/uploads/\(request.upload)/archive", query: ["wait": "5"])
            transfer.stallTimeout = 30
            transfer.maximumBodyBytes = Int(Self.sliceBytes) + 1
            transfer.setHeader("Range", "bytes=\(offset)-\(offset + Self.sliceBytes - 1)")
            let response: TransferResponse
            do {
                response = try client.transport(transfer)
            } catch {
                failures += 1
                guard failures < 10 else {
                    log("prefetch \(request.key): gave up after \(failures) failed requests: \(error.message)")
                    return nil
                }
                Thread.sleep(forTimeInterval: min(0.25 * Double(failures), 2))
                continue
            }
            switch response.status {
            case 206:
                guard response.header("Content-Range")?.hasPrefix("bytes \(offset)-") == true, !response.body.isEmpty else {
                    log("prefetch \(request.key): the service sent another range than asked for")
                    return nil
                }
                guard response.body.withUnsafeBytes({ digest.append($0, to: fd) }) else {
                    log("prefetch \(request.key): cannot write \(path) (disk full?)")
                    return nil
                }
                offset += Int64(response.body.count)
                failures = 0
                condition.lock()
                prefetch.bytes = offset
                prefetch.progressAt = Date()
                prefetch.uploadSeen = true
                condition.unlock()
            case 204 where response.header("Ferry-Upload-State") == "complete":
                guard let checkpoint = response.header("Ferry-Upload-Checkpoint"),
                      response.header("Ferry-Upload-Received") == String(offset) else {
                    log("prefetch \(request.key): the upload ended at another length than fetched")
                    return nil
                }
                return finish(request, digest: digest, fd: fd, path: path, checkpoint: checkpoint)
            case 204:
                condition.lock()
                prefetch.progressAt = Date()
                prefetch.uploadSeen = true
                condition.unlock()
            case 404 where Date().timeIntervalSince(firstAsked) < 30:
                // The upload request may not have reached the service yet.
                condition.lock()
                prefetch.uploadUnknown = true
                condition.unlock()
                Thread.sleep(forTimeInterval: 0.2)
            default:
                log("prefetch \(request.key): the service answered \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))")
                if response.status == 409 { unlink(path) }
                return nil
            }
        }
        return nil
    }

    private func finish(_ request: PrefetchRequest, digest: DownloadDigest, fd: Int32, path: String, checkpoint: String) -> String? {
        let sum: String
        do {
            sum = try digest.finish(fsyncing: fd)
        } catch {
            log("prefetch \(request.key): \(error.message)")
            return nil
        }
        guard sum == checkpoint else {
            // A checkpoint image upload is catalogued as its layer: these bytes are not the archive.
            log("prefetch \(request.key): the bytes have SHA-256 \(sum.prefix(12)), the catalogued checkpoint is \(checkpoint.prefix(12)); dropped")
            unlink(path)
            return nil
        }
        guard rename(path, finishedPath(sum)) == 0 else {
            log("prefetch \(request.key): cannot move the file into place")
            return nil
        }
        log("prefetch \(request.key): fetched \(sum.prefix(12)) as it arrived")
        return sum
    }

    private func isStopRequested(_ prefetch: Prefetch) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return prefetch.stopRequested
    }

    /// Files of prefetches no restore job took: older than an hour, gone.
    private func removeLeftovers() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        let now = Date()
        for name in names {
            let path = directory + "/" + name
            if let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
               now.timeIntervalSince(modified) > Self.leftoverAge {
                unlink(path)
            }
        }
    }
}
