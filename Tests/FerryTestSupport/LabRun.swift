public import Foundation

/// One lab cluster's run-wide state directory, `/run/ferry-lab-R`: a manifest of everything the run created, so that
/// a later run can clean up after a test process that died without its teardown (SIGKILL, a crash, a CI timeout),
/// and the pidfiles of its containers.
///
/// The manifest is text, one fact a line, written as things are created (`scripts/bench-migrate.sh` writes the
/// same format):
///
/// ```
/// owner PID                     the test process; the run is abandoned once it is gone
/// process PID                   a ferry serve / ferry agent it started
/// store NODE DIRECTORY RUNROOT  a node's Podman store
/// temp DIRECTORY                a temporary directory to delete
/// ```
public struct LabRun: Sendable {
    /// The run's short random name, part of every path it creates.
    public let name: String
    /// `/run/ferry-lab-R`.
    public let directory: URL

    /// A new run owned by this process; creates its directory and manifest.
    public init() throws {
        name = String(UUID().uuidString.lowercased().prefix(8))
        directory = URL(fileURLWithPath: "/run/ferry-lab-\(name)")
        try FileManager.default.createDirectory(at: pidDirectory, withIntermediateDirectories: true)
        try "owner \(getpid())\n".write(to: manifest, atomically: true, encoding: .utf8)
    }

    private init(existing directory: URL) {
        self.directory = directory
        name = String(directory.lastPathComponent.dropFirst("ferry-lab-".count))
    }

    var manifest: URL { directory.appendingPathComponent("manifest") }

    /// Where containers started by the fixture keep their pidfiles. Podman records a container's conmon and
    /// container pidfile paths in its config, and `restore --import` on another node writes to the same paths; by
    /// default they lie in the creating node's run root, which is gone once that node removed the container. A
    /// directory both nodes share keeps restores independent of what the source did meanwhile, as on real nodes
    /// (whose run roots have the same path).
    public var pidDirectory: URL { directory.appendingPathComponent("pids") }

    /// Appends one fact to the manifest.
    func record(_ line: String) {
        guard let handle = try? FileHandle(forWritingTo: manifest) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Removes the run directory (after everything in the manifest was cleaned up).
    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Cleans up every run whose owner process is gone: kills the `ferry` processes it started, destroys its stores,
    /// and deletes its temporary directories and its run directory. Runs of live processes are left alone.
    public static func sweepAbandoned() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run")) ?? []
        for name in names where name.hasPrefix("ferry-lab-") {
            let run = LabRun(existing: URL(fileURLWithPath: "/run").appendingPathComponent(name))
            guard let text = try? String(contentsOf: run.manifest, encoding: .utf8) else { continue }
            let facts = text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            guard let owner = facts.first(where: { $0.first == "owner" }).flatMap({ $0.count > 1 ? pid_t($0[1]) : nil }),
                  !LabProcesses.isAlive(owner) else { continue }
            FileHandle.standardError.write(Data("LAB: cleaning up run \(run.name), abandoned by process \(owner)\n".utf8))
            for fact in facts where fact.first == "process" && fact.count > 1 {
                guard let pid = pid_t(fact[1]), LabProcesses.commandLine(pid)?.first?.hasSuffix("ferry") == true else { continue }
                kill(pid, SIGKILL)
            }
            // Only paths of the lab's own shape are deleted, whatever a damaged manifest says.
            for fact in facts where fact.first == "store" && fact.count > 3
                && fact[2].hasPrefix("/var/lib/ferry-lab-") && fact[3].hasPrefix("/run/ferry-lab-") {
                let store = LabStore(node: fact[1], directory: URL(fileURLWithPath: fact[2]), runRoot: URL(fileURLWithPath: fact[3]))
                for problem in store.destroy() { FileHandle.standardError.write(Data("LAB: \(problem)\n".utf8)) }
            }
            for fact in facts where fact.first == "temp" && fact.count > 1 && fact[1].contains("/ferry-") {
                try? FileManager.default.removeItem(atPath: fact[1])
            }
            run.remove()
        }
    }
}
