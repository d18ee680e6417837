internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// Bounds and switches for reading a checkpoint archive.
public struct CheckpointReadOptions: Sendable {
    /// Decode `checkpoint/` (process tree, files, sockets, memory; argv and environment from the pages).
    public var decodeProcesses = true
    /// Read the argv and environment out of the memory pages (`--ps-tree-cmd`, `--ps-tree-env`).
    public var readProcessMemory = true
    /// Archives with more entries than this are refused (`TOO_MANY_ENTRIES`): a tar bomb of empty files.
    public var maxEntries = 1_000_000
    /// Entries of an inner tar (`rootfs-diff.tar`) counted before the summary gives up with an error.
    public var maxInnerEntries = 1_000_000
    /// Bound for one CRIU metadata image read whole (`core-*`, `mm-*`, `pagemap-*`, `files.img`, …).
    public var criuImageLimit = 64 << 20
    /// Bound for all CRIU metadata images together.
    public var criuImagesTotalLimit = 256 << 20
    /// Decompression bound for the archive and for inner tars (see ``ArchiveReader/expansionLimit``).
    public var expansionLimit: (ratio: Int64, allowance: Int64)? = (200, 1 << 30)

    public init() {}
}

/// Reads a checkpoint archive into a ``CheckpointManifest`` in one streaming pass.
///
/// Entries are handled as they arrive: JSON metadata and small CRIU images are read whole (each with a bound),
/// inner tars are summarised by a nested reader without extraction, memory pages are skipped except for the few
/// byte ranges that hold each process's argv and environment. Memory use does not grow with the archive size.
///
/// If a `pages-*.img` arrives before the `mm-*`/`pagemap-*` images that say which of its bytes are wanted (tar
/// order is not guaranteed), and the source can be opened again, a second pass reads only those pages images.
public enum CheckpointReader {
    /// Reads the archive at `path`.
    public static func read(path: String, options: CheckpointReadOptions = .init()) throws -> CheckpointManifest {
        try read(source: FileDescriptorSource(path: path), reopen: { try FileDescriptorSource(path: path) }, options: options)
    }

    /// Reads an archive from `source`. `reopen`, when given, yields the same bytes again for a second pass.
    public static func read(
        source: any ByteSource,
        reopen: (() throws -> any ByteSource)? = nil,
        options: CheckpointReadOptions = .init()
    ) throws -> CheckpointManifest {
        var scan = CheckpointScan(options: options)
        let reader = try ArchiveReader(source: source)
        reader.expansionLimit = options.expansionLimit
        while let entry = try reader.nextEntry() {
            try scan.handle(entry, reader: reader)
        }
        let trailing = try reader.trailingBytes()
        scan.finishFirstPass(compression: reader.compression, storedSize: reader.bytesRead, expandedSize: reader.bytesExpanded,
                             trailing: trailing)
        if !scan.deferredPagesImages.isEmpty, let reopen, options.readProcessMemory {
            let second = try ArchiveReader(source: try reopen())
            second.expansionLimit = options.expansionLimit
            while let entry = try second.nextEntry() {
                try scan.handleDeferredPages(entry, reader: second)
            }
        }
        return try scan.manifest()
    }

    /// Reads the file at `path` as a checkpoint archive or, failing that, as a saved checkpoint image
    /// (``ImageArchive``): its one layer is copied out to a private temporary file and read as the archive. Returns
    /// the image too, for its annotations.
    public static func readArchiveOrImage(path: String, options: CheckpointReadOptions = .init()) throws
        -> (manifest: CheckpointManifest, image: ImageArchive?) {
        do {
            return (try read(path: path, options: options), nil)
        } catch let error as CheckpointError where error.code == .notACheckpoint || error.code == .metadataMissing {
            guard let image = try? ImageArchive.inspect(path: path) else { throw error }
            let layer = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-layer-\(UUID().uuidString)").path
            let fd = open(layer, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw CheckpointError(.archiveReadFailed, "cannot create a temporary file for the image's layer") }
            defer { unlink(layer) }
            do {
                defer { close(fd) }
                try ImageArchive.copyLayer(path: path, entry: image.layerEntry) { block in
                    var offset = 0
                    while offset < block.count {
                        let written = write(fd, block.baseAddress! + offset, block.count - offset)
                        guard written > 0 else { throw CheckpointError(.archiveReadFailed, "cannot write the image's layer (disk full?)") }
                        offset += written
                    }
                }
            }
            var manifest = try read(path: layer, options: options)
            manifest.sourceImage = image
            return (manifest, image)
        }
    }

