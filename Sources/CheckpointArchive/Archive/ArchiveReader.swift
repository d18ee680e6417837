internal import CArchive

/// What follows the end of an archive in its file or upload: the decompressor (or, uncompressed, the tar reader)
/// never used these bytes, so no engine sees them, but they are stored with the archive.
public struct TrailingBytes: Sendable, Equatable {
    public var count: Int64
    /// Whether every byte is zero (tar pads its last record with zeros).
    public var allZero: Bool

    /// tar's default record: writers pad the archive with zeros to a multiple of it.
    static let tarRecordBytes = 10240

    public init(count: Int64, allZero: Bool) {
        self.count = count
        self.allZero = allZero
    }
}

/// One entry header of a tar archive, copied out of libarchive so it outlives the next header.
public struct ArchiveEntry: Sendable, Equatable {
    /// What kind of file system object an entry describes.
    public enum Kind: String, Sendable {
        case regular, directory, symlink, hardlink, characterDevice, blockDevice, fifo, socket, unknown
    }

    /// The path as stored, with a leading `./` removed. Never trusted: see ``ArchiveEntry/isSafeRelativePath``.
    public var path: String
    /// The path exactly as the archive stores it.
    public var rawPath: String
    public var kind: Kind
    /// Size of the entry's data in bytes (0 for anything but regular files).
    public var size: Int64
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    public var permissions: UInt32
    /// Target of a symbolic link or hard link.
    public var linkTarget: String?

    /// True when the path is relative and has no `..` component: safe to join under a root directory.
    public var isSafeRelativePath: Bool {
        !rawPath.hasPrefix("/") && !rawPath.split(separator: "/").contains("..")
    }
}

/// Streams a tar archive (plain, gzip, zstd, xz, bzip2, lz4: recognised by content, never by name) one entry
/// at a time through libarchive. Owns the `struct archive *` and frees it exactly once in `deinit`.
///
/// Memory stays bounded whatever the archive size: entry data is handed over in libarchive's blocks and never
/// collected unless the caller asks for an entry whole (with a size bound).
///
/// Not thread-safe: one thread drives a reader from open to end. Do not drive it on the Swift concurrency pool;
/// its calls block.
public final class ArchiveReader {
    /// Which compression libarchive found, e.g. `zstd`, `gzip`, `none`.
    public private(set) var compression: String = "none"

    private let handle: OpaquePointer
    private let context: SourceContext
    private var opened = false
    private var headerSeen = false
    private var currentEntry: ArchiveEntry?

    /// Reads the archive at `path`.
    public convenience init(path: String) throws {
        try self.init(source: FileDescriptorSource(path: path))
    }

    /// Reads an archive whose bytes come from `source`. With `rawStream`, the tar is not parsed: the one entry is the
    /// whole decompressed stream (for the digest of the uncompressed tar, an image layer's diff_id).
    public init(source: any ByteSource, rawStream: Bool = false) throws {
        guard let handle = archive_read_new() else {
            throw CheckpointError(.archiveReadFailed, "libarchive could not allocate a reader")
        }
        self.handle = handle
        self.context = SourceContext(source: source)
        // Tar only: a checkpoint is always a tar stream, and refusing zip, cpio and friends keeps the attack
        // surface to the one format parser we need.
        archive_read_support_filter_all(handle)
        if rawStream {
            archive_read_support_format_raw(handle)
        } else {
            archive_read_support_format_tar(handle)
            archive_read_support_format_gnutar(handle)
        }

        // The context is retained by `self.context` for the reader's whole life; libarchive only borrows it.
        let unmanaged = Unmanaged.passUnretained(context).toOpaque()
        archive_read_set_callback_data(handle, unmanaged)
        archive_read_set_read_callback(handle) { archive, clientData, bufferOut in
            let context = Unmanaged<SourceContext>.fromOpaque(clientData!).takeUnretainedValue()
            do {
                if let limit = context.expansionLimit, let archive {
                    let expanded = archive_filter_bytes(archive, 0)
                    if expanded > limit.allowance + limit.ratio * max(context.bytesRead, 1) {
                        throw CheckpointError(
                            .decompressionBomb,
                            "\(context.bytesRead) bytes expand to more than \(expanded): over the \(limit.ratio):1 bound")
                    }
                }
                let chunk = try context.source.nextChunk()
                bufferOut?.pointee = chunk.baseAddress.map { UnsafeRawPointer($0) }
                context.bytesRead += Int64(chunk.count)
                context.lastChunk = chunk
                return chunk.count
            } catch {
                context.error = error
                return -1
            }
        }
        archive_read_set_skip_callback(handle) { _, clientData, request in
            let context = Unmanaged<SourceContext>.fromOpaque(clientData!).takeUnretainedValue()
            do {
                let skipped = try context.source.skip(request)
                context.bytesRead += skipped
                context.lastChunk = UnsafeRawBufferPointer(start: nil, count: 0)
                return skipped
            } catch {
                context.error = error
                return -1
            }
        }
        let status = archive_read_open1(handle)
        guard status == ARCHIVE_OK else {
            let error = translateError(status: status)
            // archive_read_free must run on this path too: deinit does not run for a failed initialiser.
            archive_read_free(handle)
            throw error
        }
        opened = true
    }

