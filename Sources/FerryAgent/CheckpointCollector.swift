import FerryAPI
import CheckpointArchive
import Crypto
import FerryClient
import Foundation

/// Uploads every checkpoint archive that appears in a directory (the kubelet's `/var/lib/kubelet/checkpoints`,
/// where `POST /checkpoint/{ns}/{pod}/{container}` leaves them), from this node, exactly once.
///
/// Every `interval` seconds the directory is listed (files directly in it; no symlinks, no dot files):
/// - A file is taken only once it is complete: its size and modification time unchanged for `settle` seconds
///   (the kubelet writes the archive in place), and it reads to its end as a checkpoint archive; until then it is
///   looked at again on the next round. Its identity comes from the archive, read by the service, never from its
///   name.
/// - It is uploaded with this node's name. The service's answer is its SHA-256; it must equal the hash taken in the
///   completeness pass, and the file must still have the size and time it had, or the upload counts for nothing
///   and the file is taken again. The catalog is content-addressed: uploading the same bytes twice makes one checkpoint.
/// - What was collected is recorded in `WORK_DIR/collected.json` (written atomically) by device, inode, size and
///   time, so an agent restart does not collect a file twice; entries of files no longer there are dropped.
/// - `afterUpload: .remove` deletes the file once the catalog has it (its digest confirmed with a `GET`).
/// - A file that vanishes or changes mid-upload fails that upload (the service keeps nothing of it) and is
///   forgotten or taken again.
final class CheckpointCollector: @unchecked Sendable {
    // @unchecked Sendable invariant: `running`, `seen` and `collected` are only touched on the collector's own
    // thread, except `running`, which is guarded by `condition`.
    enum AfterUpload: String, Sendable {
        case keep, remove
    }

