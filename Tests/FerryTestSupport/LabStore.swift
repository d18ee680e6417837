public import Foundation

/// One emulated node's Podman: its own store (`--root`, `--runroot`) behind a `bin/podman` wrapper script, so that a
/// process started with `PATH=<directory>/bin:$PATH` (a `ferry agent`) sees this node's containers and images only.
///
/// Layout, for cluster run `R` and node `N`:
/// - `/var/lib/ferry-lab-R-N/bin/podman`: `exec /usr/bin/podman --root /var/lib/ferry-lab-R-N/storage --runroot
///   /run/ferry-lab-R-N "$@"`
/// - `/var/lib/ferry-lab-R-N/storage`: the graph root (images, layers, the libpod database)
/// - `/var/lib/ferry-lab-R-N/agent`: the work directory of the node's agent
/// - `/run/ferry-lab-R-N`: the run root (overlay mounts, container run directories)
///
/// What the stores share, because Podman keeps it outside `--root`/`--runroot`: the CNI network configuration and
/// its host-local IP allocations (`/var/lib/cni/networks`) and libpod's temporary directory (`/run/libpod`). runc's
/// state gets a root per node (`--runtime-flag root=RUNROOT/runc`): a restore keeps the container's ID, so with
/// runc's default shared `/run/runc` removing the stopped copy on one node would reach the running one on the other.
public struct LabStore: Sendable {
    /// The node's name, `node-a` or `node-b`.
    public let node: String
    /// `/var/lib/ferry-lab-R-N`: the wrapper, the graph root and the agent's work directory.
    public let directory: URL
    /// `/run/ferry-lab-R-N`.
    public let runRoot: URL

    /// The graph root given to `podman --root`.
    public var storageRoot: URL { directory.appendingPathComponent("storage") }
    /// The directory to put first on `PATH`.
    public var binDirectory: URL { directory.appendingPathComponent("bin") }
    /// The `podman` wrapper script.
    public var podmanWrapper: URL { binDirectory.appendingPathComponent("podman") }
    /// The agent's `--work-dir`.
    public var agentWorkDirectory: URL { directory.appendingPathComponent("agent") }

    /// The paths of node `node`'s store in cluster run `run`; creates nothing.
    public init(run: String, node: String) {
        self.init(node: node, directory: URL(fileURLWithPath: "/var/lib/ferry-lab-\(run)-\(node)"),
                  runRoot: URL(fileURLWithPath: "/run/ferry-lab-\(run)-\(node)"))
    }

    /// A store at explicit paths (as a run's manifest records them).
    public init(node: String, directory: URL, runRoot: URL) {
        self.node = node
        self.directory = directory
        self.runRoot = runRoot
    }

    /// Writes the wrapper and loads `image` (from the cached `podman save` of the default store) into the store.
    public func create(image: String) throws {
        try FileManager.default.createDirectory(at: binDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: agentWorkDirectory, withIntermediateDirectories: true)
        try Fixtures.writeScript("""
            #!/bin/sh
            # \(node) of a Ferry lab cluster: Podman with a store of its own.
            podman() { /usr/bin/podman --root \(storageRoot.path) --runroot \(runRoot.path) --runtime-flag root=\(runRoot.path)/runc "$@"; }
            # A test can hold a restore after Podman finished it (to kill the agent in that window): HOLD_FILE.
            if [ "$1 $2" = "container restore" ] && [ -e \(directory.path)/hold-after-restore ]; then
                podman "$@"; status=$?
                touch \(directory.path)/restore-done
                sleep 4
                exit $status
            fi
            exec /usr/bin/podman --root \(storageRoot.path) --runroot \(runRoot.path) --runtime-flag root=\(runRoot.path)/runc "$@"
            """, to: podmanWrapper)
        let archive = try LabImageCache.archive(of: image)
        let load = try podman(["load", "-q", "-i", archive])
        guard load.status == 0 else { throw FixtureError("\(node): podman load \(image) failed: \(load.stderr)") }
    }

