public import CheckpointArchive
public import FerryCatalog
import FerryHTTP
import FerryInspect
public import FerryValidation
import Foundation

/// What the uploader says about an archive besides its bytes.
public struct IngestMetadata: Sendable {
    /// The node the checkpoint was taken on.
    public var sourceNode: String?
    public var labels: [String: String]
    /// The uploader's name for this upload (`Ferry-Upload-ID`): with a source node, readers may follow it as it
    /// arrives (``LiveUploads``).
    public var uploadID: String?

    public init(sourceNode: String? = nil, labels: [String: String] = [:], uploadID: String? = nil) {
        self.sourceNode = sourceNode
        self.labels = labels
        self.uploadID = uploadID
    }
}

/// The outcome of one ingest.
public struct IngestResult: Sendable {
    public var record: CheckpointRecord
    /// False when the same archive was already catalogued (the upload was discarded).
    public var created: Bool
    public var seconds: Double
}

/// Takes an archive in, in one pass over its bytes: each chunk is written to a temporary file, hashed, and handed
/// to the checkpoint reader before the next one is pulled. Nothing is held whole in memory.
///
/// The catalog row is inserted only after the blob is durable (fsynced and renamed); on any failure the temporary
/// file is removed and no row exists, so an aborted or refused upload leaves nothing behind.
public struct Ingestor: Sendable {
    public let catalog: Catalog
    public let blobs: BlobStore
    /// Uploads larger than this are refused (`PAYLOAD_TOO_LARGE`).
    public let maximumSize: Int64
    /// The archive rules' limits and allowances.
    public let policy: ValidationPolicy
    /// Runs between the blob's commit and the row's insert (tests stage races there).
    var afterBlobCommit: (@Sendable () -> Void)?
    /// Where named uploads are followed while they arrive (nil: nowhere).
    var liveUploads: LiveUploads?
    /// Signs each new checkpoint in its row's transaction (nil: unsigned, as in some catalog tests).
    var signing: CheckpointSigning?

    public init(catalog: Catalog, blobs: BlobStore, maximumSize: Int64, policy: ValidationPolicy = .init()) {
        self.catalog = catalog
        self.blobs = blobs
        self.maximumSize = maximumSize
        self.policy = policy
    }

    /// Reads an archive from `source` (an upload body) to its end and catalogues it.
    /// - Throws: `CheckpointError` (not a checkpoint, corrupt, truncated …), `CatalogError` (storage), or
    ///   `IngestLimitExceeded`.
    public func ingest(from source: any ByteSource, metadata: IngestMetadata) throws -> IngestResult {
        let started = Date()
        let upload = try blobs.beginUpload()
        let live = metadata.uploadID.flatMap { id in
            metadata.sourceNode.flatMap { node in (try? upload.liveReader()).flatMap { liveUploads?.begin(node: node, id: id, reader: $0) } }
        }
        do {
            let result = try ingest(from: source, into: upload, live: live, metadata: metadata, started: started)
            // A sealed upload's last chunk is written by its finish: only now are all its bytes readable.
            live?.advance(to: upload.bytesReadable)
            live?.finish(.complete(checkpoint: result.record.id))
            return result
        } catch {
            live?.finish(.failed(code: Self.code(of: error), message: "the upload was not catalogued"))
            throw error
        }
    }

