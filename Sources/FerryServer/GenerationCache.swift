import Foundation

/// Answers kept in memory while the catalog's write generation is the one they were read under: any checkpoint
/// write (an upload, a delete, a repair) makes every entry stale at once, so a value from here is what the catalog
/// would give now. The service keeps three: list answers and rendered list pages by query (dashboards and agents
/// poll the same few), and where each archive lives by the ID or digest asked for (so `Range`, `HEAD` and `/v2/`
/// blob requests skip decoding a catalog row). Bounded by entries and by a cost (bytes); least recently used first
/// out. Nothing kept here is secret (redaction concerns inspections only), so readers share it.
final class GenerationCache<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable invariant: `entries`, `clock` and `cost` are only touched with `lock` held.
    private struct Entry {
        var generation: UInt64
        var value: Value
        var cost: Int
        var lastUsed: UInt64
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var clock: UInt64 = 0
    private var totalCost = 0
    private let costOf: @Sendable (Value) -> Int
    let maximumEntries: Int
    let maximumCost: Int
    let maximumEntryCost: Int

    init(maximumEntries: Int = 256, maximumCost: Int = 16 << 20, maximumEntryCost: Int = 1 << 20,
         cost: @escaping @Sendable (Value) -> Int) {
        self.maximumEntries = maximumEntries
        self.maximumCost = maximumCost
        self.maximumEntryCost = maximumEntryCost
        self.costOf = cost
    }

    /// The key of a query: its parameters, sorted (a list is a function of them alone).
    static func key(_ parameters: [String: String]) -> String {
        parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
    }

    func value(for key: String, generation: UInt64) -> Value? {
        lock.lock()
        defer { lock.unlock() }
        guard var entry = entries[key] else { return nil }
        guard entry.generation == generation else {
            remove(key)
            return nil
        }
        clock &+= 1
        entry.lastUsed = clock
        entries[key] = entry
        return entry.value
    }

    func store(_ value: Value, for key: String, generation: UInt64) {
        let cost = costOf(value)
        guard cost <= maximumEntryCost else { return }
        lock.lock()
        defer { lock.unlock() }
        remove(key)
        clock &+= 1
        entries[key] = Entry(generation: generation, value: value, cost: cost, lastUsed: clock)
        totalCost += cost
        // Eviction scans the entries (a few hundred at most); a hit stays O(1).
        while entries.count > maximumEntries || totalCost > maximumCost,
              let oldest = entries.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key {
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
        totalCost -= entry.cost
    }
}

extension GenerationCache where Value == [UInt8] {
    /// A cache of response bodies, costed by their bytes.
    convenience init(maximumEntries: Int = 256, maximumBytes: Int = 16 << 20, maximumEntryBytes: Int = 1 << 20) {
        self.init(maximumEntries: maximumEntries, maximumCost: maximumBytes, maximumEntryCost: maximumEntryBytes) { $0.count }
    }
}
