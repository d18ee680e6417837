import Crypto
@testable import FerryServer
import FerryObjectStore
import FerryTestSupport
import Foundation
import Testing

/// Two real `ferry serve` replicas on one real PostgreSQL database and one bucket of a real S3-compatible server
/// (moto) on loopback: they behave as one service. (A replica killed mid-migration, with real Podman and CRIU, is
/// in FerryLabTests' replica suite.)
@Suite("replicas", .serialized)
struct ReplicaTests {
    static let bucket = "ferry-replicas"

    /// Two replicas, A and B, sharing the catalog, the bucket and A's provenance key. Sendable for the concurrent
    /// uploads: what they use of it (`url`, `curl`) only reads constants and spawns curl.
    struct Pair: @unchecked Sendable {
        let a: ServeProcess
        let b: ServeProcess
        let client: S3Client
        let catalog: String
        let arguments: [String]
        var both: [ServeProcess] { [a, b] }

        /// One more replica like the two.
        func another() throws -> ServeProcess {
            let key = a.dataDirectory.appendingPathComponent("provenance-key")
            return try ServeProcess(arguments: arguments, environment: MotoServer.environment) { data in
                try FileManager.default.copyItem(at: key, to: data.appendingPathComponent("provenance-key"))
            }
        }

        /// The replica holding migration `id`'s lease, as the catalog records it ("" when none does).
        func leaseHolder(_ id: String) throws -> String {
            try TestPostgres.psql(catalog, "SELECT holder FROM migration_lease WHERE migration_id = '\(id)'")
        }

        func keys(_ under: String) throws -> [String] {
            try client.listObjects(prefix: client.key(under) + "/").map(\.key).sorted()
        }
    }

    static func withPair(extra: [String] = [], _ body: (Pair) throws -> Void) throws {
        guard let moto = try MotoServer.start(suite: "replicas") else { return }
        defer { moto.stop() }
        try moto.createBucket(bucket)
        let catalog = try TestPostgres.freshDatabase()
        let arguments = ["--catalog", catalog, "--blobs", "s3://\(bucket)/fleet", "--s3-endpoint", moto.endpoint] + extra
        let a = try ServeProcess(arguments: arguments, environment: MotoServer.environment)
        // Every replica signs with the one provenance key (copied, as an operator copies it to each replica).
        let key = a.dataDirectory.appendingPathComponent("provenance-key")
        let b = try ServeProcess(arguments: arguments, environment: MotoServer.environment) { data in
            try FileManager.default.copyItem(at: key, to: data.appendingPathComponent("provenance-key"))
        }
        let configuration = try S3Configuration.parse(location: "s3://\(bucket)/fleet", endpoint: moto.endpoint,
                                                      pathStyle: true, environment: MotoServer.environment)
        try body(Pair(a: a, b: b, client: S3Client(configuration: configuration), catalog: catalog, arguments: arguments))
    }

