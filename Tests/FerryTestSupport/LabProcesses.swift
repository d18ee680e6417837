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

    /// SIGKILLs every `podman` command working on the store whose graph root is `storageRoot` (the wrapper's
    /// `/usr/bin/podman --root ROOT …`), e.g. a restore an agent started before it was killed: such a command would
    /// otherwise race the teardown. conmon and the containers are left to `podman rm`, which knows their state.
    static func killPodmanCommands(using storageRoot: String) {
        for pid in all() where pid != getpid() {
            guard let argv = commandLine(pid), argv.first?.hasSuffix("podman") == true,
                  let flag = argv.firstIndex(of: "--root"), flag + 1 < argv.count, argv[flag + 1] == storageRoot else { continue }
            kill(pid, SIGKILL)
        }
    }

    /// Kills a process this test process spawned and reaps it.
    static func stop(_ pid: pid_t, signal: Int32) -> Int32 {
        kill(pid, signal)
        return Fixtures.wait(pid)
    }
}
