import Foundation

/// Recent answers of `GET /api/v1/checkpoints`, by query, each valid while the catalog's write generation is the
/// one it was read under: any write (an upload, a delete, a repair) makes every entry stale at once, so an answer
/// from here is byte for byte what the catalog would give now. Dashboards and agents poll the same few lists; this
/// spares SQLite building the same page's JSON again. Bounded: 256 entries, 16 MiB, none over 1 MiB; least recently
/// used first out. The answer holds no secret (redaction concerns inspections only), so readers share it.
final class ListCache: @unchecked Sendable {
    // @unchecked Sendable invariant: `entries`, `order` and `bytes` are only touched with `lock` held.
    private struct Entry {
        var generation: UInt64
        var body: [UInt8]
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    /// Keys, least recently used first.
    private var order: [String] = []
    private var bytes = 0
    let maximumEntries: Int
    let maximumBytes: Int
    let maximumEntryBytes: Int

    init(maximumEntries: Int = 256, maximumBytes: Int = 16 << 20, maximumEntryBytes: Int = 1 << 20) {
        self.maximumEntries = maximumEntries
        self.maximumBytes = maximumBytes
        self.maximumEntryBytes = maximumEntryBytes
    }

    /// The key of a query: its parameters, sorted (the list is a function of them alone).
    static func key(_ parameters: [String: String]) -> String {
        parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
    }

    func body(for key: String, generation: UInt64) -> [UInt8]? {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = entries[key] else { return nil }
        guard entry.generation == generation else {
            remove(key)
            return nil
        }
        if let index = order.firstIndex(of: key) { order.remove(at: index) }
        order.append(key)
        return entry.body
    }

    func store(_ body: [UInt8], for key: String, generation: UInt64) {
        guard body.count <= maximumEntryBytes else { return }
        lock.lock()
        defer { lock.unlock() }
        remove(key)
        entries[key] = Entry(generation: generation, body: body)
        order.append(key)
        bytes += body.count
        while (entries.count > maximumEntries || bytes > maximumBytes), let oldest = order.first {
            remove(oldest)
        }
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }

    /// With `lock` held.
    private func remove(_ key: String) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        bytes -= entry.body.count
        if let index = order.firstIndex(of: key) { order.remove(at: index) }
    }
}
