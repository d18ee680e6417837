import FerryTestSupport
import Foundation
import Testing
@testable import FerryCatalog

/// Every documented filter and sort of the list is answered from an index (EXPLAIN QUERY PLAN), and the indexes
/// (trigram search, labels, kept totals) give exactly the rows a row-by-row reading of the filter would.
@Suite("catalog indexes", .serialized)
final class CatalogIndexTests {
    let catalog: Catalog
    let path: String
    var records: [CheckpointRecord] = []
    static let count = 600
    static let cap = 50
    /// Below the catalog's 600 rows, so both sides of `sparseMatches` are planned (2000 in the service).
    static let sparse = 100

    static func record(_ index: Int) -> CheckpointRecord {
        let id = (0..<8).map { String(format: "%08x", UInt32(truncatingIfNeeded: (index + 1) &* 2_654_435_761 &+ $0 &* 97)) }.joined()
        let namespaces = ["shop", "billing", "search", nil]
        let engines = ["Podman", "Podman", "Podman", "CRI-O", "containerd"]
        var labels = ["team": "t\(index % 7)"]
        if index % 3 == 0 { labels["tier"] = "gold" }
        let namespace = namespaces[index % namespaces.count]
        return CheckpointRecord(
            id: id, size: Int64((index * 7919) % 100_000), compression: "none", engine: engines[index % engines.count],
            containerID: String(repeating: "c", count: 64),
            // One name in 100 contains "rare"; every name contains "ctr".
            containerName: index % 100 == 0 ? "rare-ctr-\(index)" : "ctr-\(index)",
            podName: namespace.map { _ in "pod-\(index % 40)" }, podNamespace: namespace,
            image: "localhost/img:\(index % 30)", ipAddresses: ["10.88.\(index / 250).\(index % 250)"], checkpointSize: 100,
            memoryPagesSize: 50, processCount: 2, sourceNode: index % 4 == 0 ? nil : "node-\(index % 5)", labels: labels,
            uploadedAt: Catalog.timestamp(Date(timeIntervalSince1970: 1_700_000_000 + Double(index * 37 % Self.count))))
    }

    init() throws {
        let directory = try Fixtures.temporaryDirectory()
        path = directory.appendingPathComponent("catalog.sqlite").path
        catalog = try Catalog(path: path,
                              migrationsDirectory: Fixtures.repositoryRoot.appendingPathComponent("migrations").path,
                              upTo: nil, registryHost: "127.0.0.1:8080", countCap: Self.cap, sparseMatches: Self.sparse)
        for index in 0..<Self.count {
            let record = Self.record(index)
            records.append(try catalog.insert(record).record)
        }
    }

    /// Queries covering every documented filter (each alone), `q` in its three forms, labels, and combinations.
    static var filters: [(name: String, apply: (inout CheckpointQuery) -> Void)] {
        [
            ("none", { _ in }),
            ("namespace", { $0.namespace = "shop" }),
            ("pod", { $0.pod = "pod-4" }),
            ("container", { $0.container = "ctr-7" }),
            ("engine", { $0.engine = "Podman" }),
            ("engine rare", { $0.engine = "containerd" }),
            ("node", { $0.node = "node-2" }),
            ("image", { $0.image = "localhost/img:3" }),
            ("validation", { $0.validationState = "unknown" }),
            ("uploaded after", { $0.uploadedAfter = Catalog.timestamp(Date(timeIntervalSince1970: 1_700_000_300)) }),
            ("uploaded before", { $0.uploadedBefore = Catalog.timestamp(Date(timeIntervalSince1970: 1_700_000_100)) }),
            ("q sparse", { $0.text = "rare" }),
            ("q dense", { $0.text = "ctr" }),
            ("q two words", { $0.text = "RARE shop" }),
            ("label", { $0.labels = ["tier": "gold"] }),
            ("labels and engine", { $0.labels = ["team": "t3", "tier": "gold"]; $0.engine = "Podman" }),
            ("namespace and q", { $0.namespace = "billing"; $0.text = "ctr-1" }),
        ]
    }