    deinit {
        if opened { archive_read_free(handle) }
    }

    /// Refuses to go on (`DECOMPRESSION_BOMB`) once the decompressed bytes exceed `allowance` plus `ratio` times
    /// the compressed bytes read. Real checkpoints (memory pages, mostly code and heap) stay far below 200:1 past
    /// their first GiB; bombs of zeros do not (gzip reaches about 1030:1, zstd far more). The check runs each time
    /// libarchive asks for input, so what one 64 KiB chunk expands to (2 GiB at most, for zstd) passes first.
    /// Nil: no bound.
    public var expansionLimit: (ratio: Int64, allowance: Int64)? {
        get { context.expansionLimit }
        set { context.expansionLimit = newValue }
    }

    /// Bytes taken from the source so far (compressed size when the archive is compressed).
    public var bytesRead: Int64 { context.bytesRead }

    /// Bytes of the source the decompressor (or, uncompressed, the tar reader) has used so far: at the end of the
    /// archive, whatever the source holds past this is not part of the archive.
    public var bytesConsumed: Int64 { archive_filter_bytes(handle, -1) }

    /// Hands the decompressed bytes of the archive at `path` to `body` in order (the tar stream itself, padding
    /// included: what an image layer's diff_id is the digest of).
    public static func decompressedStream(path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try decompressedStream(source: FileDescriptorSource(path: path), body)
    }

    /// As ``decompressedStream(path:_:)``, from any source (a decrypting blob reader).
    public static func decompressedStream(source: any ByteSource, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let reader = try ArchiveReader(source: source, rawStream: true)
        guard try reader.nextEntry() != nil else { return }
        try reader.readData { block, _ in
            try body(block)
            return true
        }
    }

    /// What the source holds after the end of the archive. Call once ``nextEntry()`` has returned nil: it reads the
    /// source to its end (an upload is taken whole either way).
    public func trailingBytes() throws -> TrailingBytes {
        let consumed = bytesConsumed
        let readButUnused = max(context.bytesRead - consumed, 0)
        let visible = min(readButUnused, Int64(context.lastChunk.count))
        var allZero = context.lastChunk.suffix(Int(visible)).allSatisfy { $0 == 0 }
        // libarchive may hold bytes of earlier chunks it read ahead; those are not seen again. Fewer than a tar
        // record (the zero padding tar writes after the end marker) count as padding.
        if readButUnused - visible >= Int64(TrailingBytes.tarRecordBytes) { allZero = false }
        var count = readButUnused
        while true {
            let chunk = try context.source.nextChunk()
            if chunk.isEmpty { break }
            count += Int64(chunk.count)
            context.bytesRead += Int64(chunk.count)
            if allZero && chunk.contains(where: { $0 != 0 }) { allZero = false }
        }
        context.lastChunk = UnsafeRawBufferPointer(start: nil, count: 0)
        return TrailingBytes(count: count, allZero: allZero)
    }