    /// Streams the entries of an inner tar (`rootfs-diff.tar`, `devshm-checkpoint.tar`, `volumes/x.tar`) of the
    /// archive at `path` to `body`, without extracting anything. Returns false if the inner tar is absent.
    @discardableResult
    public static func listEntries(
        ofInnerTar innerPath: String,
        inArchiveAt path: String,
        _ body: (ArchiveEntry) throws -> Void
    ) throws -> Bool {
        let reader = try ArchiveReader(path: path)
        while let entry = try reader.nextEntry() {
            guard entry.path == innerPath, entry.kind == .regular else { continue }
            let inner = try ArchiveReader(source: reader.currentEntrySource())
            while let innerEntry = try inner.nextEntry() { try body(innerEntry) }
            return true
        }
        return false
    }
}

/// The state of one read: what has been seen so far and what is still wanted.
struct CheckpointScan {
    let options: CheckpointReadOptions
    var entryCount = 0
    var rootEntries: [String] = []
    private var seenRoots: Set<String> = []
    /// Every path seen, to find duplicates. Bounded by `maxEntries` (a few hundred bytes each at worst).
    private var seenPaths: Set<String> = []
    var duplicateEntries: [String] = []
    var unsafePaths: [String] = []
    var specialEntries: [ArchiveFacts.SpecialEntry] = []
    private var symlinkPaths: Set<String> = []
    var pathsThroughSymlinks: [String] = []
    var expandedSize: Int64 = 0
    var hasCheckpointDirectory = false
    var jsonFiles: [String: [UInt8]] = [:]
    var statistics: DumpStatistics?
    var sizes = CheckpointSizes()
    var rootfsDiff: TarSummary?
    var devShm: TarSummary?
    var volumes: [String: TarSummary] = [:]
    var hasDumpLog = false
    var images = CRIUImageSet()
    var criuBytesHeld = 0
    var deferredPagesImages: Set<String> = []
    var compression = "none"
    var trailing = TrailingBytes(count: 0, allZero: true)
    var storedSize: Int64 = 0

    init(options: CheckpointReadOptions) { self.options = options }

    mutating func handle(_ entry: ArchiveEntry, reader: ArchiveReader) throws {
        entryCount += 1
        guard entryCount <= options.maxEntries else {
            throw CheckpointError(.tooManyEntries, "the archive has more than \(options.maxEntries) entries")
        }
        let path = entry.path.hasSuffix("/") ? String(entry.path.dropLast()) : entry.path
        let root = String(path.prefix { $0 != "/" })
        if !root.isEmpty, seenRoots.insert(root).inserted { rootEntries.append(root) }
        if !entry.isSafeRelativePath {
            // Never interpreted: a path that could land outside a directory it was extracted to.
            if unsafePaths.count < 100 { unsafePaths.append(entry.rawPath) }
            return
        }
        if !seenPaths.insert(path).inserted, duplicateEntries.count < 100 { duplicateEntries.append(path) }
        if !symlinkPaths.isEmpty {
            var prefix = ""
            for component in path.split(separator: "/").dropLast() {
                prefix += prefix.isEmpty ? String(component) : "/" + component
                if symlinkPaths.contains(prefix) {
                    if pathsThroughSymlinks.count < 100 { pathsThroughSymlinks.append(path) }
                    return
                }
            }
        }
        switch entry.kind {
        case .regular, .directory, .unknown:
            break
        default:
            if entry.kind == .symlink { symlinkPaths.insert(path) }
            if specialEntries.count < 100 {
                specialEntries.append(ArchiveFacts.SpecialEntry(path: path, kind: entry.kind, target: entry.linkTarget))
            }
            // Never interpreted as the engine file its name says.
            return
        }

        if path == CheckpointLayout.checkpointDirectory {
            if entry.kind == .directory { hasCheckpointDirectory = true }
            return
        }
        if path.hasPrefix(CheckpointLayout.checkpointDirectory + "/") {
            hasCheckpointDirectory = true
            try handleImage(String(path.dropFirst(CheckpointLayout.checkpointDirectory.count + 1)), entry: entry, reader: reader)
            return
        }
        guard entry.kind == .regular else { return }
        switch path {
        case _ where CheckpointLayout.jsonMetadataFiles.contains(path):
            jsonFiles[path] = try reader.readWhole(limit: CheckpointLayout.jsonMetadataLimit)
        case CheckpointLayout.statsDump:
            statistics = try DumpStatistics(statsDump: reader.readWhole(limit: CheckpointLayout.statsDumpLimit))
        case CheckpointLayout.rootfsDiff:
            rootfsDiff = try summarise(entry, reader: reader)
        case CheckpointLayout.devShm:
            devShm = try summarise(entry, reader: reader)
        case CheckpointLayout.dumpLog:
            hasDumpLog = true
        case _ where path.hasPrefix(CheckpointLayout.volumesDirectory + "/") && path.hasSuffix(".tar"):
            let name = String(path.dropFirst(CheckpointLayout.volumesDirectory.count + 1).dropLast(4))
            volumes[name] = try summarise(entry, reader: reader)
        default:
            break
        }
    }

