import FerryTestSupport
import FerryValidation
import Foundation
import Testing

/// `ferry validate` end to end: the real binary on real and hostile archives.
@Suite("ferry validate")
struct ValidateCommandTests {
    struct ArchiveReport: Decodable {
        var archive: String
        var findings: [Finding]
    }

    static func reports(_ result: ProcessResult) throws -> [ArchiveReport] {
        try JSONDecoder().decode([ArchiveReport].self, from: result.stdoutData)
    }

    static let hostileArchive: String = (try? Fixtures.write(
        HostileArchive.bytes(from: HostileArchive.podman, replacing: ["rootfs-diff.tar": HostileArchive.unsafeInnerTar]),
        name: "hostile.tar")) ?? "/nonexistent"

    /// Only a setuid file in the rootfs diff: a warning and nothing else.
    static let setuidArchive: String = (try? Fixtures.write(
        HostileArchive.bytes(from: HostileArchive.podman, replacing: ["rootfs-diff.tar": {
            var tar = TarBuilder()
            tar.file("usr/bin/passwd", "#!", mode: 0o4755)
            return tar.finished()
        }()]),
        name: "setuid.tar")) ?? "/nonexistent"

    static func targetFacts(_ json: String) throws -> String {
        try Fixtures.write(Array(json.utf8), name: "target.json")
    }

    @Test("a real archive passes with status 0 and a summary line")
    func aRealArchivePasses() throws {
        let path = Fixtures.archive(HostileArchive.crioName)
        let result = try Fixtures.ferry(["validate", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "\(path): 0 errors, 0 warnings, 0 infos (fit to restore)\n")
        #expect(result.stderr == "")
    }

    @Test("every real archive passes together, compressed ones included")
    func everyRealArchivePasses() throws {
        let result = try Fixtures.ferry(["validate", "--strict", "--format", "json"] + Fixtures.checkpointArchives.map(Fixtures.archive))
        #expect(result.status == 0, "\(result.stderr)")
        let reports = try Self.reports(result)
        #expect(reports.count == Fixtures.checkpointArchives.count)
        #expect(reports.allSatisfy { $0.findings.isEmpty })
    }

    @Test("a hostile archive fails with status 1 and its codes in the JSON")
    func aHostileArchiveFails() throws {
        let result = try Fixtures.ferry(["validate", "--format", "json", Self.hostileArchive])
        #expect(result.status == 1)
        let reports = try Self.reports(result)
        #expect(reports.map(\.archive) == [Self.hostileArchive])
        #expect(reports.first?.findings.map(\.code) == HostileArchive.unsafeInnerTarCodes.map(\.rawValue))
        #expect(reports.first?.findings.first?.path == "rootfs-diff.tar:../../etc/x")
        // Every finding has all five keys, null when absent.
        let raw = try JSONSerialization.jsonObject(with: result.stdoutData) as? [[String: Any]]
        let first = (raw?.first?["findings"] as? [[String: Any]])?.first
        #expect(first.map { Set($0.keys) } == ["code", "severity", "path", "message", "waiver"])
        #expect(first?["waiver"] is NSNull)
    }

    @Test("text output has one line per finding in the documented shape")
    func textOutputHasOneLinePerFinding() throws {
        let result = try Fixtures.ferry(["validate", Self.hostileArchive])
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == HostileArchive.unsafeInnerTarCodes.count + 1)
        #expect(lines.first == "error INNER_ENTRY_PATH_TRAVERSAL rootfs-diff.tar:../../etc/x: has a .. component and could land outside the root")
        #expect(lines[6] == "warning INNER_ENTRY_SETUID rootfs-diff.tar:usr/bin/su: has the setuid or setgid bit (waive with --allow-setuid)")
        #expect(lines.last == "\(Self.hostileArchive): 6 errors, 1 warning, 0 infos (not fit to restore)")
    }

    @Test("warnings pass with status 0, fail with 2 under --strict, and --allow-setuid waives the setuid one")
    func warningsFailOnlyWhenStrict() throws {
        let relaxed = try Fixtures.ferry(["validate", Self.setuidArchive])
        #expect(relaxed.status == 0)
        #expect(relaxed.stdout.hasPrefix("warning INNER_ENTRY_SETUID rootfs-diff.tar:usr/bin/passwd:"))
        let strict = try Fixtures.ferry(["validate", "--strict", Self.setuidArchive])
        #expect(strict.status == 2)
        let allowed = try Fixtures.ferry(["validate", "--strict", "--allow-setuid", Self.setuidArchive])
        #expect(allowed.status == 0)
        #expect(allowed.stdout.hasSuffix("0 errors, 0 warnings, 0 infos (fit to restore)\n"))
    }

