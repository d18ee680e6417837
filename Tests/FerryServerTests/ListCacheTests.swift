import FerryTestSupport
import Foundation
import Testing
@testable import FerryServer

/// The list answers kept between catalog writes: never stale, bounded, least recently used first out.
@Suite("list cache")
struct ListCacheTests {
    @Test("a cached list is what the catalog says now: an upload or a delete in between is seen at once")
    func neverStale() throws {
        let server = try TestServer(tokens: true)
        func list(_ query: String = "") throws -> [String: Any] {
            try server.request("GET", "/api/v1/checkpoints\(query)", token: TestServer.readToken).json
        }
        #expect(try list()["total"] as? Int == 0)
        #expect(try list()["total"] as? Int == 0)  // from the cache
        let first = try server.upload(Fixtures.archive("podman-counter-none.tar"), token: TestServer.writeToken)
        #expect(first.status == 201)
        #expect(try list()["total"] as? Int == 1)
        #expect(try list("?engine=CRI-O")["total"] as? Int == 0)
        #expect(try server.upload(Fixtures.archive("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar"),
                                  token: TestServer.writeToken).status == 201)
        #expect(try list()["total"] as? Int == 2)
        #expect(try list("?engine=CRI-O")["total"] as? Int == 1)
        let id = try #require((first.json["checkpoint"] as? [String: Any])?["id"] as? String)
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(id)", token: TestServer.writeToken).status == 204)
        #expect(try list()["total"] as? Int == 1)
        // Authorisation is checked before the cache: a cached answer is not given without a token.
        #expect(try server.request("GET", "/api/v1/checkpoints").status == 401)
    }

    @Test("entries go stale with the generation, and the cache stays within its entry and byte bounds")
    func bounds() {
        let cache = ListCache(maximumEntries: 3, maximumBytes: 100, maximumEntryBytes: 60)
        cache.store(Array(repeating: 1, count: 10), for: "a", generation: 1)
        #expect(cache.body(for: "a", generation: 1)?.count == 10)
        #expect(cache.body(for: "a", generation: 2) == nil, "another generation: stale")
        #expect(cache.count == 0)
        for key in ["a", "b", "c", "d"] { cache.store([1], for: key, generation: 5) }
        #expect(cache.count == 3 && cache.body(for: "a", generation: 5) == nil, "the oldest went first")
        _ = cache.body(for: "b", generation: 5)  // b is now the most recently used
        cache.store(Array(repeating: 2, count: 50), for: "e", generation: 5)
        cache.store(Array(repeating: 3, count: 50), for: "f", generation: 5)
        #expect(cache.body(for: "f", generation: 5)?.count == 50)
        #expect(cache.body(for: "c", generation: 5) == nil && cache.body(for: "d", generation: 5) == nil)
        cache.store(Array(repeating: 4, count: 61), for: "big", generation: 5)
        #expect(cache.body(for: "big", generation: 5) == nil, "an entry over its bound is not kept")
        #expect(ListCache.key(["b": "2", "a": "1"]) == ListCache.key(["a": "1", "b": "2"]))
    }
}