    private mutating func handleImage(_ name: String, entry: ArchiveEntry, reader: ArchiveReader) throws {
        guard entry.kind == .regular, !name.contains("/") else { return }
        sizes.checkpoint += entry.size
        if name.hasPrefix("pages-") && name.hasSuffix(".img") {
            sizes.memoryPages += entry.size
            guard options.decodeProcesses, options.readProcessMemory else { return }
            if let ranges = images.wantedRanges(inPagesImage: name) {
                try collect(ranges, ofPagesImage: name, reader: reader)
            } else {
                deferredPagesImages.insert(name)
            }
        } else if name.hasPrefix("amdgpu-pages-") {
            sizes.amdGPUPages += entry.size
        } else if options.decodeProcesses && CRIUImageSet.readsWhole(name) {
            let bytes = try reader.readWhole(limit: options.criuImageLimit)
            criuBytesHeld += bytes.count
            guard criuBytesHeld <= options.criuImagesTotalLimit else {
                throw CheckpointError(
                    .entryTooLarge, "CRIU metadata images exceed the \(options.criuImagesTotalLimit)-byte bound",
                    entry: "checkpoint/\(name)")
            }
            try images.add(imageNamed: name, bytes: bytes)
        }
    }

    /// Streams a pages image, handing over only the bytes inside `ranges`, and stops reading after the last one.
    private mutating func collect(_ ranges: [Range<UInt64>], ofPagesImage name: String, reader: ArchiveReader) throws {
        let wanted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        guard let end = wanted.map(\.upperBound).max() else { return }
        if reader.currentEntryReadsInPlace {
            // A plain tar file: read just the wanted ranges where they lie; the next entry skips the rest.
            for range in wanted {
                try reader.readData(at: Int64(range.lowerBound), count: Int64(range.upperBound - range.lowerBound)) { block, offset in
                    self.images.addPageBytes(pagesImage: name, offset: UInt64(offset), bytes: block)
                }
            }
            return
        }
        try reader.readData { block, offset in
            let blockStart = UInt64(offset)
            let blockEnd = blockStart + UInt64(block.count)
            for range in wanted where range.lowerBound < blockEnd && range.upperBound > blockStart {
                let from = max(range.lowerBound, blockStart)
                let to = min(range.upperBound, blockEnd)
                let slice = UnsafeRawBufferPointer(rebasing: block[Int(from - blockStart)..<Int(to - blockStart)])
                self.images.addPageBytes(pagesImage: name, offset: from, bytes: slice)
            }
            return blockEnd < end
        }
    }

    mutating func handleDeferredPages(_ entry: ArchiveEntry, reader: ArchiveReader) throws {
        let prefix = CheckpointLayout.checkpointDirectory + "/"
        guard entry.kind == .regular, entry.path.hasPrefix(prefix) else { return }
        let name = String(entry.path.dropFirst(prefix.count))
        guard deferredPagesImages.contains(name), let ranges = images.wantedRanges(inPagesImage: name) else { return }
        try collect(ranges, ofPagesImage: name, reader: reader)
    }

