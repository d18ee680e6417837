import FerryTestSupport
import Foundation
import Testing
@testable import FerryServer

/// The answers kept between catalog writes (lists, the list page, where archives live): never stale, answered
/// from memory on a worker thread once cached, bounded, least recently used first out.
@Suite("generation caches")
struct GenerationCacheTests {
    static let counter = Fixtures.archive("podman-counter-none.tar")
    static let crio = Fixtures.archive("crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar")

    @Test("a cached list is what the catalog says now: an upload or a delete in between is seen at once")
    func listNeverStale() throws {
        let server = try TestServer(tokens: true)
        func list(_ query: String = "") throws -> [String: Any] {
            try server.request("GET", "/api/v1/checkpoints\(query)", token: TestServer.readToken).json
        }
        #expect(try list()["total"] as? Int == 0)
        #expect(try list()["total"] as? Int == 0)  // from the cache
        let first = try server.upload(Self.counter, token: TestServer.writeToken)
        #expect(first.status == 201)
        #expect(try list()["total"] as? Int == 1)
        #expect(try list("?engine=CRI-O")["total"] as? Int == 0)
        #expect(try server.upload(Self.crio, token: TestServer.writeToken).status == 201)
        #expect(try list()["total"] as? Int == 2)
        #expect(try list("?engine=CRI-O")["total"] as? Int == 1)
        let id = try #require((first.json["checkpoint"] as? [String: Any])?["id"] as? String)
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(id)", token: TestServer.writeToken).status == 204)
        #expect(try list()["total"] as? Int == 1)
        // Authorisation is checked before the cache: a cached answer is not given without a token, or to a bad one.
        #expect(try server.request("GET", "/api/v1/checkpoints").status == 401)
        #expect(try server.request("GET", "/api/v1/checkpoints", token: "not-a-token").status == 401)
    }

