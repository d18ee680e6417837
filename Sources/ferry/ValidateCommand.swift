import ArgumentParser
import CheckpointArchive
import FerryValidation
import Foundation

/// `ferry validate`: the archive rules for each archive, and with `--target-facts` the preflight for one target
/// node under the restore options given.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check checkpoint archives for what would make a restore unsafe or fail.",
        discussion: """
            Text output is one line per finding (`SEVERITY CODE path: message (waive with X)`) and a summary line \
            per archive; JSON is an array of {archive, findings}. The README lists every code.

            Exit status: 0 when no archive has an error finding (warnings are allowed unless --strict), 1 when one \
            has or an archive cannot be read (one line on stderr, as inspect reports it), 2 with --strict when \
            the worst finding is a warning, 64 for a usage error.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Argument(help: "Checkpoint archives to validate; `-` reads one from standard input.")
    var archives: [String]

    @Option(
        name: .customLong("target-facts"),
        help: "A JSON file describing a target node (architecture, criu_version, runtimes, kernel, cgroup_version, images, ips_in_use, macs_in_use, networks, container_names, container_ids): also check restoring there.")
    var targetFacts: String?

    @Option(help: "Output format: text or json.")
    var format: Format = .text

    @Flag(help: "Fail with status 2 when the worst finding is a warning.")
    var strict = false

    @Flag(name: .customLong("allow-setuid"), help: "Accept setuid/setgid files in inner tars without a warning.")
    var allowSetuid = false

    @Option(help: "Preflight: the restore will use this new container name (Podman drops the static IPs and MACs).")
    var name: String?

    @Flag(name: .customLong("ignore-static-ip"), help: "Preflight: the restore will not request the checkpointed IPs.")
    var ignoreStaticIP = false

    @Flag(name: .customLong("ignore-static-mac"), help: "Preflight: the restore will not request the checkpointed MACs.")
    var ignoreStaticMAC = false

    @Flag(name: .customLong("tcp-established"), help: "Preflight: the restore will restore established TCP connections.")
    var tcpEstablished = false

    @Flag(name: .customLong("tcp-close"), help: "Preflight: the restore will close established TCP connections.")
    var tcpClose = false

    func validate() throws {
        if let name, name.isEmpty { throw ValidationError("--name must not be empty.") }
        _ = try loadTargetFacts()
    }

    /// The facts file, decoded; a missing or malformed file is a usage error.
    private func loadTargetFacts() throws -> TargetFacts? {
        guard let targetFacts else { return nil }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: targetFacts))
        } catch {
            throw ValidationError("--target-facts \(targetFacts): cannot be read.")
        }
        do {
            return try JSONDecoder().decode(TargetFacts.self, from: data)
        } catch {
            throw ValidationError("--target-facts \(targetFacts): is not a JSON object of target facts (\(error)).")
        }
    }

    /// One archive's findings, as the JSON output holds them.
    struct ArchiveFindings: Encodable {
        var archive: String
        var findings: [Finding]
    }

    func run() throws {
        let target = try loadTargetFacts()
        var policy = ValidationPolicy()
        policy.allowSetuid = allowSetuid
        let restoreOptions = RestoreOptions(
            name: name, ignoreStaticIP: ignoreStaticIP, ignoreStaticMAC: ignoreStaticMAC,
            tcpEstablished: tcpEstablished, tcpClose: tcpClose)
        var readOptions = CheckpointReadOptions()
        // The rules need the inventory, process tree and sockets, never the argv and environment in memory.
        readOptions.readProcessMemory = false

        var reports: [ArchiveFindings] = []
        var unreadable = false
        for path in archives {
            let manifest: CheckpointManifest
            do {
                manifest = try ArchiveArguments.read(path, options: readOptions)
            } catch let failure as ArchiveFailure {
                failure.report()
                unreadable = true
                continue
            }
            var findings = ArchiveValidator.findings(for: manifest, policy: policy)
            if let target {
                findings += Preflight.findings(
                    checkpoint: CheckpointFacts(manifest: manifest), target: target, options: restoreOptions)
            }
            let name = path == ArchiveArguments.standardInput ? "standard input" : path
            reports.append(ArchiveFindings(archive: name, findings: findings))
        }

        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Output.write(String(decoding: try encoder.encode(reports), as: UTF8.self) + "\n")
        case .text:
            var text = ""
            for report in reports {
                for finding in report.findings { text += "\(finding)\n" }
                text += "\(report.archive): \(summary(of: report.findings))\n"
            }
            Output.write(text)
        }

        let all = reports.flatMap(\.findings)
        if unreadable || all.count(of: .error) > 0 { throw ExitCode.failure }
        if strict && all.count(of: .warning) > 0 { throw ExitCode(2) }
    }

    private func summary(of findings: [Finding]) -> String {
        let counts = Finding.Severity.allCases.map { severity in
            let count = findings.count(of: severity)
            return "\(count) \(severity.rawValue)\(count == 1 ? "" : "s")"
        }
        let verdict = findings.count(of: .error) > 0 ? "not fit to restore" : "fit to restore"
        return "\(counts.joined(separator: ", ")) (\(verdict))"
    }
}
