import FerryAPI
import FerryCatalog
import FerryClient
import FerryHTTP
import Foundation

/// Checkpoints without moving (`POST /api/v1/nodes/{node}/checkpoints`): the service hands the node's agent a
/// checkpoint job (ID `ckpt-…`) and answers 202; the agent checkpoints with its driver and uploads the archive, which
/// is catalogued from its node like any other. The agent pushes the job's reports here as it goes, and
/// `GET /api/v1/nodes/{node}/checkpoints/{job}?wait=S` answers its state, waiting up to S seconds for it to end;
/// after a service restart (the reports are kept in memory, the last 1000) it asks the agent instead.
final class NodeCheckpoints: @unchecked Sendable {
    // @unchecked Sendable invariant: `jobs` and `order` are only touched with `condition` locked.
    private let condition = NSCondition()
    private var jobs: [String: NodeCheckpointView] = [:]
    private var order: [String] = []
    static let kept = 1000
    static let prefix = "ckpt-"

    static func isStandalone(_ jobID: String) -> Bool { jobID.hasPrefix(prefix) }

    func update(_ view: NodeCheckpointView) {
        condition.lock()
        if jobs[view.job] == nil {
            order.append(view.job)
            if order.count > Self.kept { jobs[order.removeFirst()] = nil }
        }
        // A late report of an earlier state never replaces a finished one.
        if jobs[view.job]?.state.isFinished != true || view.state.isFinished { jobs[view.job] = view }
        condition.broadcast()
        condition.unlock()
    }

    /// The job's last known state, waiting until it ends or `deadline` passes.
    func view(_ job: String, until deadline: Date) -> NodeCheckpointView? {
        condition.lock()
        defer { condition.unlock() }
        while let view = jobs[job], !view.state.isFinished {
            if !condition.wait(until: deadline) { break }
        }
        return jobs[job]
    }
}

struct NodeCheckpointAPI: Sendable {
    let api: CheckpointAPI
    let registry: NodeRegistry
    var context: FerryServiceContext { api.context }

    func create(_ request: HTTPRequest, node: String, body: HTTPRequestBody?) throws -> HTTPResponse {
        try api.authorize(request, .write)
        guard let body else { throw HTTPError(.bodyRequired, "send {\"container\": NAME, \"leave_running\": bool, \"labels\": {…}}") }
        let input: NodeCheckpointRequest
        do {
            let bytes = Data(try body.readAll(maximumBytes: 1 << 20))
            // A misspelt option (`leave-running`) is refused, not ignored.
            if let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any],
               let unknown = object.keys.first(where: { !Self.fields.contains($0) }) {
                throw HTTPError(.invalidCheckpointRequest, "unknown field \(unknown.prefix(100)); the fields are \(Self.fields.sorted().joined(separator: ", "))")
            }
            input = try JSONDecoder().decode(NodeCheckpointRequest.self, from: bytes)
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(.invalidCheckpointRequest, "the body must be {\"container\": NAME, \"leave_running\"?, \"tcp_established\"?, \"compress\"?, \"labels\"?}: \(error)")
        }
        guard ContainerReference.isValid(input.container) else {
            throw HTTPError(.invalidCheckpointRequest, "container is a name or ID (letters, digits, '_', '.', '-'), or NAMESPACE/POD/CONTAINER")
        }
        if let compress = input.compress, !["zstd", "gzip", "none"].contains(compress) {
            throw HTTPError(.invalidCheckpointRequest, "compress is zstd, gzip or none")
        }
        // The agent passes them on as the upload's `k=v,…`: a comma in a value would split it.
        guard (input.labels ?? [:]).values.allSatisfy({ !$0.contains(",") }) else {
            throw HTTPError(.invalidLabels, "a label value may not contain ','")
        }
        let labels = (input.labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        if !labels.isEmpty { _ = try CheckpointAPI.parseLabels(labels) }
        guard let record = try api.catalog({ try context.catalog.node(node) }) else {
            throw HTTPError(.nodeNotFound, "no node \(node.prefix(100)) has registered")
        }
        guard registry.isUp(record) else {
            throw HTTPError(.nodeDown, "node \(node) has sent no heartbeat for \(Int(registry.timeout)) s")
        }
        let job = AgentJobRequest(id: NodeCheckpoints.prefix + UUID().uuidString.lowercased(), kind: .checkpoint,
                                  container: input.container, options: Self.options(input, labels: labels))
        // Accepted here either way; an agent that cannot be reached or refuses fails the job, as a migration's would.
        func failed(_ code: String, _ message: String) -> HTTPResponse {
            let view = NodeCheckpointView(job: job.id, node: node, container: input.container, state: .failed, checkpoint: nil,
                                          containerRunning: nil, error: JobFailure(code: code, message: message))
            context.nodeCheckpoints.update(view)
            context.log("checkpoint \(job.id) of \(input.container) on \(node) failed: \(code)")
            return Self.accepted(view)
        }
        guard let url = URL(string: record.agentURL) else { return failed("AGENT_UNREACHABLE", "node \(node) has no agent URL") }
        let agent = FerryClient(server: url, token: registry.token(for: node))
        let (status, data): (Int, Data)
        do {
            (status, data) = try agent.call("POST", "/v1/jobs", json: try JSONEncoder.wire.encode(job), timeout: 15)
        } catch {
            return failed("AGENT_UNREACHABLE", "the agent of \(node) cannot be reached: \(error)")
        }
        guard (200..<300).contains(status), let accepted = try? JSONDecoder().decode(AgentJobStatus.self, from: data) else {
            let refusal = try? JSONDecoder().decode(ErrorBody.self, from: data)
            return failed(refusal?.error.code ?? "AGENT_REFUSED",
                          "the agent of \(node) refused the checkpoint: \(refusal?.error.message ?? "status \(status)")")
        }
        let view = NodeCheckpointView(accepted, node: node)
        context.nodeCheckpoints.update(view)
        context.log("checkpoint \(job.id) of \(input.container) on \(node) handed to its agent")
        return Self.accepted(view)
    }