    /// What a row-by-row reading of the query keeps, in the query's order.
    func expected(_ query: CheckpointQuery) -> [CheckpointRecord] {
        let words = (query.text ?? "").lowercased().split(separator: " ").map(String.init)
        let kept = records.filter { record in
            (query.namespace.map { record.podNamespace == $0 } ?? true)
                && (query.pod.map { record.podName == $0 } ?? true)
                && (query.container.map { record.containerName == $0 } ?? true)
                && (query.engine.map { record.engine == $0 } ?? true)
                && (query.node.map { record.sourceNode == $0 } ?? true)
                && (query.image.map { record.image == $0 } ?? true)
                && (query.validationState.map { record.validationState == $0 } ?? true)
                && (query.uploadedAfter.map { record.uploadedAt >= $0 } ?? true)
                && (query.uploadedBefore.map { record.uploadedAt < $0 } ?? true)
                && words.allSatisfy { CheckpointRecord.searchText(for: record).contains($0) }
                && query.labels.allSatisfy { record.labels[$0.key] == $0.value }
        }
        func key(_ record: CheckpointRecord) -> String {
            switch query.sort {
            case .uploaded: record.uploadedAt
            case .created: record.created ?? ""
            case .container: record.containerName
            case .namespace: record.podNamespace ?? ""
            case .pod: record.podName ?? ""
            case .engine: record.engine
            case .node: record.sourceNode ?? ""
            case .image: record.image ?? ""
            case .size: String(format: "%020lld", record.size)
            }
        }
        let ascending = kept.sorted { (key($0), $0.id) < (key($1), $1.id) }
        return query.descending ? ascending.reversed() : ascending
    }

    @Test("every filter, alone and combined, gives the rows the filter describes, page by page, with the capped total")
    func resultsMatchTheFilters() throws {
        for (name, apply) in Self.filters {
            for sort in [CheckpointQuery.SortKey.uploaded, .size, .container, .node] {
                var query = CheckpointQuery()
                apply(&query)
                query.sort = sort
                query.limit = 40
                let want = expected(query)
                var got: [String] = []
                var page = try catalog.list(query)
                // Unfiltered: the kept total, exact however many; filtered: counted up to the cap.
                let unfiltered = query == CheckpointQuery.unfiltered(sort: sort, limit: 40)
                #expect(page.total == (unfiltered ? want.count : min(want.count, Self.cap)), "\(name) by \(sort): total \(page.total), \(want.count) match")
                #expect(page.totalExact == (unfiltered || want.count <= Self.cap), "\(name) by \(sort)")
                got += page.items.map(\.id)
                while let next = page.nextCursor {
                    query.cursor = next
                    page = try catalog.list(query)
                    got += page.items.map(\.id)
                }
                #expect(got == want.map(\.id), "\(name) by \(sort): \(got.count) rows, \(want.count) expected")
            }
        }
        // Unfiltered: the kept total, exact however many.
        let all = try catalog.list(CheckpointQuery())
        #expect(all.total == Self.count && all.totalExact)
        #expect(try catalog.totals().count == Self.count)
    }