    /// Bytes produced by decompression so far (equal to `bytesRead` for an uncompressed archive).
    public var bytesExpanded: Int64 { archive_filter_bytes(handle, 0) }

    /// The next entry header, or nil at the end of the archive. Unread data of the previous entry is skipped.
    public func nextEntry() throws -> ArchiveEntry? {
        var entryPointer: OpaquePointer?
        let status = archive_read_next_header(handle, &entryPointer)
        if status == ARCHIVE_EOF {
            if !headerSeen && context.bytesRead == 0 {
                throw CheckpointError(.archiveEmpty, "the archive is empty")
            }
            currentEntry = nil
            return nil
        }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entryPointer else {
            throw translateError(status: status)
        }
        if !headerSeen {
            headerSeen = true
            if let name = archive_filter_name(handle, 0) {
                let filter = String(cString: name)
                compression = filter == "none" ? "none" : filter
            }
        }
        let entry = Self.copyEntry(entryPointer)
        currentEntry = entry
        // Uncompressed, what the tar reader has consumed is the file offset: the header is behind, the data next.
        let inPlace = compression == "none" && archive_entry_sparse_count(entryPointer) == 0 && context.source.readsAtOffsets
        entryDataOffset = inPlace ? bytesConsumed : nil
        return entry
    }

    /// Where the current entry's data begins in the source, when it can be read in place (``readData(at:count:_:)``):
    /// an uncompressed archive whose source reads at offsets (a file), and an entry stored whole (not sparse).
    private var entryDataOffset: Int64?

    /// True when the current entry's data can be read in place with ``readData(at:count:_:)``.
    public var currentEntryReadsInPlace: Bool { entryDataOffset != nil }

