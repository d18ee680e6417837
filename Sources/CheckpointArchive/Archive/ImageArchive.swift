internal import Foundation

/// An OCI checkpoint image saved to a tar: `podman save --format oci-archive` or any tarred OCI image layout
/// (`oci-layout`, `index.json`, `blobs/sha256/…`), or `podman save --format docker-archive` (`manifest.json`, the
/// config, the layer tars). Its one layer is a checkpoint archive: Podman's `--create-image` and
/// `checkpointctl build` put the exported checkpoint's files at the layer's root, so the layer's bytes, as stored,
/// are what `podman container restore --import` takes.
public struct ImageArchive: Sendable, Equatable {
    public enum Format: String, Sendable {
        case ociLayout = "oci-archive"
        case dockerArchive = "docker-archive"
    }

    public var format: Format
    /// The tar entry holding the layer.
    public var layerEntry: String
    /// The layer's media type as the manifest gives it (OCI only).
    public var layerMediaType: String?
    /// The image's annotations: the manifest's, and the index entry's (`org.opencontainers.image.ref.name`). A
    /// docker-archive has none (its format has no annotations); its config's labels stand in.
    public var annotations: [String: String]
    /// The name the image was saved under, if any (`org.opencontainers.image.ref.name`, docker's `RepoTags`).
    public var reference: String?

    /// The small documents of an image kept while looking for its manifest: each at most 1 MiB, 256 in all.
    static let documentLimit = 1 << 20
    static let documentCount = 256

    /// Reads an image's index, manifests and configs in one pass over the tar at `path`. Nil when the tar is not an
    /// image (no `index.json` or `manifest.json` at its root).
    /// - Throws: `CheckpointError` `NOT_A_CHECKPOINT` for an image that is not a checkpoint image (not exactly one
    ///   layer, or its documents unreadable), and what reading the tar throws.
    public static func inspect(path: String) throws -> ImageArchive? {
        try inspect(source: FileDescriptorSource(path: path))
    }

    /// As ``inspect(path:)``, from any source (a decrypting blob reader).
    public static func inspect(source: any ByteSource) throws -> ImageArchive? {
        let reader = try ArchiveReader(source: source)
        var documents: [String: [UInt8]] = [:]
        while let entry = try reader.nextEntry() {
            guard entry.kind == .regular, entry.size <= Int64(documentLimit), documents.count < documentCount,
                  entry.isSafeRelativePath else { continue }
            let name = entry.path
            let wanted = name == "index.json" || name == "oci-layout" || name == "manifest.json"
                || name.hasPrefix("blobs/") || name.hasSuffix(".json")
            if wanted { documents[name] = try reader.readWhole(limit: documentLimit) }
        }
        if let index = documents["index.json"] { return try oci(index: index, documents: documents) }
        if let manifest = documents["manifest.json"] { return try docker(manifest: manifest, documents: documents) }
        return nil
    }

    /// Hands the layer's bytes, as stored in the tar, to `body` in order.
    public static func copyLayer(path: String, entry name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try copyLayer(source: FileDescriptorSource(path: path), entry: name, body)
    }

    /// As ``copyLayer(path:entry:_:)``, from any source.
    public static func copyLayer(source: any ByteSource, entry name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let reader = try ArchiveReader(source: source)
        while let entry = try reader.nextEntry() {
            guard entry.path == name, entry.kind == .regular else { continue }
            try reader.readData { block, _ in
                try body(block)
                return true
            }
            return
        }
        throw CheckpointError(.notACheckpoint, "the image's layer \(name) is missing from the archive")
    }

    private static func object(_ bytes: [UInt8]?, _ what: String) throws -> [String: Any] {
        guard let bytes, let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw CheckpointError(.notACheckpoint, "the image's \(what) is missing or not a JSON object")
        }
        return object
    }

    private static func blob(_ digest: Any?, in documents: [String: [UInt8]]) -> (String, [UInt8]?) {
        let text = digest as? String ?? ""
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == "sha256", parts[1].allSatisfy(\.isHexDigit) else { return ("", nil) }
        let name = "blobs/sha256/\(parts[1])"
        return (name, documents[name])
    }

    static let indexTypes: Set<String> = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]

    private static func oci(index indexBytes: [UInt8], documents: [String: [UInt8]]) throws -> ImageArchive {
        var index = try object(indexBytes, "index.json")
        var entry = (index["manifests"] as? [[String: Any]])?.first
        // An index inside the index (containerd's and some tools' layout): one level down.
        if let nested = entry, indexTypes.contains(nested["mediaType"] as? String ?? "") {
            index = try object(blob(nested["digest"], in: documents).1, "nested index")
            entry = (index["manifests"] as? [[String: Any]])?.first
        }
        guard let entry else { throw CheckpointError(.notACheckpoint, "the image's index lists no manifest") }
        let manifest = try object(blob(entry["digest"], in: documents).1, "manifest")
        let layers = manifest["layers"] as? [[String: Any]] ?? []
        guard layers.count == 1, let layer = layers.first else {
            throw CheckpointError(.notACheckpoint, "the image has \(layers.count) layers; a checkpoint image has one, the checkpoint")
        }
        let (layerEntry, _) = blob(layer["digest"], in: documents)
        guard !layerEntry.isEmpty else { throw CheckpointError(.notACheckpoint, "the image's layer has no sha256 digest") }
        var annotations = (index["annotations"] as? [String: String]) ?? [:]
        annotations.merge((entry["annotations"] as? [String: String]) ?? [:]) { _, new in new }
        annotations.merge((manifest["annotations"] as? [String: String]) ?? [:]) { _, new in new }
        return ImageArchive(format: .ociLayout, layerEntry: layerEntry, layerMediaType: layer["mediaType"] as? String,
                            annotations: annotations, reference: annotations["org.opencontainers.image.ref.name"])
    }

    private static func docker(manifest bytes: [UInt8], documents: [String: [UInt8]]) throws -> ImageArchive {
        guard let list = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [[String: Any]], let image = list.first else {
            throw CheckpointError(.notACheckpoint, "the image's manifest.json is not a list of images")
        }
        let layers = image["Layers"] as? [String] ?? []
        guard layers.count == 1, let layer = layers.first else {
            throw CheckpointError(.notACheckpoint, "the image has \(layers.count) layers; a checkpoint image has one, the checkpoint")
        }
        let config = (image["Config"] as? String).flatMap { documents[$0] }
            .flatMap { (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] }
        let labels = ((config?["config"] as? [String: Any])?["Labels"] as? [String: String]) ?? [:]
        return ImageArchive(format: .dockerArchive, layerEntry: layer, layerMediaType: nil, annotations: labels,
                            reference: (image["RepoTags"] as? [String])?.first)
    }
}
