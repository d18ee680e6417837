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
        record = capped(record)
        record.validationState = validationState(findings)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        record.facts = String(decoding: try encoder.encode(CheckpointFacts(manifest: manifest)), as: UTF8.self)
        if let image = manifest.sourceImage {
            record.sourceImage = String(decoding: try encoder.encode(SourceImage(image)), as: UTF8.self)
        }
        return (record, inspection)
    }

    /// What a checkpoint image said about itself, bounded like the other catalog text.
    struct SourceImage: Encodable {
        var format: String
        var reference: String?
        var annotations: [String: String]

        static let maximumAnnotations = 64

        init(_ image: ImageArchive) {
            let cut = CheckpointRecordBuilder.cut
            format = image.format.rawValue
            reference = image.reference.map(cut)
            // Two long keys may cut to the same text: the first is kept.
            annotations = Dictionary(image.annotations.sorted { $0.key < $1.key }.prefix(Self.maximumAnnotations)
                .map { (cut($0.key), cut($0.value)) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// Longest text kept in a catalog column (a container or pod name, an image reference); the inspection keeps
    /// the whole value. Real names are at most 253 characters and image references a few hundred.
    static let maximumFieldCharacters = 1024
    /// Most addresses kept in the lists a list page shows.
    static let maximumAddresses = 64

    /// The record with its text fields and lists cut to the bounds above, so one list page stays small whatever
    /// the archives say (a page is at most 1000 rows of a few KiB).
    /// A text cut to ``maximumFieldCharacters``, the cut marked with `…`.
    static func cut(_ text: String) -> String {
        text.count <= maximumFieldCharacters ? text : String(text.prefix(maximumFieldCharacters - 1)) + "…"
    }

    static func capped(_ record: CheckpointRecord) -> CheckpointRecord {
        var record = record
        record.containerID = cut(record.containerID)
        record.containerName = cut(record.containerName)
        record.podName = record.podName.map(cut)
        record.podNamespace = record.podNamespace.map(cut)
        record.podUID = record.podUID.map(cut)
        record.sandboxID = record.sandboxID.map(cut)
        record.image = record.image.map(cut)
        record.imageID = record.imageID.map(cut)
        record.runtime = record.runtime.map(cut)
        record.created = record.created.map(cut)
        record.checkpointed = record.checkpointed.map(cut)
        record.ipAddresses = Array(record.ipAddresses.prefix(maximumAddresses).map(cut))
        record.macAddresses = Array(record.macAddresses.prefix(maximumAddresses).map(cut))
        return record
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