    /// Hands `count` bytes of the current entry's data from `offset` on to `body`, read in place from the source
    /// without streaming the bytes before them (memory pages of a plain tar: a few KiB of stack behind a GiB of
    /// heap). Only when ``currentEntryReadsInPlace``. The stream does not move: the next ``nextEntry()`` skips the
    /// entry as usual (and, the file being shorter than its tar header says, reports the truncation).
    public func readData(at offset: Int64, count: Int64, _ body: (_ block: UnsafeRawBufferPointer, _ offset: Int64) throws -> Void) throws {
        guard let start = entryDataOffset, let size = currentEntry?.size, offset >= 0, count >= 0 else {
            throw CheckpointError(.archiveReadFailed, "the entry cannot be read in place", entry: currentEntry?.path)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        var position = offset
        let end = min(offset + count, size)
        while position < end {
            let wanted = Int(min(Int64(buffer.count), end - position))
            let read = try context.source.positionalRead(at: start + position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]))
            guard read > 0 else { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<read]), position)
            position += Int64(read)
        }
    }

    /// Hands the current entry's data to `body` block by block, in order, with each block's offset in the entry.
    /// `body` returns false to stop early (the rest is skipped by the next `nextEntry`).
    public func readData(_ body: (_ block: UnsafeRawBufferPointer, _ offset: Int64) throws -> Bool) throws {
        while true {
            var buffer: UnsafeRawPointer?
            var size = 0
            var offset: Int64 = 0
            let status = archive_read_data_block(handle, &buffer, &size, &offset)
            if status == ARCHIVE_EOF { return }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw translateError(status: status) }
            guard size > 0 else { continue }
            if try !body(UnsafeRawBufferPointer(start: buffer, count: size), offset) { return }
        }
    }

    /// The current entry's data whole. Throws `ENTRY_TOO_LARGE` past `limit` bytes, without reading further.
    public func readWhole(limit: Int) throws -> [UInt8] {
        let name = currentEntry?.path ?? "entry"
        if let size = currentEntry?.size, size > Int64(limit) {
            throw CheckpointError(.entryTooLarge, "is \(size) bytes, more than the \(limit)-byte bound", entry: name)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(currentEntry?.size ?? 0))
        try readData { block, _ in
            guard bytes.count + block.count <= limit else {
                throw CheckpointError(.entryTooLarge, "holds more than the \(limit)-byte bound", entry: name)
            }
            bytes.append(contentsOf: block)
            return true
        }
        return bytes
    }

    /// A source that yields the current entry's data, so that a tar inside the tar (`rootfs-diff.tar`) can be read
    /// by a nested ``ArchiveReader`` without extracting it. Valid until the next `nextEntry` call.
    public func currentEntrySource() -> any ByteSource {
        EntryDataSource(reader: self)
    }

    /// The error to throw for a failed libarchive call. An error the source raised (an I/O error, a client that went
    /// away, an upload over its size limit) is passed on unchanged, so callers can tell it from a bad archive.
    private func translateError(status: Int32) -> any Error {
        if let sourceError = context.error { return sourceError }
        if context.bytesRead == 0 { return CheckpointError(.archiveEmpty, "the archive is empty") }
        let text = archive_error_string(handle).map { String(cString: $0) } ?? "unknown libarchive error (\(status))"
        let lowered = text.lowercased()
        if lowered.contains("truncated") || lowered.contains("premature end") || lowered.contains("unexpected eof") {
            return CheckpointError(.archiveTruncated, "the archive is truncated", underlying: text)
        }
        if lowered.contains("unrecognized archive format") {
            return CheckpointError(.archiveCorrupt, "not a tar archive (plain, gzip, zstd, xz or bzip2)", underlying: text)
        }
        return CheckpointError(.archiveCorrupt, "the archive is corrupt: \(text)", underlying: text)
    }

    private static func copyEntry(_ entry: OpaquePointer) -> ArchiveEntry {
        let rawPath = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        let hardlink = archive_entry_hardlink(entry).map { String(cString: $0) }
        let symlink = archive_entry_symlink(entry).map { String(cString: $0) }
        let fileType = UInt32(archive_entry_filetype(entry))
        let kind: ArchiveEntry.Kind
        if hardlink != nil {
            kind = .hardlink
        } else {
            switch fileType {
            case ferry_ae_ifreg(): kind = .regular
            case ferry_ae_ifdir(): kind = .directory
            case ferry_ae_iflnk(): kind = .symlink
            case ferry_ae_ifchr(): kind = .characterDevice
            case ferry_ae_ifblk(): kind = .blockDevice
            case ferry_ae_ififo(): kind = .fifo
            case ferry_ae_ifsock(): kind = .socket
            default: kind = .unknown
            }
        }
        var path = rawPath
        while path.hasPrefix("./") { path.removeFirst(2) }
        return ArchiveEntry(
            path: path,
            rawPath: rawPath,
            kind: kind,
            size: kind == .regular ? archive_entry_size(entry) : 0,
            permissions: UInt32(archive_entry_perm(entry)) & 0o7777,
            linkTarget: hardlink ?? symlink
        )
    }
}

/// The callback context libarchive borrows: the source and the first error it raised (libarchive itself only
/// sees -1). Touched only by the thread driving the reader.
private final class SourceContext {
    let source: any ByteSource
    var error: (any Error)?
    var bytesRead: Int64 = 0
    /// The source's last chunk, still valid (nothing is asked of the source after it until the next read).
    var lastChunk = UnsafeRawBufferPointer(start: nil, count: 0)
    var expansionLimit: (ratio: Int64, allowance: Int64)?
    init(source: any ByteSource) { self.source = source }
}

/// Hands out one entry's data blocks as a ``ByteSource``, zero-copy: libarchive's block pointer is passed on.
private final class EntryDataSource: ByteSource {
    private let reader: ArchiveReader
    private var finished = false
    init(reader: ArchiveReader) { self.reader = reader }

    func nextChunk() throws -> UnsafeRawBufferPointer {
        guard !finished else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        var chunk = UnsafeRawBufferPointer(start: nil, count: 0)
        try reader.readData { block, _ in
            chunk = block
            return false
        }
        if chunk.isEmpty { finished = true }
        return chunk
    }
}
