internal import Crypto
internal import Foundation

/// The layout of an encrypted blob: a 32-byte header, then the plaintext in fixed-size chunks, each sealed on its
/// own with AES-256-GCM under the blob's data key, so that any byte range is read by opening only the chunks it
/// touches, and a blob is written in one streaming pass.
///
/// Header: magic `\x89FRYBLB\n`, version 1, algorithm 1 (AES-256-GCM), two zero bytes, the chunk size (UInt32
/// big-endian), a 4-byte random nonce prefix, 12 zero bytes. Then chunk `i` is `ciphertext ‖ 16-byte tag`; every
/// chunk but the last holds exactly `chunkSize` bytes of plaintext, the last fewer (an archive of a whole number
/// of chunks ends with an empty last chunk), so the plaintext size follows from the file size.
///
/// Chunk `i`'s nonce is the prefix followed by `i` (UInt64 big-endian): never reused under one data key. Its
/// associated data is the whole header, `i` and a last-chunk flag, so reordered, swapped (between blobs: another
/// key) or dropped chunks, a changed header and a blob cut at a chunk boundary all fail to open.
struct SealedBlobFormat: Sendable {
    static let magic: [UInt8] = [0x89, 0x46, 0x52, 0x59, 0x42, 0x4C, 0x42, 0x0A]
    static let headerSize = 32
    static let tagSize = 16
    static let version: UInt8 = 1
    static let algorithmAES256GCM: UInt8 = 1

    let chunkSize: Int
    let noncePrefix: [UInt8]
    let header: [UInt8]

    /// A new blob's format, with a random nonce prefix.
    init(chunkSize: Int) {
        precondition(chunkSize >= 16 && chunkSize <= 1 << 24)
        self.chunkSize = chunkSize
        var prefix = [UInt8](repeating: 0, count: 4)
        var generator = SystemRandomNumberGenerator()
        for index in prefix.indices { prefix[index] = generator.next() }
        noncePrefix = prefix
        var header = Self.magic + [Self.version, Self.algorithmAES256GCM, 0, 0]
        header += withUnsafeBytes(of: UInt32(chunkSize).bigEndian, Array.init)
        header += prefix + [UInt8](repeating: 0, count: 12)
        self.header = header
    }

    /// Parses a stored header.
    /// - Throws: `BLOB_CORRUPT` for anything but a version 1 AES-256-GCM header.
    init(header bytes: [UInt8]) throws {
        guard bytes.count == Self.headerSize, Array(bytes[0..<8]) == Self.magic else {
            throw CatalogError(.blobCorrupt, "the blob has no encrypted-blob header")
        }
        guard bytes[8] == Self.version, bytes[9] == Self.algorithmAES256GCM, bytes[10] == 0, bytes[11] == 0,
              bytes[20..<32].allSatisfy({ $0 == 0 }) else {
            throw CatalogError(.blobCorrupt, "the blob's header names an unknown format (version \(bytes[8]), algorithm \(bytes[9]))")
        }
        let size = bytes[12..<16].reduce(0) { $0 << 8 | Int($1) }
        guard size >= 16 && size <= 1 << 24 else { throw CatalogError(.blobCorrupt, "the blob's chunk size \(size) is out of range") }
        chunkSize = size
        noncePrefix = Array(bytes[16..<20])
        header = bytes
    }

    static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.count >= 8 && Array(bytes.prefix(8)) == magic
    }

    var sealedChunkSize: Int { chunkSize + Self.tagSize }

    func nonce(_ index: UInt64) -> AES.GCM.Nonce {
        // 4 + 8 bytes: exactly the 96-bit nonce GCM is built for; cannot fail.
        try! AES.GCM.Nonce(data: noncePrefix + withUnsafeBytes(of: index.bigEndian, Array.init))
    }

    func associatedData(_ index: UInt64, last: Bool) -> [UInt8] {
        header + withUnsafeBytes(of: index.bigEndian, Array.init) + [last ? 1 : 0]
    }

    /// Where chunk `index` starts in the file.
    func fileOffset(ofChunk index: Int64) -> Int64 {
        Int64(Self.headerSize) + index * Int64(sealedChunkSize)
    }

    /// The plaintext size of a complete blob file of `fileSize` bytes, or nil when no complete blob has that size
    /// (cut short, or cut at a chunk boundary).
    func plaintextSize(fileSize: Int64) -> Int64? {
        let body = fileSize - Int64(Self.headerSize)
        guard body >= Int64(Self.tagSize) else { return nil }
        let full = body / Int64(sealedChunkSize)
        let rest = body % Int64(sealedChunkSize)
        guard rest >= Int64(Self.tagSize) else { return nil }
        return full * Int64(chunkSize) + rest - Int64(Self.tagSize)
    }
}

/// Seals plaintext into chunks as it arrives (``SealedBlobFormat``), handing the sealed bytes to `emit`.
/// Holds at most one chunk of plaintext. Used by one thread at a time.
struct ChunkSealer {
    let format: SealedBlobFormat
    let dataKey: SymmetricKey
    private var buffer: [UInt8] = []
    private(set) var chunksSealed: UInt64 = 0
    private(set) var finished = false

    init(format: SealedBlobFormat, dataKey: SymmetricKey) {
        self.format = format
        self.dataKey = dataKey
        buffer.reserveCapacity(format.chunkSize)
    }

    /// Plaintext bytes that are in sealed chunks already.
    var plaintextSealed: Int64 { Int64(chunksSealed) * Int64(format.chunkSize) }

    mutating func append(_ bytes: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var offset = 0
        while offset < bytes.count {
            let n = min(format.chunkSize - buffer.count, bytes.count - offset)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]))
            offset += n
            // A full chunk is sealed as not last: the last chunk is always short (possibly empty).
            if buffer.count == format.chunkSize { try seal(last: false, emit: emit) }
        }
    }

    /// Seals what is left as the last chunk.
    mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !finished else { return }
        try seal(last: true, emit: emit)
        finished = true
    }

    private mutating func seal(last: Bool, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let index = chunksSealed
        let box = try AES.GCM.seal(buffer, using: dataKey, nonce: format.nonce(index),
                                   authenticating: format.associatedData(index, last: last))
        try box.ciphertext.withUnsafeBytes(emit)
        try box.tag.withUnsafeBytes(emit)
        buffer.removeAll(keepingCapacity: true)
        chunksSealed += 1
    }
}
