@testable import FerryCatalog
import FerryTestSupport
import Foundation
import Testing

/// The encrypted blob format on real files: what a sealed blob reads back as at every chunk boundary, and that
/// every change to the file (a flipped byte, chunks swapped, cut short, a key file from another blob) is an error,
/// never other bytes.
@Suite("encrypted blobs")
struct EncryptedBlobTests {
    static let chunk = 4096

    static func store(_ key: EncryptionKey = .generate()) throws -> BlobStore {
        try BlobStore(dataDirectory: try Fixtures.temporaryDirectory().path, encryption: BlobEncryption(key: key, chunkSize: chunk))
    }

    static func bytes(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    /// Stores `data` in pieces of uneven sizes (as an upload arrives); returns its digest.
    @discardableResult
    static func put(_ data: [UInt8], in store: BlobStore) throws -> String {
        let upload = try store.beginUpload()
        var offset = 0
        var step = 1
        while offset < data.count {
            let n = min(step, data.count - offset)
            try data[offset..<offset + n].withUnsafeBytes { try upload.write($0) }
            offset += n
            step = step * 3 + 7
        }
        try store.commit(upload)
        return try upload.finish()
    }

    static func read(_ reader: BlobReader, _ offset: Int64, _ count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        try reader.stream(from: offset, limit: Int64(count), bufferSize: 1000) { out += $0 }
        return out
    }

    @Test("every size around the chunk size reads back whole and at each boundary; the digest is the plaintext's")
    func roundTrip() throws {
        let store = try Self.store()
        let c = Self.chunk
        for size in [0, 1, c - 1, c, c + 1, 2 * c, 3 * c + 17] {
            let data = Self.bytes(size, seed: UInt64(size) + 3)
            let digest = try Self.put(data, in: store)
            #expect(digest == SHA256Hex.of(data))
            let reader = try store.openReader(digest)
            #expect(reader.isSealed && reader.size == Int64(size))
            #expect(try Self.read(reader, 0, size + 10) == data)
            for offset in [0, c - 1, c, c + 1, 2 * c - 1, 2 * c, size - 1] where offset >= 0 && offset < size {
                for count in [1, 2, c, c + 1] {
                    #expect(try Self.read(reader, Int64(offset), count) == Array(data[offset..<min(size, offset + count)]),
                            "size \(size) offset \(offset) count \(count)")
                }
            }
            // The file holds no plaintext: not even a 32-byte window of it.
            let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: store.path(for: digest))))
            if size >= 64 { #expect(!Self.contains(stored, Array(data[16..<48]))) }
            #expect(stored.count == 32 + size + 16 * (size / c + 1))
        }
    }

    @Test("a flipped byte, swapped chunks, a cut at a chunk boundary or inside one, and another blob's key file are errors")
    func tamperingIsAnError() throws {
        let store = try Self.store()
        let c = Self.chunk
        let data = Self.bytes(5 * c + 100)
        let digest = try Self.put(data, in: store)
        let path = store.path(for: digest)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let sealed = c + 16

        func expectCorrupt(_ what: String, chunkToRead: Int = 2, _ change: (inout Data) -> Void) throws {
            var changed = original
            change(&changed)
            try changed.write(to: URL(fileURLWithPath: path))
            defer { try? original.write(to: URL(fileURLWithPath: path)) }
            do {
                let reader = try store.openReader(digest)
                _ = try Self.read(reader, Int64(chunkToRead * c), c)
                Issue.record("\(what): read without an error")
            } catch let error as CatalogError {
                #expect(error.code == .blobCorrupt, "\(what): \(error)")
            }
        }
        try expectCorrupt("a flipped byte") { $0[32 + 2 * sealed + 10] ^= 0x01 }
        try expectCorrupt("a flipped tag byte") { $0[32 + 3 * sealed - 1] ^= 0x80 }
        try expectCorrupt("a changed header") { $0[19] ^= 0x01 }
        try expectCorrupt("chunks 1 and 2 swapped") { data in
            let one = data[(32 + sealed)..<(32 + 2 * sealed)]
            let two = data[(32 + 2 * sealed)..<(32 + 3 * sealed)]
            data.replaceSubrange((32 + sealed)..<(32 + 3 * sealed), with: two + one)
        }
        try expectCorrupt("cut at a chunk boundary", chunkToRead: 4) { $0 = $0.prefix(32 + 5 * sealed) }
        try expectCorrupt("cut inside the last chunk", chunkToRead: 5) { $0 = $0.prefix($0.count - 5) }
        try expectCorrupt("the last chunk dropped", chunkToRead: 4) { $0 = $0.prefix(32 + 4 * sealed) + $0.suffix(116) }

        // Another blob's key: it does not open (the key file names its blob).
        let other = try Self.put(Self.bytes(100, seed: 9), in: store)
        let key = try Data(contentsOf: URL(fileURLWithPath: store.keyPath(for: digest)))
        try FileManager.default.removeItem(atPath: store.keyPath(for: digest))
        try FileManager.default.copyItem(atPath: store.keyPath(for: other), toPath: store.keyPath(for: digest))
        #expect(throws: CatalogError.self) { try store.openReader(digest) }
        // No key file at all: refused, never served as plaintext.
        try FileManager.default.removeItem(atPath: store.keyPath(for: digest))
        #expect { try store.openReader(digest) } throws: { ($0 as? CatalogError)?.code == .blobCorrupt }
        try key.write(to: URL(fileURLWithPath: store.keyPath(for: digest)))
        #expect(try Self.read(try store.openReader(digest), 0, data.count) == data)
    }

    @Test("another key is refused by id; a store without a key refuses sealed blobs; plain blobs stay readable")
    func keys() throws {
        let key = EncryptionKey.generate()
        let directory = try Fixtures.temporaryDirectory().path
        let plain = try BlobStore(dataDirectory: directory)
        let old = try Self.put(Self.bytes(10_000, seed: 5), in: plain)
        let sealedStore = try BlobStore(dataDirectory: directory, encryption: BlobEncryption(key: key, chunkSize: Self.chunk))
        let new = try Self.put(Self.bytes(10_000, seed: 6), in: sealedStore)
        #expect(try !sealedStore.openReader(old).isSealed, "a blob from before encryption is read as it is")
        #expect(try Self.read(try sealedStore.openReader(old), 0, 10_000) == Self.bytes(10_000, seed: 5))
        #expect { try plain.openReader(new) } throws: { ($0 as? CatalogError)?.code == .encryptionKeyRequired }
        let other = try BlobStore(dataDirectory: directory, encryption: BlobEncryption(key: .generate(), chunkSize: Self.chunk))
        #expect { try other.openReader(new) } throws: { ($0 as? CatalogError)?.code == .encryptionKeyMismatch }
        #expect { try StoreKeys.verify(dataDirectory: directory, key: nil, removingLeftovers: false) } throws: {
            ($0 as? CatalogError)?.code == .encryptionKeyRequired
        }
        #expect(try StoreKeys.verify(dataDirectory: directory, key: key, removingLeftovers: false).sealedBlobs == 1)
    }

    @Test("a key file round-trips, names its key, and refuses a damaged id or a wrong length")
    func keyFile() throws {
        let key = EncryptionKey.generate()
        let parsed = try EncryptionKey(fileText: key.fileText)
        #expect(parsed.id == key.id && parsed.id.count == 16)
        let damaged = key.fileText.replacingOccurrences(of: key.id, with: String(key.id.reversed()))
        #expect { try EncryptionKey(fileText: damaged) } throws: { ($0 as? CatalogError)?.code == .encryptionKeyInvalid }
        #expect { try EncryptionKey(fileText: "ferry-encryption-key:v1:00:AAAA\n") } throws: { ($0 as? CatalogError)?.code == .encryptionKeyInvalid }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        return haystack.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in glibcMemmem(h.baseAddress, h.count, n.baseAddress, n.count) != nil }
        }
    }
}

enum SHA256Hex {
    static func of(_ bytes: [UInt8]) -> String {
        let path = (try? Fixtures.write(bytes, name: "blob")) ?? "/dev/null"
        let result = try? Fixtures.run("/usr/bin/openssl", ["dgst", "-sha256", "-r", path])
        return String((result?.stdout ?? "").prefix(64))
    }
}

/// glibc's memmem, looked up at run time (Swift's Glibc module leaves out GNU extensions).
private let glibcMemmem: @convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?, Int) -> UnsafeMutableRawPointer? = {
    unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memmem")!,
                  to: (@convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?, Int) -> UnsafeMutableRawPointer?).self)
}()
