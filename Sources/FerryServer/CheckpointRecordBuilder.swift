import CheckpointArchive
import FerryCatalog
import FerryInspect
import FerryValidation
import Foundation

/// Turns a read archive into its catalog row: the columns lists and filters need, plus the full inspection.
enum CheckpointRecordBuilder {
    static func record(
        for manifest: CheckpointManifest, digest: String, size: Int64, metadata: IngestMetadata, findings: [Finding]
    ) throws -> (record: CheckpointRecord, inspection: String) {
        let inspection = try InspectReport.object(manifest, sections: .all).serialized()
        var addresses = manifest.networks.flatMap(\.interfaces).flatMap(\.hostAddresses)
        addresses += manifest.podIPs
        var record = CheckpointRecord(
            id: digest,
            size: size,
            compression: manifest.archive.compression,
            engine: manifest.engine.rawValue,
            containerID: manifest.container.id,
            containerName: manifest.container.name,
            podName: manifest.pod.name,
            podNamespace: manifest.pod.namespace,
            podUID: manifest.pod.uid,
            sandboxID: manifest.pod.sandboxID,
            image: manifest.container.image,
            imageID: manifest.container.imageID,
            runtime: manifest.container.runtime,
            created: manifest.container.created,
            checkpointed: manifest.container.checkpointed,
            architecture: manifest.criu?.architecture?.description,
            ipAddresses: addresses,
            macAddresses: manifest.networks.flatMap(\.interfaces).compactMap(\.mac),
            checkpointSize: manifest.sizes.checkpoint,
            memoryPagesSize: manifest.sizes.memoryPages,
            rootfsDiffSize: manifest.rootfsDiff?.size,
            processCount: manifest.criu?.processes.count ?? 0,
            sourceNode: metadata.sourceNode,
            labels: metadata.labels,
            uploadedAt: Catalog.timestamp()
        )
        record.validationState = validationState(findings)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        record.facts = String(decoding: try encoder.encode(CheckpointFacts(manifest: manifest)), as: UTF8.self)
        return (record, inspection)
    }

    /// `errors` if any finding is an error, else `warnings` if any is a warning, else `clean`.
    static func validationState(_ findings: [Finding]) -> String {
        if findings.contains(where: { $0.severity == .error }) { return "errors" }
        if findings.contains(where: { $0.severity == .warning }) { return "warnings" }
        return "clean"
    }

    static func findingRecord(_ finding: Finding) -> FindingRecord {
        FindingRecord(
            code: finding.code, severity: finding.severity.rawValue, path: finding.path, message: finding.message,
            waiver: finding.waiver)
    }
}
