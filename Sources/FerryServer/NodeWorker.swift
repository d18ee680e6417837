import Foundation

/// One thread per node that performs the service's calls to that node's agent in order, so a slow or dead agent
/// holds up only the work queued for it, never other nodes' migrations.
final class NodeWorker: @unchecked Sendable {
    // @unchecked Sendable invariant: `queue`, `keys` and `running` are only touched with `condition` locked.
    private let condition = NSCondition()
    private var queue: [(key: String?, work: @Sendable () -> Void)] = []
    /// Keys of queued work, so the same follow-up is never queued twice.
    private var keys: Set<String> = []
    private var running = true
    let node: String

    init(node: String) {
        self.node = node
        let thread = Thread { [self] in loop() }
        thread.name = "ferry-node-\(node.prefix(40))"
        thread.start()
    }

    /// Queues work; with a key, only if no work with that key is queued already.
    func enqueue(key: String? = nil, _ work: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard running else { return }
        if let key {
            guard keys.insert(key).inserted else { return }
        }
        queue.append((key, work))
        condition.signal()
    }

    func stop() {
        condition.lock()
        running = false
        queue.removeAll()
        keys.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while running && queue.isEmpty { condition.wait() }
            guard running else {
                condition.unlock()
                return
            }
            let item = queue.removeFirst()
            if let key = item.key { keys.remove(key) }
            condition.unlock()
            item.work()
        }
    }
}

/// Wakes long-polling readers of migrations when any migration changes.
final class MigrationWatch: @unchecked Sendable {
    // @unchecked Sendable invariant: `generation` is only touched with `condition` locked.
    private let condition = NSCondition()
    private var generation = 0

    func changed() {
        condition.lock()
        generation += 1
        condition.broadcast()
        condition.unlock()
    }

    var current: Int {
        condition.lock()
        defer { condition.unlock() }
        return generation
    }

    /// Waits until a change after `generation`, or `deadline`; false on time-out.
    func wait(after generation: Int, until deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while self.generation == generation {
            if !condition.wait(until: deadline) { return self.generation != generation }
        }
        return true
    }
}