    mutating func finishFirstPass(compression: String, storedSize: Int64, expandedSize: Int64, trailing: TrailingBytes) {
        self.trailing = trailing
        self.compression = compression
        self.storedSize = storedSize
        self.expandedSize = expandedSize
        // Only pages images that some process's page map points at are worth a second pass.
        deferredPagesImages = deferredPagesImages.filter { images.wantedRanges(inPagesImage: $0) != nil }
    }

    /// Counts an inner tar's entries through a nested reader. A broken inner tar is recorded, not thrown: the
    /// checkpoint is still inspectable, and validation turns the error into a finding.
    private func summarise(_ entry: ArchiveEntry, reader: ArchiveReader) throws -> TarSummary {
        var summary = TarSummary(
            size: entry.size, compression: "none", regularFiles: 0, directories: 0, otherEntries: 0, fileBytes: 0)
        guard entry.size > 0 else { return summary }
        do {
            let inner = try ArchiveReader(source: reader.currentEntrySource())
            inner.expansionLimit = options.expansionLimit
            var count = 0
            while let innerEntry = try inner.nextEntry() {
                count += 1
                guard count <= options.maxInnerEntries else {
                    throw CheckpointError(.tooManyEntries, "has more than \(options.maxInnerEntries) entries")
                }
                summary.compression = inner.compression
                let issues = InnerEntryIssue.check(innerEntry)
                summary.issueCount += issues.count
                for issue in issues where summary.issues.count < TarSummary.issueLimit { summary.issues.append(issue) }
                switch innerEntry.kind {
                case .regular:
                    summary.regularFiles += 1
                    summary.fileBytes += innerEntry.size
                case .directory: summary.directories += 1
                default: summary.otherEntries += 1
                }
            }
        } catch let error as CheckpointError {
            summary.error = "\(error.code): \(error.message)"
        }
        // Any other error came from the source itself (I/O, a client gone, a size limit): not the inner tar's fault.
        return summary
    }

