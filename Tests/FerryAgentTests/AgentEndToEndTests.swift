import FerryAgent
import FerryTestSupport
import Foundation
import Testing

/// The agent in-process on a loopback port, driven with curl, against a fake service on FerryHTTP, with the
/// `command` driver pointed at a script that checks the archive it is given.
@Suite("agent end to end", .serialized)
struct AgentEndToEndTests {
    @Test("heartbeats arrive at once and then on schedule, with the token, the agent's URL and the facts")
    func heartbeats() throws {
        let harness = try AgentHarness()
        let agent = try harness.start(try harness.configuration(facts: #"{"runtimes": ["runc"], "ips_in_use": ["10.89.0.42"]}"#))
        defer { agent.stop() }
        try waitUntil("two heartbeats arrived") { harness.service.heartbeats.current.count >= 2 }
        let beat = try #require(harness.service.receivedHeartbeats.first)
        #expect(beat.node == AgentHarness.node)
        #expect(beat.authorization == "Bearer \(AgentHarness.token)")
        #expect(beat.body["name"] as? String == AgentHarness.node)
        #expect(beat.body["agent_url"] as? String == "http://127.0.0.1:\(agent.port)")
        #expect(agent.agentURL == "http://127.0.0.1:\(agent.port)")
        #expect(beat.body["driver"] as? String == "command")
        #expect(beat.body["version"] as? String == "ferry agent 0.1.0")
        #expect((beat.body["free_disk_bytes"] as? NSNumber)?.int64Value ?? 0 > 0)
        let facts = try #require(beat.body["facts"] as? [String: Any])
        let machine = try Fixtures.run("/usr/bin/uname", ["-m"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(facts["architecture"] as? String == machine)
        #expect(facts["kernel"] as? String != nil)
        #expect((facts["runtimes"] as? [String])?.contains("runc") == true, "declared in the facts file")
        #expect((facts["ips_in_use"] as? [String])?.contains("10.89.0.42") == true, "declared in the facts file")
        #expect(facts["images"] == nil, "unknown stays out, it is not an empty list")

        // The same facts at GET /v1/facts.
        let served = try curl("GET", harness.url(agent, "/v1/facts"), token: AgentHarness.token)
        #expect(served.status == 200)
        #expect(served.json["architecture"] as? String == machine)
        #expect((served.json["ips_in_use"] as? [String])?.contains("10.89.0.42") == true)
    }

    @Test("a restore job downloads the archive, runs the command with the options, and succeeds")
    func restoreSucceeds() throws {
        let harness = try AgentHarness()
        let agent = try harness.start(try harness.configuration())
        defer { agent.stop() }
        let posted = try harness.post(agent, harness.restoreJob("mig-1", options: #"{"name": "web-copy", "tcp_established": true, "ignore_static_ip": true, "slow": false}"#))
        #expect(posted.status == 202, "\(posted.text)")
        #expect(posted.json["id"] as? String == "mig-1")
        #expect(posted.json["kind"] as? String == "restore")
        #expect(posted.json["checkpoint"] as? String == harness.checkpoint)
        let job = try harness.wait(agent, "mig-1")
        #expect(job.state == "succeeded", "\(job)")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: harness.archive)[.size] as? Int)
        #expect(job.int("bytes_done") == size && job.int("bytes_total") == size)
        #expect(job.result["container_id"] as? String == "container-mig-1")
        #expect(job.result["exit_status"] as? Int == 0)
        #expect((job.result["output_tail"] as? String)?.contains("restoring mig-1") == true)
        #expect((job["updated_at"] as? String)?.hasSuffix("Z") == true)
        #expect(job["error"] == nil)

        // The script saw the verified archive and exactly these arguments.
        let archivePath = harness.jobDirectory("mig-1").appendingPathComponent("archive.tar").path
        #expect(harness.record("mig-1", "argv") == """
            \(archivePath)
            {"ignore_static_ip":true,"name":"web-copy","slow":false,"tcp_established":true}
            \(harness.checkpoint)
            mig-1
            web-copy

            """)
        #expect(harness.record("mig-1", "digest") == harness.checkpoint + "\n")

        // Persisted privately; the archive is gone once restored.
        let jobFile = harness.jobDirectory("mig-1").appendingPathComponent("job.json").path
        #expect(try FileManager.default.attributesOfItem(atPath: jobFile)[.posixPermissions] as? Int == 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: harness.workDirectory.path)[.posixPermissions] as? Int == 0o700)
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: jobFile))) as? [String: Any]
        #expect(stored?["state"] as? String == "succeeded")
        #expect(!FileManager.default.fileExists(atPath: archivePath))
    }

    @Test("a failing restore command fails the job with RESTORE_FAILED, its exit status and its output")
    func restoreFails() throws {
        let harness = try AgentHarness()
        let agent = try harness.start(try harness.configuration())
        defer { agent.stop() }
        #expect(try harness.post(agent, harness.restoreJob("mig-fail", options: #"{"fail": true}"#)).status == 202)
        let job = try harness.wait(agent, "mig-fail")
        #expect(job.state == "failed")
        #expect(job.errorCode == "RESTORE_FAILED")
        #expect(((job["error"] as? [String: Any])?["message"] as? String)?.contains("status 7") == true)
        #expect(job.result["exit_status"] as? Int == 7)
        let tail = try #require(job.result["output_tail"] as? String)
        #expect(tail.contains("some progress") && tail.contains("runtime says no"), "stdout and stderr: \(tail)")
        #expect(job.result["container_id"] == nil)
        #expect(harness.record("mig-fail", "argv")?.hasSuffix("mig-fail\n") == true, "no empty {name} argument")
    }

    @Test("the same job ID posted twice is one job, run once")
    func idempotent() throws {
        let harness = try AgentHarness()
        let agent = try harness.start(try harness.configuration())
        defer { agent.stop() }
        let first = try harness.post(agent, harness.restoreJob("mig-twice", options: #"{"name": "a"}"#))
        let second = try harness.post(agent, harness.restoreJob("mig-twice", options: #"{"name": "b"}"#))
        #expect(first.status == 202)
        #expect(second.status == 200)
        #expect(first.json["created_at"] as? String == second.json["created_at"] as? String)
        #expect(try harness.wait(agent, "mig-twice").state == "succeeded")
        let third = try harness.post(agent, harness.restoreJob("mig-twice"))
        #expect(third.status == 200 && third.json["state"] as? String == "succeeded")
        usleep(200_000)
        #expect(harness.record("mig-twice", "runs") == "run\n", "the driver ran once")
        #expect(harness.record("mig-twice", "argv")?.hasSuffix("mig-twice\na\n") == true, "with the first request's options")
    }

    /// Posts restore job `id` to an agent paced at 40 kB/s and stops the agent once 20 kB are on disk; returns the
    /// job as it stood just before the stop.
    func stopMidDownload(_ harness: AgentHarness, _ id: String) throws -> [String: Any] {
        let agent = try harness.start(try harness.configuration(rate: 40_000))
        #expect(try harness.post(agent, harness.restoreJob(id, options: #"{"name": "\#(id)"}"#)).status == 202)
        try waitUntil("some bytes arrived") { (try harness.job(agent, id).int("bytes_done") ?? 0) >= 20_000 }
        let job = try harness.job(agent, id)
        agent.stop()
        return job
    }

    @Test("a job resumes after the agent is stopped mid-download, from the partial file, and its digest matches")
    func resumesAfterStop() throws {
        let harness = try AgentHarness()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: harness.archive)[.size] as? Int)
        let before = try stopMidDownload(harness, "mig-resume")
        #expect(before.state == "downloading")
        #expect(before.int("bytes_total") == size)

        // Stopped: the job file says downloading, and part of the archive is on disk.
        let directory = harness.jobDirectory("mig-resume")
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("job.json"))) as? [String: Any]
        #expect(stored?["state"] as? String == "downloading")
        let partial = try #require(try FileManager.default.attributesOfItem(
            atPath: directory.appendingPathComponent("archive.tar.partial").path)[.size] as? Int)
        #expect(partial > 0 && partial < size)
        let requestsBefore = harness.service.archiveRanges.current.count

        let second = try harness.start(try harness.configuration())
        defer { second.stop() }
        let job = try harness.wait(second, "mig-resume")
        #expect(job.state == "succeeded", "\(job)")
        #expect(job.int("bytes_done") == size)
        #expect(harness.record("mig-resume", "digest") == harness.checkpoint + "\n", "the script checked the digest")
        let resumedRanges = harness.service.archiveRanges.current.dropFirst(requestsBefore)
        #expect(resumedRanges.first?.hasPrefix("bytes=\(partial)-") == true, "resumed at the partial size: \(resumedRanges)")
        #expect(harness.logs.current.contains { $0.contains("1 job(s) resumed") })
    }

    @Test("a partial file altered while the agent was stopped fails the digest check, and the download starts over")
    func corruptPartialStartsOver() throws {
        let harness = try AgentHarness()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: harness.archive)[.size] as? Int)
        _ = try stopMidDownload(harness, "mig-corrupt")

        // The bytes on disk are hashed when the download resumes: flip one of them.
        let partial = harness.jobDirectory("mig-corrupt").appendingPathComponent("archive.tar.partial")
        let handle = try FileHandle(forUpdating: partial)
        try handle.seek(toOffset: 100)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: Data([byte ^ 0xFF]))
        try handle.close()
        let requestsBefore = harness.service.archiveRanges.current.count

        let second = try harness.start(try harness.configuration())
        defer { second.stop() }
        let job = try harness.wait(second, "mig-corrupt")
        #expect(job.state == "succeeded", "\(job)")
        #expect(job.int("bytes_done") == size)
        #expect(harness.record("mig-corrupt", "digest") == harness.checkpoint + "\n", "the restore got the true archive")
        let ranges = Array(harness.service.archiveRanges.current.dropFirst(requestsBefore))
        #expect(ranges.first?.hasPrefix("bytes=0-") == false, "it resumed first: \(ranges)")
        #expect(ranges.dropFirst().contains { $0.hasPrefix("bytes=0-") }, "then started over from nothing: \(ranges)")
    }

    @Test("the download limit holds the pace")
    func rateLimit() throws {
        let harness = try AgentHarness()
        let agent = try harness.start(try harness.configuration(rate: 100_000))
        defer { agent.stop() }
        #expect(try harness.post(agent, harness.restoreJob("mig-slow")).status == 202)
        usleep(1_000_000)
        let done = try harness.job(agent, "mig-slow").int("bytes_done") ?? 0
        // One second at 100 kB/s, plus the first quarter-second slice that goes at once.
        #expect(done > 0 && done <= 150_000, "\(done) bytes after 1 s")
        #expect(try harness.wait(agent, "mig-slow", seconds: 10).state == "succeeded")
    }

    @Test("DELETE cancels a download and a running driver with CANCELLED")
    func cancel() throws {
        let harness = try AgentHarness()
        let agent = try harness.start(try harness.configuration(rate: 20_000))
        defer { agent.stop() }
        #expect(try harness.post(agent, harness.restoreJob("mig-cancel-download")).status == 202)
        try waitUntil("the download started") { (try harness.job(agent, "mig-cancel-download").int("bytes_done") ?? 0) > 0 }
        let cancelled = try curl("DELETE", harness.url(agent, "/v1/jobs/mig-cancel-download"), token: AgentHarness.token)
        #expect(cancelled.status == 200)
        #expect(cancelled.json["state"] as? String == "failed")
        #expect((cancelled.json["error"] as? [String: Any])?["code"] as? String == "CANCELLED")
        try waitUntil("the partial file is removed") {
            !FileManager.default.fileExists(atPath: harness.jobDirectory("mig-cancel-download").appendingPathComponent("archive.tar.partial").path)
        }
        #expect(try harness.job(agent, "mig-cancel-download").errorCode == "CANCELLED")

        let fast = try harness.start(try {
            var configuration = try harness.configuration()
            configuration.workDirectory = harness.directory.appendingPathComponent("agent-2").path
            return configuration
        }())
        defer { fast.stop() }
        #expect(try harness.post(fast, harness.restoreJob("mig-cancel-driver", options: #"{"sleep": true}"#)).status == 202)
        try waitUntil("the script is sleeping") { harness.record("mig-cancel-driver", "digest") != nil }
        usleep(100_000)
        let started = Date()
        #expect(try curl("DELETE", harness.url(fast, "/v1/jobs/mig-cancel-driver"), token: AgentHarness.token).status == 200)
        let job = try harness.wait(fast, "mig-cancel-driver")
        #expect(job.errorCode == "CANCELLED")
        try waitUntil("the job's thread is done", seconds: 5) {
            harness.logs.current.contains { $0.contains("job mig-cancel-driver: restore exited with status 143") }
        }
        #expect(Date().timeIntervalSince(started) < 3, "SIGTERM ended the script and its sleep")
        #expect(try curl("DELETE", harness.url(fast, "/v1/jobs/nope"), token: AgentHarness.token).errorCode == "JOB_NOT_FOUND")
    }

    @Test("without the agent's token every request is refused with 401")
    func authorization() throws {
        let harness = try AgentHarness()
        let agent = try harness.start(try harness.configuration())
        defer { agent.stop() }
        for token in [nil, "wrong-token", AgentHarness.token + "x", "agent-token"] {
            let facts = try curl("GET", harness.url(agent, "/v1/facts"), token: token)
            #expect(facts.status == 401, "\(token ?? "no token")")
            #expect(facts.errorCode == "UNAUTHORIZED")
            #expect(try curl("POST", harness.url(agent, "/v1/jobs"), token: token, json: harness.restoreJob("x")).status == 401)
        }
        #expect(try curl("GET", harness.url(agent, "/v1/jobs/x"), token: AgentHarness.token).errorCode == "JOB_NOT_FOUND")
        #expect(try curl("GET", harness.url(agent, "/v1/facts"), token: AgentHarness.token).status == 200)
        let bad = try harness.post(agent, #"{"id": "x", "kind": "restore", "checkpoint": "zz"}"#)
        #expect(bad.status == 400 && bad.errorCode == "INVALID_JOB")
    }

    @Test("a checkpoint job runs the checkpoint command and uploads the archive for this node")
    func checkpointJob() throws {
        let harness = try AgentHarness()
        let agent = try harness.start(try harness.configuration())
        defer { agent.stop() }
        let posted = try harness.post(agent, #"{"id": "mig-1-checkpoint", "kind": "checkpoint", "container": "web", "options": {"compress": "none", "leave_running": true}}"#)
        #expect(posted.status == 202, "\(posted.text)")
        #expect(posted.json["state"] as? String == "checkpointing")
        let job = try harness.wait(agent, "mig-1-checkpoint")
        #expect(job.state == "succeeded", "\(job)")
        #expect(job["checkpoint"] as? String == harness.checkpoint)
        #expect((job.result["output_tail"] as? String)?.contains("checkpointing web") == true)
        let uploads = harness.service.uploads.current
        #expect(uploads.count == 1 && uploads.first?.node == AgentHarness.node && uploads.first?.id == harness.checkpoint)
        // The archive stays for a rollback until the service releases it.
        let kept = harness.jobDirectory("mig-1-checkpoint").appendingPathComponent("checkpoint.tar").path
        #expect(FileManager.default.fileExists(atPath: kept))
        let released = try curl("POST", harness.url(agent, "/v1/jobs/mig-1-checkpoint/release"), token: AgentHarness.token, json: "{}")
        #expect(released.status == 200, "\(released.text)")
        #expect(!FileManager.default.fileExists(atPath: kept))
    }

    @Test("the criu driver refuses checkpoint jobs with DRIVER_UNSUPPORTED")
    func criuRefusesCheckpoints() throws {
        let harness = try AgentHarness()
        var configuration = try harness.configuration()
        configuration.driver = CRIUDriver()
        let agent = try harness.start(configuration)
        defer { agent.stop() }
        let posted = try harness.post(agent, #"{"id": "c", "kind": "checkpoint", "container": "web"}"#)
        #expect(posted.status == 422)
        #expect(posted.errorCode == "DRIVER_UNSUPPORTED")
        #expect(try curl("GET", harness.url(agent, "/v1/jobs/c"), token: AgentHarness.token).status == 404)
    }

    @Test("at start-up a restore left running is run again, a checkpoint left running fails with INTERRUPTED")
    func resumeDecisions() throws {
        let harness = try AgentHarness()
        let jobs = harness.workDirectory.appendingPathComponent("jobs")
        let now = "2026-01-01T00:00:00.000Z"
        for (id, kind, state, extra) in [("left-restoring", "restore", "restoring", #""checkpoint": "\#(harness.checkpoint)","#),
                                         ("left-checkpointing", "checkpoint", "checkpointing", #""container": "web","#)] {
            try FileManager.default.createDirectory(at: jobs.appendingPathComponent(id), withIntermediateDirectories: true)
            try #"{"id": "\#(id)", "kind": "\#(kind)", "state": "\#(state)", \#(extra) "bytes_done": 0, "bytes_total": 0, "options": "{}", "created_at": "\#(now)", "updated_at": "\#(now)"}"#
                .write(to: jobs.appendingPathComponent("\(id)/job.json"), atomically: true, encoding: .utf8)
        }
        try FileManager.default.copyItem(atPath: harness.archive, toPath: jobs.appendingPathComponent("left-restoring/archive.tar").path)
        let agent = try harness.start(try harness.configuration())
        defer { agent.stop() }
        let restore = try harness.wait(agent, "left-restoring")
        #expect(restore.state == "succeeded", "\(restore)")
        #expect(harness.record("left-restoring", "runs") == "run\n")
        let checkpoint = try harness.wait(agent, "left-checkpointing")
        #expect(checkpoint.errorCode == "INTERRUPTED")
        #expect(harness.service.uploads.current.isEmpty)
    }

    @Test("the agent keeps serving while the service is down, and a second agent cannot share its work directory")
    func serviceDown() throws {
        let harness = try AgentHarness()
        var configuration = try harness.configuration()
        configuration.server = URL(string: "http://127.0.0.1:9")!
        let agent = try harness.start(configuration)
        defer { agent.stop() }
        try waitUntil("the failure is logged") { harness.logs.current.contains { $0.contains("heartbeat to http://127.0.0.1:9 failed") } }
        usleep(500_000)
        #expect(harness.logs.current.filter { $0.contains("heartbeat") }.count == 1, "logged once, not on every beat")
        #expect(try curl("GET", harness.url(agent, "/v1/facts"), token: AgentHarness.token).status == 200)
        #expect(throws: AgentError.self) { try harness.start(try harness.configuration()) }
    }

    @Test("bad configurations are refused before anything starts")
    func badConfiguration() throws {
        let harness = try AgentHarness()
        var open = try harness.configuration(token: nil)
        open.host = "0.0.0.0"
        open.advertise = URL(string: "http://10.0.0.5:8090")
        #expect(throws: AgentConfigurationError.self) { try harness.start(open) }
        var wildcard = try harness.configuration()
        wildcard.host = "0.0.0.0"
        #expect(throws: AgentConfigurationError.self) { try harness.start(wildcard) }
        var badNode = try harness.configuration()
        badNode.node = "a/b"
        #expect(throws: AgentConfigurationError.self) { try harness.start(badNode) }
        #expect(throws: AgentConfigurationError.self) { try harness.start(try harness.configuration(facts: "not json")) }
        var listen = try harness.configuration()
        #expect(throws: AgentConfigurationError.self) { try listen.setListen("nohost") }
        try listen.setListen("[::1]:0")
        #expect(listen.host == "::1" && listen.port == 0)
        #expect(!FileManager.default.fileExists(atPath: harness.workDirectory.path), "no work directory was created")
    }
}