    static func json(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    static func digest(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    static func upload(_ path: String, to service: ServeProcess) throws -> (status: Int, body: Data) {
        try service.curl(["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(path)",
                          "\(service.url)/api/v1/checkpoints"])
    }

    static func listedIDs(_ service: ServeProcess) throws -> [String] {
        let list = try service.curl(["\(service.url)/api/v1/checkpoints?limit=100"])
        return ((json(list.body)["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }.sorted()
    }

    @Test("the same archive uploaded to both replicas at once is stored as one object and one row; each is served by both")
    func concurrentUploads() throws {
        try Self.withPair { pair in
            let path = Fixtures.archive("podman-counter-gzip.tar.gz")
            let digest = try Self.digest(path)
            let statuses = StatusList()
            DispatchQueue.concurrentPerform(iterations: 6) { index in
                let service = index % 2 == 0 ? pair.a : pair.b
                let answer = (try? Self.upload(path, to: service)) ?? (status: 0, body: Data())
                statuses.append(answer.status, id: (Self.json(answer.body)["checkpoint"] as? [String: Any])?["id"] as? String)
            }
            #expect(statuses.statuses.filter { $0 == 201 }.count == 1, "one upload creates it: \(statuses.statuses)")
            #expect(statuses.statuses.filter { $0 == 200 }.count == 5, "the others find it: \(statuses.statuses)")
            #expect(Set(statuses.ids) == [digest])
            for service in pair.both { #expect(try Self.listedIDs(service) == [digest]) }
            let prefix = pair.client.key("blobs", "sha256") + "/"
            #expect(try pair.keys("blobs") == [prefix + digest], "one object for the digest")
            #expect(try pair.keys("uploads").isEmpty, "no temporary object is left behind")
            #expect(try pair.client.listMultipartUploads(prefix: pair.client.key("uploads")).isEmpty)

            // Different archives to different replicas at once: both catalogued, each served whole by the other.
            let others = ["podman-counter-none.tar", "podman-counter-zstd.tar.zst"].map(Fixtures.archive)
            let created = StatusList()
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                let answer = (try? Self.upload(others[index], to: index == 0 ? pair.a : pair.b)) ?? (status: 0, body: Data())
                created.append(answer.status, id: nil)
            }
            #expect(created.statuses == [201, 201], "\(created.statuses)")
            let all = try ([path] + others).map(Self.digest).sorted()
            for service in pair.both { #expect(try Self.listedIDs(service) == all) }
            for (index, other) in others.enumerated() {
                let reader = index == 0 ? pair.b : pair.a
                let whole = try reader.curl(["\(reader.url)/api/v1/checkpoints/\(try Self.digest(other))/archive"])
                let original = try Data(contentsOf: URL(fileURLWithPath: other))
                #expect(whole.status == 200 && whole.body == original,
                        "the replica that did not ingest it serves it byte for byte")
            }
            #expect(try pair.keys("blobs").count == 3)
            // The three are checkpoints of one container: both replicas extended its one chain, with the one key.
            let verified = try Fixtures.ferry(["verify", "--server", pair.b.url, "--chain", "counter"])
            #expect(verified.status == 0, "\(verified.stderr)")
            #expect(verified.stdout.contains("3"), "\(verified.stdout)")
        }
    }

    @Test("a heartbeat to one replica makes the node up on the other; a delete on one is gone on the other")
    func heartbeatsAndDeletes() throws {
        try Self.withPair { pair in
            let heartbeat = try Fixtures.write(Array(#"{"name": "node-r", "agent_url": "http://127.0.0.1:9", "driver": "command", "facts": {"runtimes": ["runc"]}}"#.utf8),
                                               name: "heartbeat.json")
            let sent = try pair.a.curl(["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@\(heartbeat)",
                                        "\(pair.a.url)/api/v1/nodes/node-r/heartbeat"])
            #expect(sent.status == 200, "\(String(decoding: sent.body, as: UTF8.self))")
            let seen = try pair.b.curl(["\(pair.b.url)/api/v1/nodes/node-r"])
            #expect(seen.status == 200)
            #expect(Self.json(seen.body)["up"] as? Bool == true, "\(String(decoding: seen.body, as: UTF8.self))")

            let path = Fixtures.archive("podman-counter-none.tar")
            let digest = try Self.digest(path)
            #expect(try Self.upload(path, to: pair.a).status == 201)
            let deleted = try pair.b.curl(["-X", "DELETE", "\(pair.b.url)/api/v1/checkpoints/\(digest)"])
            #expect(deleted.status == 200 || deleted.status == 204)
            #expect(try pair.a.curl(["\(pair.a.url)/api/v1/checkpoints/\(digest)"]).status == 404)
            #expect(try pair.a.curl(["\(pair.a.url)/api/v1/checkpoints/\(digest)/archive"]).status == 404)
            #expect(try pair.keys("blobs").isEmpty, "the object went with the row")
        }
    }

    @Test("a replica stopped cleanly hands its migrations' leases on at once; one killed loses them when they expire")
    func leasesChangeHands() throws {
        try Self.withPair(extra: ["--migration-lease", "4", "--node-timeout", "600"]) { pair in
            // A migration that stays pending: its target is up (heartbeats) but its agent never answers.
            let heartbeat = try Fixtures.write(Array(#"{"name": "node-x", "agent_url": "http://127.0.0.1:9", "driver": "command"}"#.utf8),
                                               name: "heartbeat.json")
            #expect(try pair.a.curl(["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@\(heartbeat)",
                                     "\(pair.a.url)/api/v1/nodes/node-x/heartbeat"]).status == 200)
            let path = Fixtures.archive("podman-counter-none.tar")
            #expect(try Self.upload(path, to: pair.a).status == 201)
            let created = try pair.a.curl(["-X", "POST", "-H", "Content-Type: application/json",
                                           "--data-binary", #"{"checkpoint": "\#(try Self.digest(path))", "target": "node-x"}"#,
                                           "\(pair.a.url)/api/v1/migrations"])
            #expect(created.status == 201 || created.status == 202, "\(String(decoding: created.body, as: UTF8.self))")
            let id = try #require(Self.json(created.body)["id"] as? String)
            let a = try #require(pair.a.pid), b = try #require(pair.b.pid)
            try LabCluster.waitUntil("replica A to hold the lease", timeout: 10) { try pair.leaseHolder(id).contains("-\(a)-") }

            // SIGTERM: A releases its leases as it stops, and B takes this one well before 4 s would have expired it.
            let stoppedAt = Date()
            #expect(pair.a.kill(SIGTERM) == 0, "a clean stop")
            try LabCluster.waitUntil("replica B to hold the lease", timeout: 10) { try pair.leaseHolder(id).contains("-\(b)-") }
            #expect(Date().timeIntervalSince(stoppedAt) < 3.5, "handed on at B's next tick, not on expiry")
            let events = { (replica: ServeProcess) throws -> [String] in
                let migration = try replica.curl(["\(replica.url)/api/v1/migrations/\(id)"])
                return ((Self.json(migration.body)["events"] as? [[String: Any]]) ?? []).compactMap { $0["message"] as? String }
            }
            let afterHandOff = try events(pair.b)
            #expect(!afterHandOff.contains { $0.contains("expired") }, "\(afterHandOff)")

            // SIGKILL: B's lease stays until it expires; then C takes it over and says so in the migration's events.
            let c = try pair.another()
            let cPID = try #require(c.pid)
            let bHolder = try pair.leaseHolder(id)
            pair.b.kill(SIGKILL)
            try LabCluster.waitUntil("replica C to take the lease over", timeout: 20) { try pair.leaseHolder(id).contains("-\(cPID)-") }
            let takeover = "replica \(try pair.leaseHolder(id)) drives the migration now: the lease of \(bHolder) expired"
            let afterTakeover = try events(c)
            #expect(afterTakeover.contains(takeover), "\(afterTakeover)")
            #expect(try Self.json(c.curl(["\(c.url)/api/v1/migrations/\(id)"]).body)["state"] as? String == "pending")
        }
    }

    @Test("a node's token from the tokens file calls its agent back until its own heartbeat reaches this replica")
    func nodeTokensFromTheFile() throws {
        let tokens = try TokenStore(text: """
            admin admin-token-0123456789abcdef operator
            node node-a-token-0123456789abcdef node-a
            node node-b-token-0123456789abcdef node-b
            node node-b-rotated-0123456789abcdef node-b
            """)
        let registry = NodeRegistry(timeout: 15, tokens: tokens)
        #expect(registry.token(for: "node-a") == "node-a-token-0123456789abcdef")
        #expect(registry.token(for: "operator") == nil, "only node tokens are kept as they are")
        #expect(registry.token(for: "node-b") == nil, "two tokens for one node: which the agent holds is unknown")
        registry.remember(node: "node-b", token: "node-b-rotated-0123456789abcdef")
        #expect(registry.token(for: "node-b") == "node-b-rotated-0123456789abcdef", "the token presented wins")
        #expect(NodeRegistry(timeout: 15).token(for: "node-a") == nil)
    }
}

/// Statuses and IDs collected by concurrent uploads.
final class StatusList: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [(Int, String?)] = []

    func append(_ status: Int, id: String?) {
        lock.lock()
        collected.append((status, id))
        lock.unlock()
    }

    var statuses: [Int] { lock.lock(); defer { lock.unlock() }; return collected.map(\.0).sorted() }
    var ids: [String] { lock.lock(); defer { lock.unlock() }; return collected.compactMap(\.1) }
}
