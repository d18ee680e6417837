import FerryAPI
@testable import FerryAgent
import FerryValidation
import Foundation
import Testing

/// Reading `POST /v1/jobs` bodies into jobs and typed options.
@Suite("job requests")
struct JobRequestTests {
    static let checkpoint = String(repeating: "ab", count: 32)

    func job(_ json: String) throws(AgentError) -> Job {
        try Job(request: Array(json.utf8))
    }

    func code(_ json: String) -> String? {
        do {
            _ = try job(json)
            return nil
        } catch {
            return error.code.rawValue
        }
    }

    @Test("a restore job keeps its options as compact sorted JSON, unknown keys included")
    func restoreJob() throws {
        let restore = try job(#"{"id": "mig-1", "kind": "restore", "checkpoint": "\#(Self.checkpoint)", "size": 1234, "options": {"tcp_established": true, "name": "web", "slow": true, "path": "a/b"}}"#)
        #expect(restore.kind == .restore)
        #expect(restore.state == .downloading)
        #expect(restore.bytesTotal == 1234)
        #expect(restore.checkpoint == Self.checkpoint)
        #expect(restore.options == #"{"name":"web","path":"a/b","slow":true,"tcp_established":true}"#)
        let options = try RuntimeRestoreOptions(parsing: restore.options)
        #expect(options.restore == RestoreOptions(name: "web", tcpEstablished: true))
        #expect(!options.keep && !options.ignoreVolumes)
        #expect(try RuntimeRestoreOptions(parsing: #"{"keep":true,"ignore_volumes":true,"pod":"p1"}"#)
            == RuntimeRestoreOptions(restore: RestoreOptions(pod: "p1"), keep: true, ignoreVolumes: true,
                                     json: #"{"keep":true,"ignore_volumes":true,"pod":"p1"}"#))
    }

    @Test("a checkpoint job defaults to zstd and reads its flags")
    func checkpointJob() throws {
        let checkpoint = try job(#"{"id": "mig-1-checkpoint", "kind": "checkpoint", "container": "web"}"#)
        #expect(checkpoint.state == .checkpointing)
        #expect(checkpoint.container == "web")
        #expect(checkpoint.options == "{}")
        #expect(try CheckpointOptions(parsing: checkpoint.options) == CheckpointOptions(json: "{}"))
        let flags = try CheckpointOptions(parsing: #"{"compress":"gzip","keep":true,"leave_running":true,"tcp_established":true}"#)
        #expect(flags.compress == .gzip && flags.keep && flags.leaveRunning && flags.tcpEstablished)
    }

    @Test("bad jobs are refused with INVALID_JOB")
    func invalidJobs() {
        let ck = Self.checkpoint
        for body in [
            "[]",
            "not json",
            #"{"kind": "restore", "checkpoint": "\#(ck)"}"#,
            #"{"id": "../x", "kind": "restore", "checkpoint": "\#(ck)"}"#,
            #"{"id": ".hidden", "kind": "restore", "checkpoint": "\#(ck)"}"#,
            #"{"id": "a b", "kind": "restore", "checkpoint": "\#(ck)"}"#,
            #"{"id": "x", "kind": "migrate"}"#,
            #"{"id": "x", "kind": "restore", "checkpoint": "abc"}"#,
            #"{"id": "x", "kind": "restore", "checkpoint": "\#(ck.uppercased())"}"#,
            #"{"id": "x", "kind": "restore", "checkpoint": "\#(ck)", "size": -1}"#,
            #"{"id": "x", "kind": "restore", "checkpoint": "\#(ck)", "options": []}"#,
            #"{"id": "x", "kind": "restore", "checkpoint": "\#(ck)", "options": {"name": 5}}"#,
            #"{"id": "x", "kind": "restore", "checkpoint": "\#(ck)", "options": {"tcp_close": "yes"}}"#,
            #"{"id": "x", "kind": "restore", "checkpoint": "\#(ck)", "options": {"name": "--privileged"}}"#,
            #"{"id": "x", "kind": "restore", "checkpoint": "\#(ck)", "options": {"pod": "a b"}}"#,
            #"{"id": "x", "kind": "checkpoint"}"#,
            #"{"id": "x", "kind": "checkpoint", "container": "-rm"}"#,
            #"{"id": "x", "kind": "checkpoint", "container": "web", "options": {"compress": "xz"}}"#,
            #"{"id": "x", "kind": "checkpoint", "container": "web", "options": {"leave_running": 1}}"#,
        ] {
            #expect(code(body) == "INVALID_JOB", "\(body)")
        }
    }

    @Test("the bearer check needs the exact token")
    func bearer() {
        #expect(AgentAPI.bearer("Bearer secret-token", matches: "secret-token"))
        #expect(AgentAPI.bearer("bearer secret-token", matches: "secret-token"))
        #expect(!AgentAPI.bearer("Bearer secret-tokeN", matches: "secret-token"))
        #expect(!AgentAPI.bearer("Bearer secret-token2", matches: "secret-token"))
        #expect(!AgentAPI.bearer("Bearer secret", matches: "secret-token"))
        #expect(!AgentAPI.bearer("Basic secret-token", matches: "secret-token"))
        #expect(!AgentAPI.bearer(nil, matches: "secret-token"))
        #expect(!AgentAPI.bearer("Bearer ", matches: "secret-token"))
    }
}
