import FerryValidation
import Foundation

/// One restore or checkpoint the service asked for, as the agent keeps it in `jobs/ID/job.json` and shows it at
/// `GET /v1/jobs/{id}`.
///
/// States: a restore goes downloading → restoring → succeeded | failed; a checkpoint goes checkpointing →
/// uploading → succeeded | failed. `failed` with `CANCELLED` after `DELETE /v1/jobs/{id}`. A finished job never
/// changes again.
struct Job: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable {
        case restore, checkpoint
    }

    enum State: String, Codable, Sendable {
        case downloading, restoring, checkpointing, uploading, succeeded, failed

        var isFinished: Bool { self == .succeeded || self == .failed }
    }

    /// What the driver left: the restored container, the exit status and the end of its output.
    struct Result: Codable, Sendable, Equatable {
        var containerID: String?
        var exitStatus: Int32?
        var outputTail: String?

        enum CodingKeys: String, CodingKey {
            case containerID = "container_id"
            case exitStatus = "exit_status"
            case outputTail = "output_tail"
        }
    }

    struct Failure: Codable, Sendable, Equatable {
        var code: String
        var message: String
    }

    var id: String
    var kind: Kind
    var state: State
    var bytesDone: Int64 = 0
    var bytesTotal: Int64 = 0
    /// The checkpoint restored (restore), or the one catalogued once uploaded (checkpoint).
    var checkpoint: String?
    /// The container to checkpoint (checkpoint jobs).
    var container: String?
    /// The job's options as compact JSON with sorted keys, exactly what the drivers get.
    var options: String
    var result: Result?
    var error: Failure?
    var createdAt: String
    var updatedAt: String

    enum CodingKeys: String, CodingKey {
        case id, kind, state, checkpoint, container, options, result, error
        case bytesDone = "bytes_done"
        case bytesTotal = "bytes_total"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// The job as the API shows it: everything but the options.
    var status: Status {
        Status(id: id, kind: kind, state: state, bytesDone: bytesDone, bytesTotal: bytesTotal, checkpoint: checkpoint,
               container: container, result: result, error: error, createdAt: createdAt, updatedAt: updatedAt)
    }

    struct Status: Encodable {
        var id: String
        var kind: Kind
        var state: State
        var bytesDone: Int64
        var bytesTotal: Int64
        var checkpoint: String?
        var container: String?
        var result: Result?
        var error: Failure?
        var createdAt: String
        var updatedAt: String

        enum CodingKeys: String, CodingKey {
            case id, kind, state, checkpoint, container, result, error
            case bytesDone = "bytes_done"
            case bytesTotal = "bytes_total"
            case createdAt = "created_at"
            case updatedAt = "updated_at"
        }
    }

    /// The current time in RFC 3339 with milliseconds, UTC.
    static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

// MARK: - Reading a job request

extension Job {
    /// A new job from the body of `POST /v1/jobs`:
    /// `{"id", "kind": "restore", "checkpoint": 64 hex, "size"?, "options"?}` or
    /// `{"id", "kind": "checkpoint", "container", "options"?}`. The options are checked here, so a job that is
    /// accepted can run.
    /// - Throws: `INVALID_JOB` naming what is wrong.
    init(request bytes: [UInt8]) throws(AgentError) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw AgentError(.invalidJob, "the body must be a JSON object")
        }
        guard let id = object["id"] as? String, Self.isValidID(id) else {
            throw AgentError(.invalidJob, "id must be 1–200 letters, digits, '.', '-' or '_', not starting with '.'")
        }
        let optionsObject = object["options"] ?? [String: Any]()
        guard optionsObject is [String: Any],
              let optionsData = try? JSONSerialization.data(withJSONObject: optionsObject, options: [.sortedKeys, .withoutEscapingSlashes])
        else { throw AgentError(.invalidJob, "options must be a JSON object") }
        let options = String(decoding: optionsData, as: UTF8.self)
        let now = Self.timestamp()
        switch object["kind"] as? String {
        case "restore":
            guard let checkpoint = object["checkpoint"] as? String, Self.isCheckpointID(checkpoint) else {
                throw AgentError(.invalidJob, "checkpoint must be the 64 lower-case hex digits of a checkpoint ID")
            }
            var size: Int64 = 0
            if let value = object["size"] {
                guard let number = value as? NSNumber, number.int64Value >= 0 else {
                    throw AgentError(.invalidJob, "size must be a number of bytes")
                }
                size = number.int64Value
            }
            _ = try RuntimeRestoreOptions(parsing: options)
            self.init(id: id, kind: .restore, state: .downloading, bytesTotal: size, checkpoint: checkpoint,
                      options: options, createdAt: now, updatedAt: now)
        case "checkpoint":
            guard let container = object["container"] as? String, Self.isValidName(container) else {
                throw AgentError(.invalidJob, "container must be a container name or ID (letters, digits, '_', '.', '-')")
            }
            _ = try CheckpointOptions(parsing: options)
            self.init(id: id, kind: .checkpoint, state: .checkpointing, container: container, options: options,
                      createdAt: now, updatedAt: now)
        default:
            throw AgentError(.invalidJob, "kind must be restore or checkpoint")
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
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first.isNumber, name.utf8.count <= 253 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }
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
            enum CodingKeys: String, CodingKey {
                case compress, keep
                case leaveRunning = "leave_running"
                case tcpEstablished = "tcp_established"
            }
        }
        guard let fields = try? JSONDecoder().decode(Fields.self, from: Data(json.utf8)) else {
            throw AgentError(.invalidJob, "checkpoint options: compress is a string; leave_running, tcp_established and keep are true or false")
        }
        guard let compress = Compression(rawValue: fields.compress ?? "zstd") else {
            throw AgentError(.invalidJob, "checkpoint options: compress is zstd, gzip or none")
        }
        self.init(compress: compress, leaveRunning: fields.leaveRunning ?? false,
                  tcpEstablished: fields.tcpEstablished ?? false, keep: fields.keep ?? false, json: json)
    }
}