    static let fields: Set<String> = ["container", "leave_running", "tcp_established", "compress", "labels"]

    static func accepted(_ view: NodeCheckpointView) -> HTTPResponse {
        var response = HTTPResponse.json(view, status: 202)
        response.headers.append(("Location", "/api/v1/nodes/\(view.node)/checkpoints/\(view.job)"))
        return response
    }

    static func options(_ input: NodeCheckpointRequest, labels: String) -> [String: JSONScalar] {
        var options: [String: JSONScalar] = ["compress": .string(input.compress ?? "zstd")]
        if input.leaveRunning == true { options["leave_running"] = .bool(true) }
        if input.tcpEstablished == true { options["tcp_established"] = .bool(true) }
        if !labels.isEmpty { options["labels"] = .string(labels) }
        return options
    }

    func detail(_ request: HTTPRequest, node: String, job: String) throws -> HTTPResponse {
        try api.authorize(request, .read)
        guard NodeCheckpoints.isStandalone(job), job.count <= 100 else { throw HTTPError(.jobNotFound, "no checkpoint job \(job.prefix(100))") }
        var wait = 0.0
        if let text = request.query["wait"] {
            guard let seconds = Double(text), seconds >= 0, seconds <= 60 else {
                throw HTTPError(.invalidQuery, "wait is a number of seconds from 0 to 60")
            }
            wait = seconds
        }
        if let view = context.nodeCheckpoints.view(job, until: Date(timeIntervalSinceNow: wait)), view.node == node {
            return .json(view)
        }
        // Not reported here (a restart since): ask the agent.
        guard let record = try api.catalog({ try context.catalog.node(node) }) else {
            throw HTTPError(.nodeNotFound, "no node \(node.prefix(100)) has registered")
        }
        guard let url = URL(string: record.agentURL),
              let (status, data) = try? FerryClient(server: url, token: registry.token(for: node)).call("GET", "/v1/jobs/\(job)", timeout: 10),
              status == 200, let current = try? JSONDecoder().decode(AgentJobStatus.self, from: data) else {
            throw HTTPError(.jobNotFound, "no checkpoint job \(job) on \(node)")
        }
        return .json(NodeCheckpointView(current, node: node))
    }

}
