import Foundation

/// A program the agent started with `posix_spawnp`: standard input from /dev/null, stdout and stderr into files,
/// in a process group of its own (so cancelling a job reaches the helpers a runtime starts), with default signal
/// dispositions (the agent ignores SIGTERM and SIGPIPE; children must not inherit that) and no descriptors of the
/// agent's beyond 0–2 (a runtime that outlives a killed agent must not keep its listening socket).
///
/// No pipes and no Foundation `Process`: waiting blocks only the job's own thread.
final class ChildProcess: @unchecked Sendable {
    // @unchecked Sendable invariant: `exited` is only read and written with `lock` held; `pid` is immutable.
    let pid: pid_t
    private let lock = NSLock()
    private var exited = false

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Starts `argv` (`argv[0]` looked up in `PATH` unless it contains a `/`).
    /// - Throws: `AgentError` with `failureCode` when the program cannot be started (not found, not executable).
    static func spawn(_ argv: [String], stdout: String, stderr: String,
                      failureCode: AgentErrorCode) throws(AgentError) -> ChildProcess {
        guard let program = argv.first, !program.isEmpty else {
            throw AgentError(failureCode, "the command is empty")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Not every descriptor of the agent is close-on-exec (libmicrohttpd's duplicate of the listening socket is
        // not), so close all of them in the child. glibc ignores a close of a descriptor gone meanwhile.
        for fd in Self.openDescriptors() where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let arguments = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, program, &actions, &attributes, arguments, environ)
        guard status == 0 else {
            throw AgentError(failureCode, "cannot start \(program): \(String(cString: strerror(status)))")
        }
        return ChildProcess(pid: pid)
    }

    /// The descriptors open in this process, from /proc/self/fd.
    private static func openDescriptors() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
    }

    /// Waits for the program to end; its exit status, or 128 + the signal number that ended it.
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        markExited()
        return Self.exitStatus(status)
    }

    /// Waits up to `seconds`; nil (and the process group killed) when the program is still running then.
    func wait(seconds: Double) -> Int32? {
        let deadline = Date(timeIntervalSinceNow: seconds)
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                markExited()
                return Self.exitStatus(status)
            }
            if result < 0 && errno != EINTR {
                markExited()
                return nil
            }
            if Date() >= deadline {
                signalGroup(SIGKILL)
                _ = wait()
                return nil
            }
            usleep(5_000)
        }
    }

    /// Sends SIGTERM to the program's process group, and SIGKILL `grace` seconds later if the program has not
    /// been reaped by then. Returns at once.
    func terminate(grace: Double) {
        signalGroup(SIGTERM)
        let thread = Thread { [self] in
            Thread.sleep(forTimeInterval: grace)
            signalGroup(SIGKILL)
        }
        thread.name = "ferry-agent-kill"
        thread.start()
    }

    /// Signals the whole group while the leader is not yet reaped (after that its PID could be reused).
    private func signalGroup(_ number: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if !exited { kill(-pid, number) }
    }

    private func markExited() {
        lock.lock()
        exited = true
        lock.unlock()
    }

    private static func exitStatus(_ status: Int32) -> Int32 {
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}

/// Running a short command for a fact (`criu --version`, `podman images`): its stdout if it exits 0 within the
/// time limit, else nil. Output goes through files in a private temporary directory.
enum FactCommand {
    static func output(_ argv: [String], timeout: Double = 10) -> String? {
        guard let outcome = run(argv, timeout: timeout), outcome.status == 0 else { return nil }
        return outcome.stdout
    }

    /// What a short command printed and how it exited; nil when it could not be started or ran past `timeout`.
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ argv: [String], timeout: Double = 10) -> Outcome? {
        guard let program = argv.first, HostSystem.findExecutable(program) != nil else { return nil }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-agent-\(UUID().uuidString)")
        guard (try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false,
                                                        attributes: [.posixPermissions: 0o700])) != nil else { return nil }
        defer { try? FileManager.default.removeItem(at: directory) }
        let stdout = directory.appendingPathComponent("stdout").path
        let stderr = directory.appendingPathComponent("stderr").path
        guard let child = try? ChildProcess.spawn(argv, stdout: stdout, stderr: stderr, failureCode: .fileError),
              let status = child.wait(seconds: timeout) else { return nil }
        return Outcome(status: status, stdout: (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOfFile: stderr, encoding: .utf8)) ?? "")
    }
}

/// Runs blocking closures at once, each on a thread of its own, and returns when all have finished.
enum ParallelWork {
    static func run(_ work: [@Sendable () -> Void]) {
        let group = DispatchGroup()
        for item in work {
            group.enter()
            let thread = Thread {
                item()
                group.leave()
            }
            thread.name = "ferry-agent-fact"
            thread.start()
        }
        group.wait()
    }
}
