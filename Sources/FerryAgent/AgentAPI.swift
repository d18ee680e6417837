import FerryAPI
import FerryHTTP
import Foundation

/// The agent's HTTP API, for the service:
///
/// - `GET /v1/facts` → the node's ``TargetFacts``.
/// - `POST /v1/jobs` → 202 and the new job's status, or 200 and the existing job's status when a job with that ID
///   exists (whatever the body says: a job is never started twice).
/// - `GET /v1/jobs/{id}` → the job's status; 404 `JOB_NOT_FOUND`.
/// - `DELETE /v1/jobs/{id}` → cancels a running job (state `failed`, code `CANCELLED`); a finished job is
///   returned unchanged.
/// - `POST /v1/jobs/{id}/release` (`{"remove_container": bool}`) → a finished checkpoint job's kept archive is
///   deleted and, with `remove_container`, the stopped source container removed (never a running one).
/// - `POST /v1/prefetch` (``PrefetchRequest``) → 202 `{"upload","started":true}` when this agent starts fetching a
///   live upload for a restore job to come (cut-through), 200 with `started: false` when it declines (already
///   fetching it, enough prefetches running, or a throttled agent).
/// - `GET /v1/containers/{name}` → a ``ContainerReport`` of that container as the runtime sees it now; 422
///   `DRIVER_UNSUPPORTED` for a driver that cannot tell.
///
/// With a token, every request needs `Authorization: Bearer TOKEN` (compared in constant time); 401
/// `UNAUTHORIZED` otherwise. Errors are `{"error":{"code","message"}}`.
struct AgentAPI: HTTPHandler {
    private let token: String?
    private let router: Router

    init(token: String?, store: JobStore, runner: JobRunner, driver: any RuntimeDriver, facts: FactsCollector,
         prefetcher: Prefetcher? = nil, log: @escaping @Sendable (String) -> Void) {
        self.token = token
        var router = Router(errorLog: log)
        router.add("GET", "/v1/facts") { _, _, _ in
            .json(facts.current().facts)
        }
        router.add("POST", "/v1/jobs") { _, _, body in
            guard let body else { throw HTTPError(status: 400, code: "INVALID_JOB", message: "send the job as JSON") }
            let job: Job
            do {
                job = try Job(request: body.readAll(maximumBytes: 1 << 20))
            } catch let error as AgentError {
                throw HTTPError(status: 400, code: error.code.rawValue, message: error.message)
            }
            if job.kind == .checkpoint && !driver.canCheckpoint {
                throw HTTPError(status: 422, code: AgentErrorCode.driverUnsupported.rawValue,
                                message: "the \(driver.name) driver of this agent cannot checkpoint containers")
            }
            let stored: (job: Job, created: Bool)
            do throws(AgentError) {
                stored = try store.insert(job)
            } catch {
                throw HTTPError(status: 503, code: error.code.rawValue, message: error.message)
            }
            if stored.created {
                log("job \(job.id): accepted \(job.kind.rawValue) of \(job.checkpoint.map { String($0.prefix(12)) } ?? job.container ?? "")")
                runner.start(job.id, resumed: false)
            }
            return .json(stored.job.status, status: stored.created ? 202 : 200)
        }
        router.add("POST", "/v1/prefetch") { _, _, body in
            let request: PrefetchRequest
            do {
                request = try JSONDecoder().decode(PrefetchRequest.self, from: Data(body?.readAll(maximumBytes: 4096) ?? []))
            } catch {
                throw HTTPError(status: 400, code: AgentErrorCode.invalidJob.rawValue, message: "send {\"node\": NODE, \"upload\": UPLOAD_ID}")
            }
            guard Prefetcher.isValid(request) else {
                throw HTTPError(status: 400, code: AgentErrorCode.invalidJob.rawValue, message: "node and upload are letters, digits, '_', '.' and '-'")
            }
            // Declined (none configured, already known, or enough running): the restore job downloads as before.
            let started = prefetcher?.start(request) ?? false
            if started { log("prefetch \(request.key): fetching it as it arrives") }
            struct Answer: Encodable {
                var upload: String
                var started: Bool
            }
            return .json(Answer(upload: request.key, started: started), status: started ? 202 : 200)
        }
        router.add("GET", "/v1/containers/{name}") { _, parameters, _ in
            let name = parameters["name"] ?? ""
            guard Job.isValidName(name) else {
                throw HTTPError(status: 400, code: AgentErrorCode.invalidJob.rawValue, message: "a container name or ID is letters, digits, '_', '.' and '-'")
            }
            guard let report = driver.inspect(container: name) else {
                throw HTTPError(status: 422, code: AgentErrorCode.driverUnsupported.rawValue,
                                message: "the \(driver.name) driver cannot inspect containers")
            }
            return .json(report)
        }
        router.add("POST", "/v1/jobs/{id}/release") { _, parameters, body in
            struct Release: Decodable {
                var removeContainer: Bool?
                enum CodingKeys: String, CodingKey { case removeContainer = "remove_container" }
            }
            let id = parameters["id"] ?? ""
            guard let job = store.job(id) else { throw Self.notFound }
            guard job.state.isFinished else {
                throw HTTPError(status: 409, code: AgentErrorCode.invalidJob.rawValue, message: "job \(id) has not finished")
            }
            let bytes = try body?.readAll(maximumBytes: 4096) ?? []
            let release = bytes.isEmpty ? Release() : ((try? JSONDecoder().decode(Release.self, from: Data(bytes))) ?? Release())
            let done = runner.release(id, removeContainer: release.removeContainer ?? false)
            log("job \(id): released: \(done)")
            return .json(store.job(id)?.status ?? job.status)
        }
        router.add("GET", "/v1/jobs/{id}") { _, parameters, _ in
            guard let job = store.job(parameters["id"] ?? "") else { throw Self.notFound }
            return .json(job.status)
        }
        router.add("DELETE", "/v1/jobs/{id}") { _, parameters, _ in
            let id = parameters["id"] ?? ""
            guard let control = store.control(id) else { throw Self.notFound }
            // Interrupt first, then mark: the job's thread, once interrupted, starts nothing new and leaves the
            // state to this request; a job that finished meanwhile keeps its outcome.
            if store.job(id)?.state.isFinished == false {
                control.cancel()
                log("job \(id): cancel requested")
            }
            guard let job = store.fail(id, JobRunner.cancelled) else { throw Self.notFound }
            return .json(job.status)
        }
        self.router = router
    }

    static let notFound = HTTPError(status: 404, code: AgentErrorCode.jobNotFound.rawValue, message: "no job with that ID")

    func handle(_ request: HTTPRequest, body: HTTPRequestBody?) -> HTTPResponse {
        if let token, !Self.bearer(request.header("authorization"), matches: token) {
            return HTTPResponse.error(HTTPError(status: 401, code: AgentErrorCode.unauthorized.rawValue,
                                               message: "this agent needs its bearer token"))
                .adding(header: "WWW-Authenticate", "Bearer")
        }
        return router.handle(request, body: body)
    }

    /// Whether `Authorization` is `Bearer TOKEN` with the agent's token. The comparison takes the same time
    /// wherever the first difference is (it depends on the expected token's length only).
    static func bearer(_ header: String?, matches token: String) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        let given = Array(header.utf8.dropFirst(7))
        let expected = Array(token.utf8)
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        for index in expected.indices {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}
