import FerryAPI
import FerryCatalog
import FerryHTTP
import FerryValidation
import Foundation

/// Node liveness and the tokens agents identified themselves with. A node is up while its last heartbeat is newer
/// than `timeout`. The service calls each agent back with the token that agent presented, kept in memory only;
/// until its heartbeat reaches this replica (after a restart, or while heartbeats reach another replica), with the
/// node's token from the tokens file. One lock guards the token map.
public final class NodeRegistry: @unchecked Sendable {
    /// Seconds without a heartbeat after which a node is down.
    public let timeout: Double
    private let configured: TokenStore
    private let lock = NSLock()
    private var tokens: [String: String] = [:]

    public init(timeout: Double, tokens configured: TokenStore = .open) {
        self.timeout = timeout
        self.configured = configured
    }

    func remember(node: String, token: String?) {
        lock.lock()
        tokens[node] = token
        lock.unlock()
    }

    func token(for node: String) -> String? {
        lock.lock()
        let presented = tokens[node]
        lock.unlock()
        return presented ?? configured.nodeToken(named: node)
    }

    func isUp(_ node: NodeRecord, now: Date = Date()) -> Bool {
        guard let seen = Catalog.date(fromTimestamp: node.lastSeenAt) else { return false }
        return now.timeIntervalSince(seen) <= timeout
    }
}

/// `/api/v1/nodes`.
struct NodeAPI: Sendable {
    let api: CheckpointAPI
    let registry: NodeRegistry
    var catalog: Catalog { api.context.catalog }

    func heartbeat(_ request: HTTPRequest, name: String, body: HTTPRequestBody?) throws -> HTTPResponse {
        let identity = try api.authorize(request, .node)
        // A node token speaks for its own node only (its name in the tokens file); admin tokens for any.
        if let identity, identity.role == .node, identity.name != name {
            throw HTTPError(.forbidden, "this token belongs to node \(identity.name), not \(name)")
        }
        guard Self.isValidName(name) else {
            throw HTTPError(.invalidNode, "a node name is letters, digits, '-', '.' and '_'")
        }
        guard let body else { throw HTTPError(.bodyRequired, "send the heartbeat as JSON") }
        let heartbeat: HeartbeatRequest
        do {
            heartbeat = try JSONDecoder().decode(HeartbeatRequest.self, from: Data(body.readAll(maximumBytes: 4 << 20)))
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(.invalidHeartbeat, "the heartbeat is not the agent's JSON: \(error)")
        }
        // The path names the node (and the token was checked against it); the body's `name` is informative.
        guard Self.isValidAgentURL(heartbeat.agentURL), let url = URL(string: heartbeat.agentURL), url.host != nil else {
            throw HTTPError(.invalidHeartbeat, "name must match the path and agent_url be an http(s) URL")
        }
        let facts = String(decoding: try JSONEncoder.api.encode(heartbeat.facts ?? TargetFacts()), as: UTF8.self)
        let node = try api.catalog {
            try catalog.recordHeartbeat(
                name: name, agentURL: heartbeat.agentURL, driver: heartbeat.driver, facts: facts,
                runtimeVersion: heartbeat.runtimeVersion, freeDiskBytes: heartbeat.freeDiskBytes, version: heartbeat.version)
        }
        let token = request.header("authorization").flatMap { $0.lowercased().hasPrefix("bearer ") ? String($0.dropFirst(7)) : nil }
        registry.remember(node: name, token: token)
        return CheckpointAPI.jsonText(try nodeJSON(node))
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        try api.authorize(request, .read)
        let nodes = try api.catalog { try catalog.nodes() }
        return CheckpointAPI.jsonText("{\"items\":[\(try nodes.map(nodeJSON).joined(separator: ","))]}")
    }

    func detail(_ request: HTTPRequest, name: String) throws -> HTTPResponse {
        try api.authorize(request, .read)
        guard let node = try api.catalog({ try catalog.node(name) }) else {
            throw HTTPError(.nodeNotFound, "no node \(name.prefix(80)) has registered")
        }
        return CheckpointAPI.jsonText(try nodeJSON(node))
    }

    /// A node as the API shows it, with its liveness.
    func nodeJSON(_ node: NodeRecord) throws -> String {
        struct View: Encodable {
            var name: String
            var agentURL: String
            var driver: String?
            var up: Bool
            var runtimeVersion: String?
            var freeDiskBytes: Int64?
            var version: String?
            var firstSeenAt: String
            var lastSeenAt: String
            enum CodingKeys: String, CodingKey {
                case name, driver, up, version
                case agentURL = "agent_url"
                case runtimeVersion = "runtime_version"
                case freeDiskBytes = "free_disk_bytes"
                case firstSeenAt = "first_seen_at"
                case lastSeenAt = "last_seen_at"
            }
        }
        let view = View(
            name: node.name, agentURL: node.agentURL, driver: node.driver, up: registry.isUp(node),
            runtimeVersion: node.runtimeVersion, freeDiskBytes: node.freeDiskBytes, version: node.version,
            firstSeenAt: node.firstSeenAt, lastSeenAt: node.lastSeenAt)
        var text = String(decoding: try JSONEncoder.api.encode(view), as: UTF8.self)
        // Splice the stored facts in as they are.
        text.removeLast()
        return text + ",\"facts\":\(node.facts)}"
    }

    /// `http(s)://HOST[:PORT][/PATH]` with an ASCII host name, an IPv4 address or `[::1]`: the pattern of `agent_url`
    /// in docs/openapi.yaml (an agent on another IPv6 address advertises a name).
    static func isValidAgentURL(_ text: String) -> Bool {
        text.wholeMatch(of: /https?:\/\/([A-Za-z0-9._~-]+|\[::1\])(:[0-9]{1,5})?(\/[A-Za-z0-9._~\/-]*)?/) != nil
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 253 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }
    }
}