    /// Runs the wrapper with `arguments`.
    public func podman(_ arguments: [String], stdin: [UInt8]? = nil) throws -> ProcessResult {
        try Fixtures.run(podmanWrapper.path, arguments, stdin: stdin)
    }

    /// Removes every trace of the store, whatever state it was left in: lets `podman` commands still running on it
    /// finish (a job of an agent that was killed), removes all containers (`rm -af -t 0`, which also releases their
    /// CNI addresses, runc state and libpod locks) and images (which unmounts their layers), unmounts whatever is
    /// still mounted below the two roots, and deletes both directories. Every step has a time limit, so a hung
    /// Podman cannot hang the test run. Returns what could not be removed (empty when all went).
    @discardableResult
    public func destroy() -> [String] {
        var leftovers: [String] = []
        LabProcesses.finishPodmanCommands(using: storageRoot.path)
        if FileManager.default.isExecutableFile(atPath: podmanWrapper.path) {
            for arguments in [["rm", "-af", "-t", "0"], ["rmi", "-af"]] {
                let result = LabProcesses.run(podmanWrapper.path, arguments, timeout: 60)
                if result?.status != 0 {
                    leftovers.append("podman \(arguments.joined(separator: " ")) on \(node): " + (result.map { $0.stderr } ?? "timed out"))
                }
            }
        }
        for mountPoint in Self.mountPoints(under: [directory.path, runRoot.path]) where umount2(mountPoint, Int32(MNT_DETACH)) != 0 {
            leftovers.append("cannot unmount \(mountPoint): \(String(cString: strerror(errno)))")
        }
        for root in [directory, runRoot] where FileManager.default.fileExists(atPath: root.path) {
            do { try FileManager.default.removeItem(at: root) } catch { leftovers.append("cannot remove \(root.path): \(error)") }
        }
        leftovers += Self.mountPoints(under: [directory.path, runRoot.path]).map { "still mounted: \($0)" }
        return leftovers
    }

    /// Mount points at or below any of `roots`, deepest first (from `/proc/self/mountinfo`, whose fifth field is the
    /// mount point with spaces and such escaped as octal).
    public static func mountPoints(under roots: [String]) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let points = text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = String(fields[4]).replacingOccurrences(of: "\\040", with: " ")
            return roots.contains { point == $0 || point.hasPrefix($0 + "/") } ? point : nil
        }
        return points.sorted { $0.count > $1.count }
    }
}

/// `podman save` of an image in the default store, made once per image ID into `/var/lib/ferry-lab-cache` and then
/// `podman load`ed into each node's store (a second of work instead of a rebuild; no registry is reachable).
enum LabImageCache {
    static let directory = URL(fileURLWithPath: "/var/lib/ferry-lab-cache")

    /// The path of the saved image, saving it first if this image ID was never saved.
    static func archive(of image: String) throws -> String {
        let inspect = try Fixtures.run("/usr/bin/podman", ["image", "inspect", "--format", "{{.Id}}", image])
        let id = inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard inspect.status == 0, !id.isEmpty else {
            throw FixtureError("the default Podman store has no \(image) (bash ../shared/lab/setup.sh): \(inspect.stderr)")
        }
        let safeName = image.map { $0.isLetter || $0.isNumber ? $0 : "-" }
        let file = directory.appendingPathComponent("\(String(safeName))-\(id.prefix(12)).tar")
        if FileManager.default.fileExists(atPath: file.path) { return file.path }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Saved under a unique name and renamed, so a concurrent or interrupted save never leaves half a file.
        let partial = directory.appendingPathComponent(".\(UUID().uuidString).partial")
        let save = try Fixtures.run("/usr/bin/podman", ["save", "-q", "-o", partial.path, image])
        guard save.status == 0 else {
            try? FileManager.default.removeItem(at: partial)
            throw FixtureError("podman save \(image) failed: \(save.stderr)")
        }
        guard rename(partial.path, file.path) == 0 else {
            try? FileManager.default.removeItem(at: partial)
            throw FixtureError("cannot rename \(partial.path): \(String(cString: strerror(errno)))")
        }
        return file.path
    }
}