    struct Identity: Codable, Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: Int64
    }

    struct Record: Codable {
        var identity: Identity
        var checkpoint: String
    }

    let directory: String
    let stateFile: String
    let client: FerryClient
    let node: String
    let afterUpload: AfterUpload
    let interval: Double
    let settle: Double
    let log: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var running = false
    /// Files not yet complete: their identity and since when it has not changed.
    private var seen: [String: (Identity, Date)] = [:]
    private var collected: [String: Record] = [:]

    init(directory: String, workDirectory: String, client: FerryClient, node: String, afterUpload: AfterUpload,
         interval: Double = 1, settle: Double = 2, log: @escaping @Sendable (String) -> Void) {
        self.directory = directory
        stateFile = workDirectory + "/collected.json"
        self.client = client
        self.node = node
        self.afterUpload = afterUpload
        self.interval = interval
        self.settle = settle
        self.log = log
        if let data = FileManager.default.contents(atPath: stateFile),
           let records = try? JSONDecoder().decode([String: Record].self, from: data) {
            collected = records
        }
    }

    func start() {
        condition.lock()
        running = true
        condition.unlock()
        let thread = Thread { [self] in
            log("collecting checkpoint archives from \(directory) (\(afterUpload.rawValue) after upload)")
            while waitForNextRound() { round() }
        }
        thread.name = "ferry-agent-collector"
        thread.start()
    }

    func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    private func waitForNextRound() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: interval)
        while running && condition.wait(until: deadline) {}
        return running
    }

    private var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    /// One look at the directory.
    func round() {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        var changed = false
        for name in collected.keys where !names.contains(name) {
            collected[name] = nil
            changed = true
        }
        for name in seen.keys where !names.contains(name) { seen[name] = nil }
        for name in names {
            guard isRunning else { break }
            let path = directory + "/" + name
            guard let identity = Self.identity(of: path) else { continue }
            if collected[name]?.identity == identity { continue }
            guard let (earlier, since) = seen[name], earlier == identity else {
                seen[name] = (identity, Date())
                continue
            }
            guard Date().timeIntervalSince(since) >= settle else { continue }
            // Settled: complete only if it reads to its end as a checkpoint (a truncated one is still being written).
            // The same pass hashes every byte, to compare with the service's digest after the upload.
            var options = CheckpointReadOptions()
            options.decodeProcesses = false
            options.readProcessMemory = false
            let hashing: HashingSource
            do {
                hashing = HashingSource(try FileDescriptorSource(path: path))
                _ = try CheckpointReader.read(source: hashing, options: options)
            } catch let error as CheckpointError where [.notACheckpoint, .metadataMissing, .metadataInvalid].contains(error.code) {
                // Whole, but not a checkpoint: left alone until it changes.
                log("collector: \(name) is not a checkpoint archive (\(error.code.rawValue)); left alone")
                collected[name] = Record(identity: identity, checkpoint: "refused:\(error.code.rawValue)")
                seen[name] = nil
                changed = true
                continue
            } catch {
                // Cut short: still being written.
                seen[name] = (identity, Date())
                continue
            }
            if let record = collect(path, name: name, identity: identity, digest: hashing.digest) {
                collected[name] = record
                seen[name] = nil
                changed = true
                if afterUpload == .remove { remove(path, record: record) }
            }
        }
        if changed { save() }
    }

    /// Uploads one file; the record once the service has exactly these bytes.
    private func collect(_ path: String, name: String, identity: Identity, digest: String) -> Record? {
        let answer: [String: Any]
        do {
            answer = try client.push(file: URL(fileURLWithPath: path), node: node, labels: [:], progress: nil)
        } catch let error as FerryClientError {
            log("collector: \(name) was not taken: \(error.message) [\(error.code)]")
            // A refusal (not a checkpoint, too large) is final for these bytes; a transport failure is retried.
            if error.isServerAnswer && (error.status ?? 500) < 500 {
                return Record(identity: identity, checkpoint: "refused:\(error.code)")
            }
            seen[name] = nil
            return nil
        } catch {
            seen[name] = nil
            return nil
        }
        guard let checkpoint = (answer["checkpoint"] as? [String: Any])?["id"] as? String else { return nil }
        // The service hashed what it received: the bytes hashed here before the upload, if the file is unchanged.
        guard Self.identity(of: path) == identity, digest == checkpoint else {
            log("collector: \(name) changed while it was uploaded; it is taken again")
            seen[name] = nil
            return nil
        }
        log("collector: \(name) catalogued as \(checkpoint.prefix(12))")
        return Record(identity: identity, checkpoint: checkpoint)
    }

    /// Deletes a collected file once the catalog confirms it has the checkpoint.
    private func remove(_ path: String, record: Record) {
        guard !record.checkpoint.hasPrefix("refused:") else { return }
        guard let summary = try? client.checkpoint(record.checkpoint),
              (summary["checkpoint"] as? [String: Any])?["id"] as? String == record.checkpoint,
              Self.identity(of: path) == record.identity else { return }
        if unlink(path) == 0 { log("collector: removed \((path as NSString).lastPathComponent) (catalogued)") }
    }

    private func save() {
        guard let data = try? JSONEncoder().encode(collected) else { return }
        _ = FileWrite.replace(stateFile, with: data, temporarySuffix: ".partial")
    }

    /// A regular file's identity (symlinks are not followed, not collected).
    static func identity(of path: String) -> Identity? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                        modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

}

/// Passes a file's bytes to the archive reader and hashes every one of them: it never skips, so nothing the reader
/// does not need escapes the hash.
private final class HashingSource: ByteSource {
    private let upstream: FileDescriptorSource
    private var hasher = SHA256()

    init(_ upstream: FileDescriptorSource) { self.upstream = upstream }

    func nextChunk() throws -> UnsafeRawBufferPointer {
        let chunk = try upstream.nextChunk()
        hasher.update(bufferPointer: chunk)
        return chunk
    }

    /// The SHA-256 of the bytes read so far (all of them, once the reader is done), as lowercase hex.
    var digest: String { Hex.string(hasher.finalize()) }
}