    /// Requests that started a handler thread, as `/metrics` counts them (the `/metrics` request itself is one).
    func handlerThreads(_ server: TestServer) throws -> Int {
        let text = try server.request("GET", "/metrics", token: TestServer.readToken).text
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("ferry_http_handler_threads_total ") })
        return try #require(Int(line.split(separator: " ")[1]))
    }

    /// How many of `requests` needed a handler thread.
    func threadsUsed(_ server: TestServer, _ requests: () throws -> Void) throws -> Int {
        let before = try handlerThreads(server)
        try requests()
        return try handlerThreads(server) - before - 1
    }

    @Test("once cached, a list, the page, an archive Range and a registry blob are answered without a handler thread")
    func answeredFromMemory() throws {
        let server = try TestServer(tokens: true)
        let uploaded = try server.upload(Self.counter, token: TestServer.writeToken)
        let id = try #require((uploaded.json["checkpoint"] as? [String: Any])?["id"] as? String)
        let registryPath = "/v2/checkpoints/counter/blobs/sha256:\(id)"
        let cookie = try server.signIn(TestServer.readToken)

        func fetchAll() throws {
            let list = try server.request("GET", "/api/v1/checkpoints?limit=5", token: TestServer.readToken)
            #expect(list.status == 200 && list.json["total"] as? Int == 1)
            let page = try server.request("GET", "/?sort=size", headers: [cookie])
            #expect(page.status == 200 && page.text.contains("data-id=\"\(id)\""))
            let range = try server.request("GET", "/api/v1/checkpoints/\(id.prefix(12))/archive", token: TestServer.readToken,
                                           headers: ["Range: bytes=10-19"])
            let archive = try Data(contentsOf: URL(fileURLWithPath: Self.counter))
            #expect(range.status == 206 && range.body == archive[10..<20])
            let blob = try server.request("HEAD", registryPath, token: TestServer.readToken)
            #expect(blob.status == 200 && blob.headers["docker-content-digest"] == "sha256:\(id)")
        }
        #expect(try threadsUsed(server, fetchAll) == 4, "the first time, each is read from the catalog")
        #expect(try threadsUsed(server, fetchAll) == 0, "the second time, none is")

        // Not answered from memory without the right token: the API says 401, the page sends the browser to sign in.
        #expect(try server.request("GET", "/api/v1/checkpoints/\(id.prefix(12))/archive").status == 401)
        #expect(try server.request("GET", registryPath).status == 401)
        #expect(try server.request("GET", "/?sort=size").status == 303)
    }

    @Test("after a delete, the archive, its registry blob and the page are not served from a stale entry")
    func archiveAndPageNeverStale() throws {
        let server = try TestServer(tokens: true)
        let uploaded = try server.upload(Self.counter, token: TestServer.writeToken)
        let id = try #require((uploaded.json["checkpoint"] as? [String: Any])?["id"] as? String)
        let cookie = try server.signIn(TestServer.readToken)
        let archivePath = "/api/v1/checkpoints/\(id)/archive"
        let blobPath = "/v2/checkpoints/counter/blobs/sha256:\(id)"
        for _ in 0..<2 {
            #expect(try server.request("HEAD", archivePath, token: TestServer.readToken).status == 200)
            #expect(try server.request("HEAD", blobPath, token: TestServer.readToken).status == 200)
            #expect(try server.request("GET", "/", headers: [cookie]).text.contains(id))
        }
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(id)", token: TestServer.writeToken).status == 204)
        let archive = try server.request("GET", archivePath, token: TestServer.readToken)
        #expect(archive.status == 404 && archive.errorCode == "CHECKPOINT_NOT_FOUND")
        #expect(try server.request("HEAD", blobPath, token: TestServer.readToken).status == 404)
        #expect(!(try server.request("GET", "/", headers: [cookie]).text.contains(id)))

        // The blob file vanishing behind the catalog's back (no write, so the entry is current) is still BLOB_MISSING.
        let again = try server.upload(Self.counter, token: TestServer.writeToken)
        #expect(again.status == 201)
        #expect(try server.request("HEAD", archivePath, token: TestServer.readToken).status == 200)
        let blob = try #require(try server.blobFiles().first { $0.hasSuffix(id) })
        try FileManager.default.removeItem(at: server.blobsDirectory.appendingPathComponent(blob))
        let missing = try server.request("GET", archivePath, token: TestServer.readToken)
        #expect(missing.status == 410 && missing.errorCode == "BLOB_MISSING", "\(missing.status) \(missing.text)")
    }

    @Test("entries go stale with the generation, and the cache stays within its entry and byte bounds")
    func bounds() {
        let cache = GenerationCache<[UInt8]>(maximumEntries: 3, maximumBytes: 100, maximumEntryBytes: 60)
        cache.store(Array(repeating: 1, count: 10), for: "a", generation: 1)
        #expect(cache.value(for: "a", generation: 1)?.count == 10)
        #expect(cache.value(for: "a", generation: 2) == nil, "another generation: stale")
        #expect(cache.count == 0)
        for key in ["a", "b", "c", "d"] { cache.store([1], for: key, generation: 5) }
        #expect(cache.count == 3 && cache.value(for: "a", generation: 5) == nil, "the oldest went first")
        _ = cache.value(for: "b", generation: 5)  // b is now the most recently used
        cache.store(Array(repeating: 2, count: 50), for: "e", generation: 5)
        cache.store(Array(repeating: 3, count: 50), for: "f", generation: 5)
        #expect(cache.value(for: "f", generation: 5)?.count == 50)
        #expect(cache.value(for: "c", generation: 5) == nil && cache.value(for: "d", generation: 5) == nil)
        cache.store(Array(repeating: 4, count: 61), for: "big", generation: 5)
        #expect(cache.value(for: "big", generation: 5) == nil, "an entry over its bound is not kept")
        #expect(GenerationCache<[UInt8]>.key(["b": "2", "a": "1"]) == GenerationCache<[UInt8]>.key(["a": "1", "b": "2"]))
    }
}
