public import Foundation

/// Debian's headless Chromium, for tests that look at the web page as a person would, and the folder its
/// screenshots go to (`test-artifacts/`).
public enum Browser {
    public static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Runs Chromium headless with a fresh profile and `arguments` (`--dump-dom URL`, `--screenshot=FILE URL`).
    public static func run(_ arguments: [String]) throws -> ProcessResult {
        guard let chromium else { throw FixtureError("chromium is not installed (scripts/install-deps.sh --test installs it)") }
        let profile = try Fixtures.temporaryDirectory().path
        return try Fixtures.run(chromium, [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=\(profile)", "--window-size=1400,1100", "--virtual-time-budget=3000",
        ] + arguments)
    }

    public static var artifacts: URL {
        let url = Fixtures.repositoryRoot.appendingPathComponent("test-artifacts")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
