import FerryClient
import FerryAPI
import Foundation

/// Every job the agent knows, in memory and in `WORK_DIR/jobs/ID/job.json`, behind one lock.
///
/// Each change is written to disk (0600, via a temporary file and `rename`) before the lock is released, so a
/// restarted agent finds every job as it last was. A finished job never changes again; after `close()` (the
/// agent stopped) nothing is written any more, so a job thread that outlives its agent cannot overwrite what a
/// new agent on the same work directory does.
final class JobStore: @unchecked Sendable {
    // @unchecked Sendable invariant: `jobs`, `controls` and `closed` are only touched with `lock` held.
    private let lock = NSLock()
    private var jobs: [String: Job] = [:]
    private var controls: [String: JobControl] = [:]
    private var closed = false
    /// Called with each job as changed (under the lock: it must only queue work).
    private var onChange: (@Sendable (Job) -> Void)?
    /// `WORK_DIR/jobs`.
    let directory: String
    private let log: @Sendable (String) -> Void

    /// Loads the jobs left by earlier runs; a `job.json` that cannot be read is logged and skipped.
    init(directory: String, log: @escaping @Sendable (String) -> Void) throws(AgentError) {
        self.directory = directory
        self.log = log
        try Self.makePrivateDirectory(directory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where Job.isValidID(name) {
            let path = "\(directory)/\(name)/job.json"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            guard let data = FileManager.default.contents(atPath: path),
                  let job = try? JSONDecoder().decode(Job.self, from: data), job.id == name else {
                log("job \(name): cannot read \(path); ignoring it")
                continue
            }
            jobs[name] = job
            controls[name] = JobControl()
        }
    }

    /// Sets what hears of every change (the reporter to the service).
    func setChangeHandler(_ handler: @escaping @Sendable (Job) -> Void) {
        lock.lock()
        onChange = handler
        lock.unlock()
    }

    /// Every job, finished or not.
    func all() -> [Job] {
        lock.lock()
        defer { lock.unlock() }
        return Array(jobs.values)
    }

    /// `WORK_DIR/jobs/ID`.
    func directory(of id: String) -> String {
        "\(directory)/\(id)"
    }

    func job(_ id: String) -> Job? {
        lock.lock()
        defer { lock.unlock() }
        return jobs[id]
    }

    func control(_ id: String) -> JobControl? {
        lock.lock()
        defer { lock.unlock() }
        return controls[id]
    }

    /// The jobs that have not finished, oldest first.
    func unfinished() -> [Job] {
        lock.lock()
        defer { lock.unlock() }
        return jobs.values.filter { !$0.state.isFinished }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    /// Adds a job unless one with its ID exists; returns the stored job and whether it is new.
    func insert(_ job: Job) throws(AgentError) -> (job: Job, created: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if let existing = jobs[job.id] { return (existing, false) }
        guard !closed else { throw AgentError(.fileError, "the agent is stopping") }
        try Self.makePrivateDirectory(directory(of: job.id))
        try write(job)
        jobs[job.id] = job
        controls[job.id] = JobControl()
        return (job, true)
    }

    /// Changes an unfinished job and writes it (unless `persist` is false: progress that is cheap to lose).
    /// Returns the job as it is afterwards; a finished job is returned unchanged.
    /// `report` false keeps the change from the service until the next one (a phase starting, say: the next report
    /// carries it), sparing the service a write.
    @discardableResult
    func update(_ id: String, persist: Bool = true, report: Bool = true, _ change: (inout Job) -> Void) -> Job? {
        lock.lock()
        defer { lock.unlock() }
        guard var job = jobs[id] else { return nil }
        guard !job.state.isFinished, !closed else { return job }
        change(&job)
        job.updatedAt = Job.timestamp()
        if persist {
            do {
                try write(job)
            } catch {
                log("job \(id): \(error)")
            }
        }
        jobs[id] = job
        if report { onChange?(job) }
        return job
    }

    /// Changes the bookkeeping of a job whether or not it has finished (never its state or outcome), and tells no
    /// one. Written without `fsync`: it matters after the agent process dies (the page cache keeps it), not after
    /// the machine does (then the runtime process it names is gone too).
    func updateBookkeeping(_ id: String, _ change: (inout Job) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard var job = jobs[id], !closed else { return }
        let state = job.state
        change(&job)
        job.state = state
        try? write(job, durable: false)
        jobs[id] = job
    }

    /// Finishes a job as failed, unless it has finished already.
    @discardableResult
    func fail(_ id: String, _ error: AgentError, result: Job.Result? = nil) -> Job? {
        update(id) { job in
            job.state = .failed
            job.error = Job.Failure(code: error.code.rawValue, message: error.message)
            if let result { job.result = result }
        }
    }

    /// No more writes: the agent has stopped.
    func close() {
        lock.lock()
        closed = true
        lock.unlock()
    }

    private func write(_ job: Job, durable: Bool = true) throws(AgentError) {
        let path = "\(directory(of: job.id))/job.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(job), FileWrite.replace(path, with: data, durable: durable) else {
            throw AgentError(.fileError, "cannot write \(path)")
        }
    }

    /// Creates a directory (and its parents) and makes it 0700, also when it existed.
    static func makePrivateDirectory(_ path: String) throws(AgentError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
        } catch {
            throw AgentError(.fileError, "cannot create the directory \(path)")
        }
    }
}
