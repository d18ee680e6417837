import FerryValidation

/// Runs commands the operator gives as templates, for runtimes Ferry has no driver for (and for tests).
///
/// A template is split on spaces into argv — no shell, no quoting — and in each argument these placeholders are
/// replaced (unknown `{…}` text is left as it is; a value is never scanned for placeholders again):
///
/// | placeholder | restore job | checkpoint job |
/// | --- | --- | --- |
/// | `{archive}` | the downloaded, digest-checked archive | the archive to write (same as `{output}`) |
/// | `{output}` | – | the archive to write |
/// | `{name}` | the `name` option | – |
/// | `{container}` | the `name` option | the container to checkpoint |
/// | `{options_json}` | the job's options, compact JSON with sorted keys | the same |
/// | `{checkpoint}` | the checkpoint ID | – |
/// | `{job}` | the job ID | the job ID |
///
/// An argument that contained a placeholder and is empty after replacement is dropped (so `{name}` without a
/// name adds nothing), and "–" above means empty.
public struct CommandDriver: RuntimeDriver {
    public let name = "command"
    /// `--restore-command`, e.g. `/usr/local/bin/restore.sh {archive} {options_json}`.
    public let restoreTemplate: String?
    /// `--checkpoint-command`; without it checkpoint jobs are refused with `DRIVER_UNSUPPORTED`.
    public let checkpointTemplate: String?

    public init(restore: String?, checkpoint: String?) {
        self.restoreTemplate = restore
        self.checkpointTemplate = checkpoint
    }

    public func restoreCommand(archive: String, options: RuntimeRestoreOptions, job: JobContext) throws(AgentError) -> [String] {
        guard let restoreTemplate else {
            throw AgentError(.driverUnsupported, "the command driver was started without --restore-command")
        }
        let name = options.restore.name ?? ""
        return Self.expand(restoreTemplate, [
            "archive": archive, "output": "", "name": name, "container": name, "options_json": options.json,
            "checkpoint": job.checkpoint ?? "", "job": job.id,
        ])
    }

    public func checkpointCommand(container: String, output: String, options: CheckpointOptions,
                                  job: JobContext) throws(AgentError) -> [String] {
        guard let checkpointTemplate else {
            throw AgentError(.driverUnsupported, "the command driver was started without --checkpoint-command")
        }
        return Self.expand(checkpointTemplate, [
            "archive": output, "output": output, "name": "", "container": container, "options_json": options.json,
            "checkpoint": "", "job": job.id,
        ])
    }

    public var canCheckpoint: Bool { checkpointTemplate != nil }

    /// The argv of a template with its placeholders replaced by `values`.
    static func expand(_ template: String, _ values: [String: String]) -> [String] {
        template.split(separator: " ", omittingEmptySubsequences: true).compactMap { word in
            var result = ""
            var replaced = false
            var rest = word[...]
            while let open = rest.firstIndex(of: "{") {
                result += rest[..<open]
                guard let close = rest[open...].firstIndex(of: "}"),
                      let value = values[String(rest[rest.index(after: open)..<close])] else {
                    result.append("{")
                    rest = rest[rest.index(after: open)...]
                    continue
                }
                result += value
                replaced = true
                rest = rest[rest.index(after: close)...]
            }
            result += rest
            return replaced && result.isEmpty ? nil : result
        }
    }
}
