import FerryAPI
import FerryValidation
import Foundation

/// One job the service asked for (restore, checkpoint or rollback), as the agent keeps it in `jobs/ID/job.json`
/// and shows it at `GET /v1/jobs/{id}` (as ``AgentJobStatus``).
///
/// States: a restore goes downloading → restoring → succeeded | failed; a checkpoint goes checkpointing →
/// uploading → succeeded | failed; a rollback goes restoring → succeeded | failed. `failed` with `CANCELLED` after
/// `DELETE /v1/jobs/{id}`, `ABANDONED` when the service gave the migration up. A finished job never changes again.
struct Job: Codable, Sendable, Equatable {
    typealias Kind = AgentJobKind
    typealias State = AgentJobState
    typealias Result = JobResult
    typealias Failure = JobFailure

    var id: String
    var kind: Kind
    var state: State
    var bytesDone: Int64 = 0
    var bytesTotal: Int64 = 0
    /// The checkpoint restored (restore, rollback), or the one catalogued once uploaded (checkpoint).
    var checkpoint: String?
    /// The container to checkpoint or bring back (checkpoint, rollback).
    var container: String?
    /// The job's options as compact JSON with sorted keys, exactly what the drivers get.
    var options: String
    /// The container a restore creates (restore, rollback).
    var expected: ExpectedContainer?
    /// rollback: the checkpoint job whose archive is restored.
    var sourceJob: String?
    /// restore: the live upload this node may have prefetched the archive from.
    var prefetch: PrefetchRequest?
    /// restore: the archive came from that prefetch.
    var prefetched: Bool?
    var result: Result?
    var error: Failure?
    /// Timed steps, in this node's clock.
    var phases: [JobPhase] = []
    /// checkpoint: whether the container still ran when the job ended (nil: unknown).
    var containerRunning: Bool?
    /// The runtime process running now, so a restarted agent can wait for one its predecessor left behind.
    var driverPID: Int32?
    /// The program of that process (`podman`), so a reused PID is not mistaken for it.
    var driverProgram: String?
    /// checkpoint: the archive is kept (for a rollback) until the service releases it.
    var archiveReleased: Bool = false
    var createdAt: String
    var updatedAt: String

    enum CodingKeys: String, CodingKey {
        case id, kind, state, checkpoint, container, options, expected, result, error, phases, prefetch, prefetched
        case sourceJob = "source_job"
        case bytesDone = "bytes_done"
        case bytesTotal = "bytes_total"
        case containerRunning = "container_running"
        case driverPID = "driver_pid"
        case driverProgram = "driver_program"
        case archiveReleased = "archive_released"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(id: String, kind: Kind, state: State, bytesTotal: Int64 = 0, checkpoint: String? = nil, container: String? = nil,
         options: String, expected: ExpectedContainer? = nil, sourceJob: String? = nil, createdAt: String, updatedAt: String) {
        self.id = id
        self.kind = kind
        self.state = state
        self.bytesTotal = bytesTotal
        self.checkpoint = checkpoint
        self.container = container
        self.options = options
        self.expected = expected
        self.sourceJob = sourceJob
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    // Fields added later are optional in job.json files older agents wrote.
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        kind = try container.decode(Kind.self, forKey: .kind)
        state = try container.decode(State.self, forKey: .state)
        bytesDone = try container.decodeIfPresent(Int64.self, forKey: .bytesDone) ?? 0
        bytesTotal = try container.decodeIfPresent(Int64.self, forKey: .bytesTotal) ?? 0
        checkpoint = try container.decodeIfPresent(String.self, forKey: .checkpoint)
        self.container = try container.decodeIfPresent(String.self, forKey: .container)
        options = try container.decodeIfPresent(String.self, forKey: .options) ?? "{}"
        expected = try container.decodeIfPresent(ExpectedContainer.self, forKey: .expected)
        sourceJob = try container.decodeIfPresent(String.self, forKey: .sourceJob)
        result = try container.decodeIfPresent(Result.self, forKey: .result)
        error = try container.decodeIfPresent(Failure.self, forKey: .error)
        phases = try container.decodeIfPresent([JobPhase].self, forKey: .phases) ?? []
        containerRunning = try container.decodeIfPresent(Bool.self, forKey: .containerRunning)
        driverPID = try container.decodeIfPresent(Int32.self, forKey: .driverPID)
        driverProgram = try container.decodeIfPresent(String.self, forKey: .driverProgram)
        archiveReleased = try container.decodeIfPresent(Bool.self, forKey: .archiveReleased) ?? false
        createdAt = try container.decode(String.self, forKey: .createdAt)
        updatedAt = try container.decode(String.self, forKey: .updatedAt)
    }

