import CheckpointArchive
import FerryAPI
import FerryCatalog
import FerryValidation
import Foundation

/// The jobs a migration hands to agents, and the small reads of its record the transitions share.
extension MigrationMachine {
    // MARK: Jobs

    static func checkpointRequest(_ m: MigrationRecord) -> AgentJobRequest {
        AgentJobRequest(id: checkpointJobID(m), kind: .checkpoint, container: m.sourceContainer, options: storedOptions(m).checkpoint)
    }

    static func restoreRequest(_ m: MigrationRecord, _ env: Environment) -> AgentJobRequest {
        let options = storedOptions(m)
        let checkpoint = m.checkpointID.flatMap(env.checkpoint)
        let newName = options.restore["name"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let expected = checkpoint?.facts.map {
            ExpectedContainer(id: newName == nil ? $0.containerID : nil, name: newName ?? $0.containerName)
        }
        return AgentJobRequest(id: restoreJobID(m), kind: .restore, checkpoint: m.checkpointID, size: checkpoint?.size,
                               options: options.restore, expected: expected, prefetch: prefetchRequest(m))
    }

    /// The source's upload, as the target prefetches it: live migrations only, unless `cut_through` is false.
    static func prefetchRequest(_ m: MigrationRecord) -> PrefetchRequest? {
        guard let node = m.sourceNode, m.sourceContainer != nil, storedOptions(m).cutThrough != false else { return nil }
        return PrefetchRequest(node: node, upload: checkpointJobID(m))
    }

    /// The source restores its own archive as it was: same name and ID, TCP connections as they were dumped.
    static func rollbackRequest(_ m: MigrationRecord) -> AgentJobRequest {
        var options: [String: JSONScalar] = [:]
        if storedOptions(m).checkpoint["tcp_established"]?.boolValue == true { options["tcp_established"] = .bool(true) }
        return AgentJobRequest(id: rollbackJobID(m), kind: .rollback, checkpoint: m.checkpointID, container: m.sourceContainer,
                               options: options, sourceJob: checkpointJobID(m))
    }

    static func isCurrentJob(_ jobID: String, of m: MigrationRecord) -> Bool {
        switch m.state {
        case .checkpointing: jobID == checkpointJobID(m)
        case .transferring, .restoring: jobID == restoreJobID(m)
        case .rollingBack: jobID == rollbackJobID(m)
        default: false
        }
    }

    // MARK: Helpers

    static func storedOptions(_ m: MigrationRecord) -> MigrationOptions {
        (try? JSONDecoder().decode(MigrationOptions.self, from: Data(m.options.utf8))) ?? MigrationOptions()
    }

    static func restoreOptions(_ options: MigrationOptions) -> RestoreOptions {
        let data = (try? JSONEncoder().encode(options.restore)) ?? Data("{}".utf8)
        return (try? JSONDecoder().decode(RestoreOptions.self, from: data)) ?? RestoreOptions()
    }

    static func leaveRunning(_ m: MigrationRecord) -> Bool {
        storedOptions(m).checkpoint["leave_running"]?.boolValue == true
    }

    static func source(of m: MigrationRecord) -> MigrationRequest.Source? {
        guard let node = m.sourceNode, let container = m.sourceContainer else { return nil }
        return MigrationRequest.Source(node: node, container: container)
    }

    static func phases(_ m: MigrationRecord) -> [MigrationPhase] {
        (try? JSONDecoder().decode([MigrationPhase].self, from: Data(m.phases.utf8))) ?? []
    }

    static func addPhase(_ t: inout Transition, _ phase: MigrationPhase) {
        var all = phases(t.record).filter { $0.name != phase.name }
        all.append(phase)
        t.record.phases = encode(all) ?? "[]"
    }

    /// A job's phases, as the node that ran them timed them.
    static func mergePhases(_ t: inout Transition, _ jobPhases: [JobPhase], node: String) {
        for phase in jobPhases {
            let existing = phases(t.record).first { $0.name == phase.name }
            let merged = MigrationPhase(name: phase.name, node: node, startedAt: phase.startedAt, endedAt: phase.endedAt,
                                        durationMs: WireTime.milliseconds(from: phase.startedAt, to: phase.endedAt))
            if existing != merged { addPhase(&t, merged) }
        }
    }

    static func encode<T: Encodable>(_ value: T?) -> String? {
        guard let value, let data = try? JSONEncoder.wire.encode(value) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
