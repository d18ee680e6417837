import FerryCatalog
import Foundation

/// Works out, in the background, the uncompressed digest (the image config's diff_id) of every gzip or zstd
/// checkpoint as soon as it is catalogued, so that the first pull of its image from `/v2/` does not wait for a
/// decompressing pass over a many-GiB archive. One thread, one archive at a time: it never competes with more than
/// one core. At start-up it queues every checkpoint still without one. The registry computes a missing digest
/// itself if asked first.
final class LayerDigestWorker: @unchecked Sendable {
    // @unchecked Sendable invariant: `queue` and `running` are only touched with `condition` locked.
    private let catalog: Catalog
    private let blobs: BlobStore
    private let log: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var queue: [CheckpointRecord] = []
    private var running = true

    init(catalog: Catalog, blobs: BlobStore, log: @escaping @Sendable (String) -> Void) {
        self.catalog = catalog
        self.blobs = blobs
        self.log = log
        let thread = Thread { [self] in loop() }
        thread.name = "ferry-layer-digest"
        thread.start()
    }

    /// Queues a checkpoint whose diff_id is not known yet (others are ignored).
    func enqueue(_ record: CheckpointRecord) {
        guard record.uncompressedDigest == nil, record.compression == "gzip" || record.compression == "zstd" else { return }
        condition.lock()
        queue.append(record)
        condition.signal()
        condition.unlock()
    }

    /// Queues every catalogued checkpoint without one.
    func enqueueMissing() {
        guard let records = try? catalog.checkpointsWithoutUncompressedDigest() else { return }
        records.forEach(enqueue)
    }

    func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    private func next() -> CheckpointRecord? {
        condition.lock()
        defer { condition.unlock() }
        while running && queue.isEmpty { condition.wait() }
        return running ? queue.removeFirst() : nil
    }

    private func loop() {
        while let record = next() {
            // Asked for already (a pull came first), or deleted meanwhile: nothing to do.
            guard let current = try? catalog.checkpoint(record.id), current.uncompressedDigest == nil else { continue }
            do {
                _ = try UncompressedDigest.compute(current, blobs: blobs, catalog: catalog)
            } catch {
                log("layer digest of \(record.id.prefix(12)) not worked out: \(error)")
            }
        }
    }
}