    @Test("every filter under every sort, both ways, walks an index: no plain scan of the table, q through the trigram index")
    func everyFilterAndSortUsesAnIndex() throws {
        for (name, apply) in Self.filters {
            for sort in CheckpointQuery.SortKey.allCases {
                for descending in [true, false] {
                    var query = CheckpointQuery()
                    apply(&query)
                    query.sort = sort
                    query.descending = descending
                    let plans = try catalog.plans(query)
                    for line in plans.page + plans.count {
                        // "SCAN checkpoint" alone reads every row; "SCAN checkpoint USING INDEX x" walks an index in
                        // the sort's order and stops at the page's end.
                        #expect(!(line.hasPrefix("SCAN checkpoint") && !line.contains("USING") && !line.contains("VIRTUAL TABLE")),
                                "\(name) by \(sort) \(descending ? "desc" : "asc"): \(line)\n\(plans)")
                    }
                    if query.text == "rare" {
                        #expect(plans.page.contains { $0.contains("checkpoint_search VIRTUAL TABLE") }, "\(plans.page)")
                    }
                    if !query.labels.isEmpty {
                        #expect(plans.page.contains { $0.contains("checkpoint_label") }, "\(plans.page)")
                    }
                }
            }
        }
    }

    @Test("the trigram index, the label table and the totals follow deletes and new rows")
    func indexesFollowChanges() throws {
        var rare = CheckpointQuery()
        rare.text = "rare"
        let before = try catalog.list(rare).items.map(\.id)
        #expect(before.count == Self.count / 100)
        let gone = try #require(before.first)
        _ = try catalog.delete(gone)
        #expect(try catalog.list(rare).items.map(\.id) == Array(before.dropFirst()))
        var gold = CheckpointQuery()
        gold.labels = ["tier": "gold"]
        gold.limit = 1000
        #expect(!(try catalog.list(gold).items.map(\.id)).contains(gone))
        #expect(try catalog.totals().count == Self.count - 1)
        var added = Self.record(10_000)
        added.containerName = "unique-zebra"
        added.labels = ["tier": "platinum"]
        _ = try catalog.insert(added)
        var zebra = CheckpointQuery()
        zebra.text = "zebra"
        #expect(try catalog.list(zebra).items.map(\.containerName) == ["unique-zebra"])
        var platinum = CheckpointQuery()
        platinum.labels = ["tier": "platinum"]
        #expect(try catalog.list(platinum).items.count == 1)
        #expect(try catalog.totals().count == Self.count)
    }
}

extension CatalogIndexTests {
    @Test("a reopened catalog plans with the statistics of the last ANALYZE: a filter matching most rows walks the sort's index")
    func statisticsSurviveReopening() throws {
        let reopened = try Catalog(path: path, migrationsDirectory: Fixtures.repositoryRoot.appendingPathComponent("migrations").path,
                                   upTo: nil, registryHost: "127.0.0.1:8080", countCap: Self.cap, sparseMatches: Self.sparse)
        var query = CheckpointQuery()
        query.engine = "Podman"  // three rows in five: more than `sparse`
        query.sort = .size
        let plan = try reopened.plans(query).page
        // Without sqlite_stat1 SQLite takes the engine index and sorts every Podman row in a temporary B-tree.
        #expect(plan.contains { $0.contains("USING INDEX checkpoint_on_size") }, "\(plan)")
    }

    @Test("a filter value few or no rows have is read from its own index under any sort, whatever the statistics say")
    func rareValuesUseTheirIndex() throws {
        // The statistics call engine unselective (three values over 600 rows): planned from them alone, a value no
        // row has would walk the sort's whole index looking for it.
        for (engine, pod) in [("Kata", nil), (nil, "pod-4"), (nil, "no-such-pod")] as [(String?, String?)] {
            for sort in [CheckpointQuery.SortKey.size, .created, .container] {
                var query = CheckpointQuery()
                query.engine = engine
                query.pod = pod
                query.sort = sort
                let plan = try catalog.plans(query).page
                let index = engine == nil ? "checkpoint_on_pod_uploaded" : "checkpoint_on_engine_uploaded"
                #expect(plan.contains { $0.contains("USING INDEX \(index)") || $0.contains("USING COVERING INDEX \(index)") },
                        "\(engine ?? pod ?? "") by \(sort): \(plan)")
                #expect(try catalog.list(query).items.map(\.id) == expected(query).prefix(query.limit).map(\.id))
            }
        }
    }

    @Test("the write generation moves with checkpoint writes, not with heartbeats")
    func generation() throws {
        let start = catalog.generation
        _ = try catalog.recordHeartbeat(name: "node-a", agentURL: "http://127.0.0.1:1", driver: "podman", facts: "{}",
                                        runtimeVersion: nil, freeDiskBytes: nil, version: nil)
        #expect(catalog.generation == start, "a heartbeat changes no checkpoint")
        _ = try catalog.insert(Self.record(20_000))
        #expect(catalog.generation != start)
        let afterInsert = catalog.generation
        _ = try catalog.delete(Self.record(20_000).id)
        #expect(catalog.generation != afterInsert)
    }
}

extension CheckpointQuery {
    /// The unfiltered query with this sort and limit.
    static func unfiltered(sort: SortKey, limit: Int) -> CheckpointQuery {
        var query = CheckpointQuery()
        query.sort = sort
        query.limit = limit
        return query
    }
}