    @Test("--target-facts with another architecture gives the error")
    func targetFactsWithAnotherArchitectureFail() throws {
        let facts = try Self.targetFacts(#"{"architecture": "arm64"}"#)
        let result = try Fixtures.ferry(["validate", "--format", "json", "--target-facts", facts, Fixtures.archive(HostileArchive.podmanName)])
        #expect(result.status == 1)
        #expect(try Self.reports(result).first?.findings.map(\.code) == ["ARCHITECTURE_MISMATCH"])
        let same = try Self.targetFacts(#"{"architecture": "amd64"}"#)
        #expect(try Fixtures.ferry(["validate", "--target-facts", same, Fixtures.archive(HostileArchive.podmanName)]).status == 0)
    }

    @Test("restore flags waive preflight findings")
    func restoreFlagsWaiveFindings() throws {
        let facts = try Self.targetFacts(#"{"ips_in_use": ["10.88.0.6"], "container_names": ["counter"]}"#)
        let archive = Fixtures.archive(HostileArchive.podmanName)
        let plain = try Fixtures.ferry(["validate", "--format", "json", "--target-facts", facts, archive])
        #expect(plain.status == 1)
        #expect(try Self.reports(plain).first?.findings.map(\.code) == ["CONTAINER_NAME_IN_USE", "STATIC_IP_IN_USE"])
        let ignoreIP = try Fixtures.ferry(["validate", "--format", "json", "--ignore-static-ip", "--target-facts", facts, archive])
        #expect(try Self.reports(ignoreIP).first?.findings.map(\.code) == ["CONTAINER_NAME_IN_USE"])
        let renamed = try Fixtures.ferry(["validate", "--name", "counter-2", "--target-facts", facts, archive])
        #expect(renamed.status == 0)
    }

    @Test("--tcp-established satisfies a checkpoint with established connections")
    func tcpEstablishedSatisfiesTheCheckpoint() throws {
        let facts = try Self.targetFacts("{}")
        let archive = Fixtures.archive("podman-tcp-established.tar")
        let without = try Fixtures.ferry(["validate", "--target-facts", facts, archive])
        #expect(without.status == 1)
        #expect(without.stdout.contains("error TCP_ESTABLISHED_FLAG_MISSING checkpoint:"))
        #expect(try Fixtures.ferry(["validate", "--tcp-established", "--target-facts", facts, archive]).status == 0)
    }

    @Test("an unreadable archive is reported like inspect does, and the others are still validated")
    func anUnreadableArchiveIsReportedLikeInspect() throws {
        var tar = TarBuilder()
        tar.file("README", "hello")
        let notACheckpoint = try Fixtures.write(tar.finished(), name: "plain.tar")
        let real = Fixtures.archive(HostileArchive.podmanName)
        let result = try Fixtures.ferry(["validate", notACheckpoint, real])
        #expect(result.status == 1)
        #expect(result.stderr == "ferry: \(notACheckpoint): checkpoint directory is missing in the archive [NOT_A_CHECKPOINT]\n")
        #expect(result.stdout == "\(real): 0 errors, 0 warnings, 0 infos (fit to restore)\n")
    }

    @Test("usage errors exit with 64", arguments: [
        ["validate"],
        ["validate", "--format", "yaml", "x.tar"],
        ["validate", "--target-facts", "/nonexistent/target.json", "x.tar"],
        ["validate", "--name", "", "x.tar"],
    ])
    func usageErrorsExitWith64(_ arguments: [String]) throws {
        #expect(try Fixtures.ferry(arguments).status == 64)
    }

    @Test("target facts that are not JSON are a usage error")
    func targetFactsThatAreNotJSONAreAUsageError() throws {
        let facts = try Self.targetFacts("architecture: amd64")
        let result = try Fixtures.ferry(["validate", "--target-facts", facts, Fixtures.archive(HostileArchive.podmanName)])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--target-facts"))
    }
}
