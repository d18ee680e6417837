public import Foundation

extension LabCluster {
    /// The runtime lab: `$FERRY_LAB_DIR`, else `../shared/lab` beside the repository.
    public static var labDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["FERRY_LAB_DIR"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        return Fixtures.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/lab")
    }

    /// Whether Podman and CRIU are ready (`bash LAB/setup.sh --check` exits 0) and this process may use them (root).
    /// Checked once per test process.
    public static let isAvailable: Bool = {
        let setup = labDirectory.appendingPathComponent("setup.sh").path
        guard getuid() == 0, FileManager.default.fileExists(atPath: setup) else { return false }
        return (try? Fixtures.run("/bin/bash", [setup, "--check"]))?.status == 0
    }()

    /// `isAvailable`, printing `LAB SKIPPED: SUITE: …` on stderr when it is false, so a skipped real-runtime suite
    /// is seen in the log and not mistaken for a pass. For `.enabled(if:)`.
    /// Printed once per suite, although Swift Testing evaluates the condition for the suite and for each test.
    public static func isAvailable(suite: String) -> Bool {
        if !isAvailable && SkipReports.shared.firstReport(of: suite) {
            FileHandle.standardError.write(Data("LAB SKIPPED: \(suite): \(skipReason)\n".utf8))
        }
        return isAvailable
    }

    /// Why lab tests are skipped, with the command that fixes it.
    public static var skipReason: String {
        let setup = labDirectory.appendingPathComponent("setup.sh").path
        if !FileManager.default.fileExists(atPath: setup) { return "the runtime lab is not set up (\(setup) not found)" }
        if getuid() != 0 { return "the runtime lab needs root" }
        return "the runtime lab is not set up (bash ../shared/lab/setup.sh)"
    }

    /// Polls `condition` every `interval` seconds until it returns true; throws when `timeout` passes first, with the
    /// last error the condition threw, if any. A condition that throws is tried again, unless it throws `LabGaveUp`
    /// (a process it waits on has died), which ends the wait at once.
    public static func waitUntil(_ what: String, timeout: Double = 30, interval: Double = 0.1,
                                 _ condition: () throws -> Bool) throws {
        _ = try waitFor(what, timeout: timeout, interval: interval) { try condition() ? true : nil }
    }

    /// Polls `produce` until it returns a value, and returns it; throws when `timeout` passes first.
    public static func waitFor<Value>(_ what: String, timeout: Double = 30, interval: Double = 0.1,
                                      _ produce: () throws -> Value?) throws -> Value {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var lastError: (any Error)?
        repeat {
            do {
                if let value = try produce() { return value }
                lastError = nil
            } catch let error as LabGaveUp {
                throw error
            } catch {
                lastError = error
            }
            usleep(useconds_t(interval * 1_000_000))
        } while Date() < deadline
        throw FixtureError("timed out after \(timeout) s waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
    }
}

/// Thrown by a wait's condition to stop waiting at once: what it waits for can no longer happen.
public struct LabGaveUp: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The suites whose skip was already reported.
private final class SkipReports: @unchecked Sendable {
    // @unchecked Sendable invariant: `suites` is only touched with `lock` held.
    static let shared = SkipReports()
    private let lock = NSLock()
    private var suites: Set<String> = []

    func firstReport(of suite: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return suites.insert(suite).inserted
    }
}
