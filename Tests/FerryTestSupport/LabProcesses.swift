import Foundation

/// The few things the lab needs to know about other processes, read from `/proc`.
enum LabProcesses {
    /// Whether a process with this ID exists and has not exited (a zombie, exited but not yet reaped, has).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        // /proc/PID/stat is "PID (COMM) STATE …"; COMM may hold spaces and parentheses, so look after the last ')'.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    /// A process's argv, or nil when it is gone.
    static func commandLine(_ pid: pid_t) -> [String]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        return data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every process ID in `/proc`.
    static func all() -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
    }

    /// The `podman` commands working on the store whose graph root is `storageRoot` (the wrapper's
    /// `/usr/bin/podman --root ROOT …`); conmon and the containers themselves are not among them.
    static func podmanCommands(using storageRoot: String) -> [pid_t] {
        all().filter { pid in
            guard pid != getpid(), let argv = commandLine(pid), argv.first?.hasSuffix("podman") == true,
                  let flag = argv.firstIndex(of: "--root"), flag + 1 < argv.count else { return false }
            return argv[flag + 1] == storageRoot
        }
    }

    /// Lets the `podman` commands still working on a store (a restore an agent started just before it was killed)
    /// finish, for up to `timeout` seconds, then SIGKILLs the rest: a command killed half-way can leave a libpod
    /// lock taken, so it is the last resort, but a teardown must not race a running restore.
    static func finishPodmanCommands(using storageRoot: String, timeout: Double = 30) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !podmanCommands(using: storageRoot).isEmpty && Date() < deadline { usleep(100_000) }
        for pid in podmanCommands(using: storageRoot) { kill(pid, SIGKILL) }
    }

    /// `Fixtures.run`, but a program still running after `timeout` seconds is SIGKILLed (a teardown must end even
    /// when Podman hangs on a lock); nil then.
    static func run(_ executable: String, _ arguments: [String], timeout: Double) -> ProcessResult? {
        guard let directory = try? Fixtures.temporaryDirectory() else { return nil }
        defer { try? FileManager.default.removeItem(at: directory) }
        let stdout = directory.appendingPathComponent("stdout").path
        let stderr = directory.appendingPathComponent("stderr").path
        guard let child = try? Fixtures.spawn(executable, arguments, stdout: stdout, stderr: stderr) else { return nil }
        let deadline = Date(timeIntervalSinceNow: timeout)
        var status: Int32 = 0
        while true {
            let result = waitpid(child, &status, WNOHANG)
            if result == child { break }
            if result < 0 && errno != EINTR { return nil }
            if Date() >= deadline {
                kill(child, SIGKILL)
                _ = Fixtures.wait(child)
                return nil
            }
            usleep(20_000)
        }
        return ProcessResult(status: status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f),
                             stdoutData: FileManager.default.contents(atPath: stdout) ?? Data(),
                             stderr: (try? String(contentsOfFile: stderr, encoding: .utf8)) ?? "")
    }

    /// Kills a process this test process spawned and reaps it.
    static func stop(_ pid: pid_t, signal: Int32) -> Int32 {
        kill(pid, signal)
        return Fixtures.wait(pid)
    }
}
