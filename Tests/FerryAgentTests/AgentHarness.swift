import FerryAgent
import FerryTestSupport
import Foundation

/// One temporary directory holding a fake service, a restore script standing in for the runtime, and the work
/// directories of the agents under test (started in-process on loopback port 0).
final class AgentHarness {
    static let token = "agent-token-0123456789abcdef"
    static let node = "node-b"

    let directory: URL
    let service: FakeService
    /// The archive the service serves, and its checkpoint ID.
    let archive: String
    let checkpoint: String
    /// `restore.sh ARCHIVE OPTIONS_JSON CHECKPOINT JOB [NAME]`: checks the archive (digest = checkpoint ID, a
    /// `checkpoint/` directory), writes its argv to `JOB.argv` and one line per run to `JOB.runs`, fails with 7
    /// for `"fail":true`, sleeps for `"sleep":true`, and prints `container-JOB` last.
    let restoreTemplate: String
    /// `checkpoint.sh CONTAINER OUTPUT OPTIONS_JSON`: copies the archive to OUTPUT.
    let checkpointTemplate: String
    let logs = Locked<[String]>([])

    init(archiveName: String = "podman-counter-none.tar") throws {
        directory = try Fixtures.temporaryDirectory()
        archive = Fixtures.archive(archiveName)
        checkpoint = try sha256(archive)
        let uploads = directory.appendingPathComponent("uploads")
        try FileManager.default.createDirectory(at: uploads, withIntermediateDirectories: true)
        service = try FakeService(archives: [checkpoint: archive], uploadDirectory: uploads)
        let records = directory.appendingPathComponent("records")
        try FileManager.default.createDirectory(at: records, withIntermediateDirectories: true)
        let restore = directory.appendingPathComponent("restore.sh")
        try Fixtures.writeScript("""
            #!/bin/sh
            archive="$1"; options="$2"; checkpoint="$3"; job="$4"
            echo run >> "\(records.path)/$job.runs"
            printf '%s\\n' "$@" > "\(records.path)/$job.argv"
            tar -tf "$archive" | grep -q '^checkpoint/' || { echo "not a checkpoint archive" >&2; exit 4; }
            digest=$(sha256sum "$archive" | cut -d' ' -f1)
            [ "$digest" = "$checkpoint" ] || { echo "digest $digest is not $checkpoint" >&2; exit 5; }
            echo "$digest" > "\(records.path)/$job.digest"
            case "$options" in *'"fail":true'*) echo "some progress"; echo "runtime says no" >&2; exit 7;; esac
            case "$options" in *'"sleep":true'*) sleep 30;; esac
            echo "restoring $job"
            echo "container-$job"
            """, to: restore)
        restoreTemplate = "\(restore.path) {archive} {options_json} {checkpoint} {job} {name}"
        let checkpointScript = directory.appendingPathComponent("checkpoint.sh")
        try Fixtures.writeScript("""
            #!/bin/sh
            echo "checkpointing $1"
            cp "\(archive)" "$2"
            """, to: checkpointScript)
        checkpointTemplate = "\(checkpointScript.path) {container} {output} {options_json}"
    }

    deinit {
        service.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    var workDirectory: URL { directory.appendingPathComponent("agent") }

    func configuration(rate: Int64? = nil, token: String? = AgentHarness.token, facts: String? = nil) throws -> AgentConfiguration {
        var configuration = AgentConfiguration(server: URL(string: service.url)!, node: Self.node)
        configuration.token = token
        configuration.port = 0
        configuration.driver = CommandDriver(restore: restoreTemplate, checkpoint: checkpointTemplate)
        configuration.workDirectory = workDirectory.path
        configuration.heartbeatInterval = 0.2
        configuration.maximumDownloadRate = rate
        if let facts {
            let file = directory.appendingPathComponent("facts.json")
            try facts.write(to: file, atomically: true, encoding: .utf8)
            configuration.factsFile = file.path
        }
        return configuration
    }

    func start(_ configuration: AgentConfiguration) throws -> NodeAgent {
        let logs = logs
        return try NodeAgent.start(configuration) { line in logs.withValue { $0.append(line) } }
    }

    // MARK: The agent's API

    func url(_ agent: NodeAgent, _ path: String) -> String {
        "http://127.0.0.1:\(agent.port)\(path)"
    }

    func post(_ agent: NodeAgent, _ json: String) throws -> Reply {
        try curl("POST", url(agent, "/v1/jobs"), token: Self.token, json: json)
    }

    func restoreJob(_ id: String, options: String = "{}") -> String {
        #"{"id": "\#(id)", "kind": "restore", "checkpoint": "\#(checkpoint)", "size": 1, "options": \#(options)}"#
    }

    func job(_ agent: NodeAgent, _ id: String) throws -> [String: Any] {
        try curl("GET", url(agent, "/v1/jobs/\(id)"), token: Self.token).json
    }

    /// Waits until the job is finished (or in one of `states`) and returns it.
    func wait(_ agent: NodeAgent, _ id: String, for states: Set<String> = ["succeeded", "failed"],
              seconds: Double = 10) throws -> [String: Any] {
        var job: [String: Any] = [:]
        try waitUntil("job \(id) is \(states.sorted())", seconds: seconds) {
            job = try self.job(agent, id)
            return states.contains(job["state"] as? String ?? "")
        }
        return job
    }

    // MARK: What the script saw

    func record(_ job: String, _ suffix: String) -> String? {
        try? String(contentsOf: directory.appendingPathComponent("records/\(job).\(suffix)"), encoding: .utf8)
    }

    func jobDirectory(_ id: String) -> URL {
        workDirectory.appendingPathComponent("jobs/\(id)")
    }
}

extension [String: Any] {
    var state: String? { self["state"] as? String }
    var errorCode: String? { (self["error"] as? [String: Any])?["code"] as? String }
    var result: [String: Any] { self["result"] as? [String: Any] ?? [:] }
    func int(_ key: String) -> Int? { (self[key] as? NSNumber)?.intValue }
}