    func manifest() throws -> CheckpointManifest {
        guard hasCheckpointDirectory else {
            throw CheckpointError(.notACheckpoint, "checkpoint directory is missing in the archive")
        }
        guard let configBytes = jsonFiles[CheckpointLayout.configDump] else {
            throw CheckpointError(.metadataMissing, "config.dump is missing in the archive")
        }
        guard let specBytes = jsonFiles[CheckpointLayout.specDump] else {
            throw CheckpointError(.metadataMissing, "spec.dump is missing in the archive")
        }
        let issues = LenientObject.IssueList()
        let config = ConfigDump(try LenientObject(bytes: configBytes, file: CheckpointLayout.configDump, issues: issues))
        let spec = try EngineMetadata.decode(SpecDump.self, from: specBytes, file: CheckpointLayout.specDump)
        let status = try jsonFiles[CheckpointLayout.statusDump].map {
            StatusDump(try LenientObject(bytes: $0, file: CheckpointLayout.statusDump, issues: issues))
        }
        // The internal status file is only a fallback for times: an unreadable one is an issue, not a refusal.
        let containerdStatus = jsonFiles[CheckpointLayout.containerdStatus].flatMap { bytes -> ContainerdStatus? in
            guard let object = try? LenientObject(bytes: bytes, file: CheckpointLayout.containerdStatus, issues: issues) else {
                issues.items.append(MetadataIssue(file: CheckpointLayout.containerdStatus, field: "", problem: "is not a JSON object"))
                return nil
            }
            return ContainerdStatus(object)
        }
        let annotations = spec.annotations ?? [:]
        let engine = ContainerEngine(containerManager: annotations[AnnotationKey.containerManager])

        var container = ContainerIdentity(
            id: config.id ?? status?.id ?? "",
            name: config.name ?? "",
            configName: config.name,
            image: config.rootfsImageName ?? status?.image,
            imageID: config.rootfsImageID ?? config.rootfsImageRef ?? status?.imageRef,
            imageRequested: config.rootfsImage ?? config.rawImageName,
            runtime: config.runtime,
            created: config.createdTime ?? status?.createdAt ?? containerdStatus?.createdAt,
            checkpointed: config.checkpointedTime.flatMap {
                EngineMetadata.isZeroTime($0) ? nil : EngineMetadata.rfc3339Seconds($0)
            },
            statusID: status?.id
        )
        var pod = PodIdentity()
        switch engine {
        case .podman:
            pod.sandboxID = annotations[AnnotationKey.crioSandboxID]
        case .crio:
            // checkpointctl takes the short name from the Metadata annotation and the creation time verbatim.
            if let metadata = annotations[AnnotationKey.crioMetadata] {
                struct Metadata: Decodable { var name: String? }
                let parsed = try EngineMetadata.decode(
                    Metadata.self, from: Array(metadata.utf8), file: "spec.dump annotation \(AnnotationKey.crioMetadata)")
                container.name = parsed.name ?? container.name
            }
            container.created = annotations[AnnotationKey.crioCreated] ?? container.created
            pod.name = annotations[AnnotationKey.podName]
            pod.namespace = annotations[AnnotationKey.podNamespace]
            pod.uid = annotations[AnnotationKey.podUID]
            pod.sandboxID = annotations[AnnotationKey.crioSandboxID]
        case .containerd:
            container.name = annotations[AnnotationKey.containerdContainerName] ?? status?.name ?? container.name
            pod.name = annotations[AnnotationKey.containerdSandboxName]
            pod.namespace = annotations[AnnotationKey.containerdSandboxNamespace]
            pod.uid = annotations[AnnotationKey.containerdSandboxUID]
            pod.sandboxID = annotations[AnnotationKey.containerdSandboxID]
        }

        let podIPs = annotations.keys
            .filter { $0.hasPrefix(AnnotationKey.crioIPPrefix) }
            .compactMap { key in Int(key.dropFirst(AnnotationKey.crioIPPrefix.count)).map { ($0, annotations[key]!) } }
            .sorted { $0.0 < $1.0 }
            .map(\.1)

        let networks = try jsonFiles[CheckpointLayout.networkStatus].map(EngineMetadata.networks(from:)) ?? []
        let deletedFiles = try jsonFiles[CheckpointLayout.deletedFiles].map {
            try EngineMetadata.decode([String].self, from: $0, file: CheckpointLayout.deletedFiles)
        } ?? []
        let bindMounts = try jsonFiles[CheckpointLayout.bindMounts].map {
            try EngineMetadata.decode([BindMount].self, from: $0, file: CheckpointLayout.bindMounts)
        } ?? []

        let criu = options.decodeProcesses ? try images.assemble() : nil

        var manifest = CheckpointManifest(
            archive: ArchiveFacts(
                compression: compression, storedSize: storedSize, entryCount: entryCount, rootEntries: rootEntries,
                duplicateEntries: duplicateEntries, unsafePaths: unsafePaths, specialEntries: specialEntries,
                pathsThroughSymlinks: pathsThroughSymlinks, expandedSize: expandedSize, trailing: trailing),
            engine: engine,
            container: container,
            pod: pod,
            annotations: annotations,
            networks: networks,
            podIPs: podIPs,
            mounts: spec.mounts ?? [],
            sizes: sizes,
            rootfsDiff: rootfsDiff,
            devShm: devShm,
            volumes: volumes,
            deletedFiles: deletedFiles,
            bindMounts: bindMounts,
            statistics: statistics,
            criu: criu,
            hasDumpLog: hasDumpLog,
            metadataIssues: issues.items,
            containerdState: status.map {
                CheckpointManifest.ContainerdState(state: $0.state, attempt: $0.attempt,
                                                   startedAt: $0.startedAt ?? containerdStatus?.startedAt, finishedAt: $0.finishedAt)
            }
        )
        manifest.resources = Self.resources(specBytes)
        return manifest
    }

    /// `linux.resources` of `spec.dump`, read leniently: a field of another type is left out, not a refusal.
    static func resources(_ specBytes: [UInt8]) -> ContainerResources? {
        let issues = LenientObject.IssueList()
        guard let spec = try? LenientObject(bytes: specBytes, file: CheckpointLayout.specDump, issues: issues),
              let resources = spec.object("linux")?.object("resources") else { return nil }
        let memory = resources.object("memory")
        let cpu = resources.object("cpu")
        let found = ContainerResources(
            memoryLimitBytes: memory?.integer("limit").flatMap { $0 > 0 ? $0 : nil },
            cpuQuota: cpu?.integer("quota").flatMap { $0 > 0 ? $0 : nil },
            cpuPeriod: cpu?.integer("period").flatMap { $0 > 0 ? $0 : nil },
            cpuShares: cpu?.integer("shares").flatMap { $0 > 0 ? $0 : nil })
        return found.isEmpty ? nil : found
    }
}