    private func ingest(from source: any ByteSource, into first: BlobUpload, live: LiveUpload?, metadata: IngestMetadata,
                        started: Date) throws -> IngestResult {
        var upload = first
        let tee = TeeSource(upstream: source, upload: upload, limit: maximumSize, live: live)
        var manifest: CheckpointManifest
        do {
            manifest = try CheckpointReader.read(
                source: tee,
                reopen: {
                    // The second pass reads the bytes already on disk; finish pulling the upload first.
                    try tee.drain()
                    return try upload.reader().byteSource()
                }
            )
            try tee.drain()
        } catch let error as CheckpointError where error.code == .notACheckpoint || error.code == .metadataMissing {
            // Perhaps a saved checkpoint image: then its one layer is the checkpoint archive, and what is stored.
            try tee.drain()
            // Read back through the store's reader: the file is sealed when the store encrypts.
            let whole = try upload.reader()
            guard let image = try? ImageArchive.inspect(source: whole.byteSource()) else { throw error }
            let layer = try blobs.beginUpload()
            try ImageArchive.copyLayer(source: whole.byteSource(), entry: image.layerEntry) { try layer.write($0) }
            upload.discard()
            upload = layer
            manifest = try CheckpointReader.read(source: try layer.reader().byteSource(), reopen: { try layer.reader().byteSource() })
            manifest.sourceImage = image
        }
        let digest = try upload.finish()
        // Validation runs on every upload; an archive with error findings is still catalogued (it may be evidence),
        // but its state says it is unfit to restore.
        let findings = ArchiveValidator.findings(for: manifest, policy: policy)
        let (record, inspection) = try CheckpointRecordBuilder.record(
            for: manifest, digest: digest, size: upload.bytesWritten, metadata: metadata, findings: findings)
        // The blob and its row change together: a delete of the same digest waits, or happens wholly before.
        return try blobs.withDigestLock(digest) {
            let created = try blobs.commit(upload)
            afterBlobCommit?()
            do {
                let findingRecords = findings.map(CheckpointRecordBuilder.findingRecord)
                let (stored, inserted) = try catalog.insert(
                    record, inspection: inspection, findings: findingRecords,
                    sign: signing.map { signing in { try signing.sign($0, findings: findingRecords, at: $1) } })
                // The blob is in place now: a row once marked as missing it is whole again.
                if !inserted { try? catalog.clearProblem(digest) }
                return IngestResult(record: stored, created: inserted, seconds: Date().timeIntervalSince(started))
            } catch {
                // No orphan blob: a blob this upload created goes if its row could not be written.
                if created && !((try? catalog.contains(digest)) ?? false) { blobs.remove(digest) }
                throw error
            }
        }
    }
}

extension Ingestor {
    /// The stable code of an ingest failure, for the readers of a live upload.
    static func code(of error: any Error) -> String {
        switch error {
        case let error as CheckpointError: error.code.rawValue
        case let error as CatalogError: error.code.rawValue
        case is IngestLimitExceeded: "PAYLOAD_TOO_LARGE"
        case let error as HTTPError: error.code
        default: "UPLOAD_FAILED"
        }
    }
}

/// Passes an upload through to libarchive while writing every byte to the blob upload. It never skips: every
/// byte must reach the file and the hash, whatever libarchive chooses not to read.
final class TeeSource: ByteSource {
    private let upstream: any ByteSource
    private let upload: BlobUpload
    private let limit: Int64
    private let live: LiveUpload?
    private var finished = false

    init(upstream: any ByteSource, upload: BlobUpload, limit: Int64, live: LiveUpload? = nil) {
        self.upstream = upstream
        self.upload = upload
        self.limit = limit
        self.live = live
    }

    func nextChunk() throws -> UnsafeRawBufferPointer {
        guard !finished else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let chunk = try upstream.nextChunk()
        if chunk.isEmpty {
            finished = true
            return chunk
        }
        guard upload.bytesWritten + Int64(chunk.count) <= limit else { throw IngestLimitExceeded(limit: limit) }
        try upload.write(chunk)
        live?.advance(to: upload.bytesReadable)
        return chunk
    }

    /// Pulls the rest of the upload (the tar's end padding libarchive did not need) into the file.
    func drain() throws {
        while try !nextChunk().isEmpty {}
    }
}

/// Removes a checkpoint: its row and its blob together, under the digest's lock, with the deletion recorded (who or
/// which policy, why) in the row's transaction. A pinned checkpoint, or one an unfinished migration uses, is refused
/// there (`CHECKPOINT_PINNED`, `CHECKPOINT_IN_USE`). On a full disk the space reserve is given up so the catalog can
/// record the delete, and taken again once the blob's space is free.
enum CheckpointDeletion {
    static func delete(_ id: String, cause: DeletionCause, catalog: Catalog, blobs: BlobStore, reserve: SpaceReserve? = nil) throws {
        try blobs.withDigestLock(id) {
            do {
                _ = try catalog.delete(id, cause: cause)
            } catch let error as CatalogError where error.code == .storageFull {
                guard let reserve, reserve.release() else { throw error }
                _ = try catalog.delete(id, cause: cause)
            }
            blobs.remove(id)
        }
        reserve?.replenish()
    }
}