    /// The job as the API shows it and reports it: everything but the options and the agent's bookkeeping.
    var status: AgentJobStatus {
        AgentJobStatus(id: id, kind: kind, state: state, bytesDone: bytesDone, bytesTotal: bytesTotal, checkpoint: checkpoint,
                       container: container, result: result, error: error, phases: phases,
                       containerRunning: containerRunning, prefetched: prefetched, createdAt: createdAt, updatedAt: updatedAt)
    }

    /// Starts the phase `name` now (a phase already started keeps its start: a resumed step is one phase).
    mutating func begin(_ name: String) {
        guard !phases.contains(where: { $0.name == name }) else { return }
        phases.append(JobPhase(name: name, startedAt: Job.timestamp()))
    }

    /// Ends the phase `name` now.
    mutating func end(_ name: String) {
        guard let index = phases.lastIndex(where: { $0.name == name }), phases[index].endedAt == nil else { return }
        phases[index].endedAt = Job.timestamp()
    }

    func hasBegun(_ name: String) -> Bool { phases.contains { $0.name == name } }

    /// The current time in RFC 3339 with milliseconds, UTC.
    static func timestamp(_ date: Date = Date()) -> String {
        WireTime.string(date)
    }
}

// MARK: - Reading a job request

extension Job {
    /// A new job from the body of `POST /v1/jobs` (an ``AgentJobRequest``). The options are checked here, so a
    /// job that is accepted can run.
    /// - Throws: `INVALID_JOB` naming what is wrong.
    init(request bytes: [UInt8]) throws(AgentError) {
        let request: AgentJobRequest
        do {
            request = try JSONDecoder().decode(AgentJobRequest.self, from: Data(bytes))
        } catch {
            throw AgentError(.invalidJob, "the body must be a job: {id, kind: restore|checkpoint|rollback, checkpoint?, size?, container?, options?, expected?, source_job?}")
        }
        guard Self.isValidID(request.id) else {
            throw AgentError(.invalidJob, "id must be 1–200 letters, digits, '.', '-' or '_', not starting with '.'")
        }
        guard let optionsData = try? JSONEncoder.wire.encode(request.options ?? [:]) else {
            throw AgentError(.invalidJob, "options must be a JSON object")
        }
        let options = String(decoding: optionsData, as: UTF8.self)
        if let size = request.size, size < 0 { throw AgentError(.invalidJob, "size must be a number of bytes") }
        for value in [request.expected?.id, request.expected?.name].compactMap({ $0 }) where !Self.isValidName(value) {
            throw AgentError(.invalidJob, "expected.id and expected.name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        }
        let now = Self.timestamp()
        switch request.kind {
        case .restore:
            guard let checkpoint = request.checkpoint, Self.isCheckpointID(checkpoint) else {
                throw AgentError(.invalidJob, "checkpoint must be the 64 lower-case hex digits of a checkpoint ID")
            }
            _ = try RuntimeRestoreOptions(parsing: options)
            if let prefetch = request.prefetch, !Prefetcher.isValid(prefetch) {
                throw AgentError(.invalidJob, "prefetch.node and prefetch.upload must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
            }
            self.init(id: request.id, kind: .restore, state: .downloading, bytesTotal: request.size ?? 0, checkpoint: checkpoint,
                      options: options, expected: request.expected, createdAt: now, updatedAt: now)
            prefetch = request.prefetch
        case .checkpoint:
            guard let container = request.container, Self.isValidName(container) else {
                throw AgentError(.invalidJob, "container must be a container name or ID (letters, digits, '_', '.', '-')")
            }
            _ = try CheckpointOptions(parsing: options)
            self.init(id: request.id, kind: .checkpoint, state: .checkpointing, container: container, options: options,
                      createdAt: now, updatedAt: now)
        case .rollback:
            guard let container = request.container, Self.isValidName(container) else {
                throw AgentError(.invalidJob, "container must be a container name or ID (letters, digits, '_', '.', '-')")
            }
            if let checkpoint = request.checkpoint, !Self.isCheckpointID(checkpoint) {
                throw AgentError(.invalidJob, "checkpoint must be the 64 lower-case hex digits of a checkpoint ID")
            }
            if let sourceJob = request.sourceJob, !Self.isValidID(sourceJob) {
                throw AgentError(.invalidJob, "source_job must be a job ID")
            }
            _ = try RuntimeRestoreOptions(parsing: options)
            self.init(id: request.id, kind: .rollback, state: .restoring, checkpoint: request.checkpoint, container: container,
                      options: options, expected: request.expected, sourceJob: request.sourceJob, createdAt: now, updatedAt: now)
        }
    }

    /// A job ID is a directory name: `[A-Za-z0-9._-]{1,200}`, not starting with `.`.
    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 200 && !id.hasPrefix(".")
            && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    static func isCheckpointID(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Podman's rule for container and pod names, `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (IDs pass too). It also keeps a
    /// name from being read as a flag (`-x`) by the runtime.
    /// A container name or ID, or a Kubernetes container as `NAMESPACE/POD/CONTAINER` (the kubelet driver's).
    static func isValidName(_ name: String) -> Bool { ContainerReference.isValid(name) }
}

extension RuntimeRestoreOptions {
    /// The typed options of a restore job's options JSON; keys the agent does not know are ignored (and kept in
    /// `json`). Absent flags are off.
    /// - Throws: `INVALID_JOB` for a known key with a value of the wrong type, or a bad name or pod.
    init(parsing json: String) throws(AgentError) {
        struct Extra: Decodable {
            var keep: Bool?
            var ignoreVolumes: Bool?
            enum CodingKeys: String, CodingKey {
                case keep
                case ignoreVolumes = "ignore_volumes"
            }
        }
        let data = Data(json.utf8)
        let restore: RestoreOptions
        let extra: Extra
        do {
            restore = try JSONDecoder().decode(RestoreOptions.self, from: data)
            extra = try JSONDecoder().decode(Extra.self, from: data)
        } catch {
            throw AgentError(.invalidJob, "restore options: name and pod are strings; ignore_static_ip, ignore_static_mac, "
                + "ignore_rootfs, ignore_volumes, tcp_established, tcp_close and keep are true or false")
        }
        for value in [restore.name, restore.pod].compactMap({ $0 }) where !value.isEmpty && !Job.isValidName(value) {
            throw AgentError(.invalidJob, "restore options: name and pod must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        }
        self.init(restore: restore, keep: extra.keep ?? false, ignoreVolumes: extra.ignoreVolumes ?? false, json: json)
    }
}

extension CheckpointOptions {
    /// The typed options of a checkpoint job's options JSON (`compress` defaults to zstd, flags to off).
    /// - Throws: `INVALID_JOB` for a value of the wrong type or an unknown compression.
    init(parsing json: String) throws(AgentError) {
        struct Fields: Decodable {
            var compress: String?
            var leaveRunning: Bool?
            var tcpEstablished: Bool?
            var keep: Bool?
            var labels: String?
            enum CodingKeys: String, CodingKey {
                case compress, keep, labels
                case leaveRunning = "leave_running"
                case tcpEstablished = "tcp_established"
            }
        }
        guard let fields = try? JSONDecoder().decode(Fields.self, from: Data(json.utf8)) else {
            throw AgentError(.invalidJob, "checkpoint options: compress and labels are strings; leave_running, tcp_established and keep are true or false")
        }
        guard let compress = Compression(rawValue: fields.compress ?? "zstd") else {
            throw AgentError(.invalidJob, "checkpoint options: compress is zstd, gzip or none")
        }
        self.init(compress: compress, leaveRunning: fields.leaveRunning ?? false,
                  tcpEstablished: fields.tcpEstablished ?? false, keep: fields.keep ?? false, json: json)
        // `K=V,K2=V2`, as the upload's labels query takes them (the service checks them).
        labels = (fields.labels ?? "").split(separator: ",").reduce(into: [:]) { all, pair in
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { all[String(parts[0])] = String(parts[1]) }
        }
    }
}
