@testable import FerryAgent
import FerryTestSupport
import Foundation
import Testing

/// Podman's answers are reused only while its events log (and the network directories) are unchanged: any new
/// event makes the next question go to Podman again.
@Suite("Podman state cache")
struct PodmanStateCacheTests {
    func log() throws -> (PodmanEventLog, URL) {
        let directory = try Fixtures.temporaryDirectory()
        let file = directory.appendingPathComponent("events.log")
        try Data("{\"Status\":\"create\"}\n".utf8).write(to: file)
        return (PodmanEventLog(path: file.path), file)
    }

    func append(_ file: URL) throws {
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"Status\":\"remove\"}\n".utf8))
        try handle.close()
    }

    @Test("the inventory is collected once while no event is written, and again after one")
    func inventoryFollowsTheLog() throws {
        let (eventLog, file) = try log()
        let cache = PodmanStateCache(log: eventLog)
        var collections = 0
        func collect() -> (PodmanInventory, inspected: [String: String]) {
            collections += 1
            var inventory = PodmanInventory()
            inventory.containerNames = collections == 1 ? ["counter"] : []
            inventory.containerIDs = collections == 1 ? [String(repeating: "a", count: 64)] : []
            return (inventory, [:])
        }
        #expect(cache.inventory(collect).containerNames == ["counter"])
        #expect(cache.inventory(collect).containerNames == ["counter"])
        #expect(collections == 1)
        #expect(!cache.knownAbsent("counter"))
        #expect(cache.knownAbsent("other"))
        try append(file)  // podman rm counter
        #expect(!cache.knownAbsent("other"), "a changed log proves nothing")
        #expect(cache.inventory(collect).containerNames == [])
        #expect(collections == 2)
        #expect(cache.latestInventory()?.containerNames == [])
    }

    func append(_ file: URL, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    func line(_ type: String, _ status: String) -> String {
        #"{"ID":"\#(String(repeating: "b", count: 64))","Name":"x","Status":"\#(status)","Time":"2026-12-01T00:00:00Z","Type":"\#(type)","Attributes":{}}"# + "\n"
    }

    @Test("a container stays known absent across events that cannot add one (exec, checkpoint, removals, images), and not across any other")
    func absenceSurvivesHarmlessEvents() throws {
        func cache(after events: String) throws -> PodmanStateCache {
            let (eventLog, file) = try log()
            let cache = PodmanStateCache(log: eventLog)
            _ = cache.inventory {
                var inventory = PodmanInventory()
                inventory.containerNames = ["counter"]
                inventory.containerIDs = [String(repeating: "a", count: 64)]
                return (inventory, [:])
            }
            try append(file, events)
            return cache
        }
        let harmless = line("container", "exec") + line("container", "exec_died") + line("container", "checkpoint")
            + line("container", "died") + line("container", "cleanup") + line("container", "remove")
            + line("container", "health_status") + line("image", "pull") + line("image", "untag")
        let quiet = try cache(after: harmless)
        #expect(quiet.knownAbsent("other"))
        #expect(!quiet.knownAbsent("counter"))
        #expect(!quiet.knownAbsent("aaaa"), "an ID prefix of a listed container")

        for adding in [line("container", "create"), line("container", "restore"), line("container", "rename"),
                       line("pod", "create"), line("system", "renumber"), line("container", "something_new"),
                       #"{"Status":"remove"}"# + "\n", "not json\n",
                       String(line("container", "exec").dropLast())] {  // a line still being written
            #expect(!(try cache(after: harmless + adding)).knownAbsent("other"), "after \(adding)")
        }
    }

    @Test("a replaced or truncated events log proves nothing")
    func replacedLog() throws {
        let (eventLog, file) = try log()
        let cache = PodmanStateCache(log: eventLog)
        _ = cache.inventory {
            var inventory = PodmanInventory()
            inventory.containerNames = []
            inventory.containerIDs = []
            return (inventory, [:])
        }
        #expect(cache.knownAbsent("other"))
        try Data(line("container", "exec").utf8).write(to: file, options: .atomic)  // a new file: another inode
        #expect(!cache.knownAbsent("other"))
    }

    @Test("an inspect answer is reused until the next event")
    func inspectFollowsTheLog() throws {
        let (eventLog, file) = try log()
        let cache = PodmanStateCache(log: eventLog)
        var runs = 0
        let first = cache.inspectOutput("counter") { runs += 1; return "[{\"run\":\(runs)}]" }
        let second = cache.inspectOutput("counter") { runs += 1; return "[{\"run\":\(runs)}]" }
        #expect(first == second)
        #expect(runs == 1)
        try append(file)
        _ = cache.inspectOutput("counter") { runs += 1; return "[]" }
        #expect(runs == 2)
    }

    @Test("without an events log nothing is cached")
    func noLogNoCache() {
        let cache = PodmanStateCache(log: PodmanEventLog(path: "/nonexistent/events.log"))
        var runs = 0
        _ = cache.inspectOutput("counter") { runs += 1; return "[]" }
        _ = cache.inspectOutput("counter") { runs += 1; return "[]" }
        #expect(runs == 2)
        #expect(!cache.knownAbsent("anything"))
    }

    @Test("containers.conf's events_logfile_path is found, commented lines are not")
    func configuredPath() throws {
        let directory = try Fixtures.temporaryDirectory()
        let file = directory.appendingPathComponent("containers.conf")
        try "[engine]\n#events_logfile_path=\"/nope\"\nevents_logfile_path = \"/var/log/podman-events.log\"\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(PodmanEventLog.configuredPath(in: file.path) == "/var/log/podman-events.log")
    }

    @Test("open TCP connections are read from /proc tables, IPv4-mapped tcp6 rows included, listeners not")
    func tcpTables() {
        let tcp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:CF94 0100007F:1388 01 00000000:00000000 00:00000000 00000000     0        0 1 1
               1: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
            """
        let tcp6 = """
              sl  local_address                         remote_address                        st
               0: 0000000000000000FFFF00000100007F:1388 0000000000000000FFFF00000100007F:CF94 01
            """
        #expect(PodmanContainer.establishedLocalAddresses(tcp) == ["127.0.0.1"])
        #expect(PodmanContainer.establishedLocalAddresses(tcp6) == ["127.0.0.1"])
    }
}
