import Foundation

/// Counters for `/metrics` that the HTTP layer does not keep: ingests and their durations.
/// One lock guards all fields; updates are a few additions.
public final class ServiceMetrics: @unchecked Sendable {
    /// Upper bounds (seconds) of the ingest duration histogram buckets.
    static let ingestBuckets: [Double] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]

    private let lock = NSLock()
    private var ingestCounts: [String: Int] = [:]  // by outcome: created, duplicate, rejected, failed
    private var ingestBucketCounts = [Int](repeating: 0, count: ingestBuckets.count)
    private var ingestSeconds = 0.0
    private var ingestTotal = 0
    private var ingestBytes: Int64 = 0
    private var orphanBlobsRemoved = 0

    public init() {}

    /// What the start-up check of the blob store removed.
    func recordStoreCheck(orphansRemoved: Int) {
        lock.lock()
        defer { lock.unlock() }
        orphanBlobsRemoved += orphansRemoved
    }

    func recordIngest(outcome: String, seconds: Double, bytes: Int64) {
        lock.lock()
        defer { lock.unlock() }
        ingestCounts[outcome, default: 0] += 1
        guard outcome == "created" || outcome == "duplicate" else { return }
        ingestTotal += 1
        ingestSeconds += seconds
        ingestBytes += bytes
        for (index, bound) in Self.ingestBuckets.enumerated() where seconds <= bound {
            ingestBucketCounts[index] += 1
        }
    }

    /// The ingest families in Prometheus text format.
    func prometheusText() -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = "# HELP ferry_ingests_total Uploads by outcome (created, duplicate, rejected, failed).\n"
        out += "# TYPE ferry_ingests_total counter\n"
        for outcome in ["created", "duplicate", "rejected", "failed"] {
            out += "ferry_ingests_total{outcome=\"\(outcome)\"} \(ingestCounts[outcome] ?? 0)\n"
        }
        out += "# HELP ferry_ingest_duration_seconds Time from the first byte of an accepted upload to its catalog row.\n"
        out += "# TYPE ferry_ingest_duration_seconds histogram\n"
        for (index, bound) in Self.ingestBuckets.enumerated() {
            out += "ferry_ingest_duration_seconds_bucket{le=\"\(bound)\"} \(ingestBucketCounts[index])\n"
        }
        out += "ferry_ingest_duration_seconds_bucket{le=\"+Inf\"} \(ingestTotal)\n"
        out += "ferry_ingest_duration_seconds_sum \(ingestSeconds)\n"
        out += "ferry_ingest_duration_seconds_count \(ingestTotal)\n"
        out += "# HELP ferry_ingest_bytes_total Bytes of accepted uploads.\n# TYPE ferry_ingest_bytes_total counter\n"
        out += "ferry_ingest_bytes_total \(ingestBytes)\n"
        out += "# HELP ferry_store_orphan_blobs_removed_total Blobs without a catalog row removed by the start-up check.\n"
        out += "# TYPE ferry_store_orphan_blobs_removed_total counter\nferry_store_orphan_blobs_removed_total \(orphanBlobsRemoved)\n"
        return out
    }
}
