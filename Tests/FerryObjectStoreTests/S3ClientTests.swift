import Crypto
import FerryTestSupport
import Foundation
import Testing
@testable import FerryObjectStore

/// The S3 client against a real S3-compatible server (moto's server mode) on loopback.
@Suite(.serialized) struct S3ClientTests {
    static func withStore(_ body: (S3Client) throws -> Void) throws {
        guard let moto = try MotoServer.start(suite: "S3ClientTests") else { return }
        defer { moto.stop() }
        try moto.createBucket("ferry-test")
        let configuration = try S3Configuration.parse(location: "s3://ferry-test/fleet", endpoint: moto.endpoint,
                                                      pathStyle: true, environment: MotoServer.environment)
        try body(S3Client(configuration: configuration))
    }

    @Test func anArchiveUploadedInPartsReadsBackWholeAndByRange() throws {
        try Self.withStore { s3 in
            let archive = try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive("podman-counter-zstd.tar.zst")))
            let temporary = s3.key("uploads", UUID().uuidString)
            let upload = try s3.createMultipartUpload(temporary)
            // Parts of 5 MiB at least, except the last; a small archive is one part.
            let etag = try s3.uploadPart(temporary, uploadID: upload, number: 1, data: archive)
            try s3.completeMultipartUpload(temporary, uploadID: upload, etags: [etag])
            let final = s3.key("blobs", "sha256", SHA256.hash(data: archive).map { String(format: "%02x", $0) }.joined())
            #expect(try s3.headObject(final) == nil)
            try s3.copyLarge(from: temporary, to: final, size: Int64(archive.count))
            try s3.deleteObject(temporary)
            #expect(try s3.headObject(final) == Int64(archive.count))
            #expect(try s3.getObjectData(final) == archive)
            var slice = Data()
            try s3.getObject(final, range: 100...1123) { slice.append(contentsOf: $0); return true }
            #expect(slice == archive[100...1123])
            #expect(try s3.listObjects(prefix: s3.key("blobs") + "/").map(\.key) == [final])
            #expect(try s3.listObjects(prefix: s3.key("uploads") + "/").isEmpty)
            try s3.deleteObject(final)
            #expect(try s3.headObject(final) == nil)
        }
    }

    @Test func anAbortedMultipartUploadLeavesNoObjectAndNoUpload() throws {
        try Self.withStore { s3 in
            let key = s3.key("uploads", UUID().uuidString)
            let upload = try s3.createMultipartUpload(key)
            _ = try s3.uploadPart(key, uploadID: upload, number: 1, data: Data(repeating: 7, count: 5 << 20))
            #expect(try s3.listMultipartUploads(prefix: s3.key("uploads")).map(\.uploadID) == [upload])
            try s3.abortMultipartUpload(key, uploadID: upload)
            #expect(try s3.listMultipartUploads(prefix: s3.key("uploads")).isEmpty)
            #expect(try s3.headObject(key) == nil)
        }
    }

    @Test func aListingLongerThanOnePageIsReadToTheEnd() throws {
        try Self.withStore { s3 in
            for index in 0..<1005 { try s3.putObject(s3.key("many", String(format: "%04d", index)), data: Data([1])) }
            #expect(try s3.listObjects(prefix: s3.key("many") + "/").count == 1005)
        }
    }

    @Test func aMissingKeyIsReportedAsNotFound() throws {
        try Self.withStore { s3 in
            do throws(S3Error) {
                _ = try s3.getObjectData(s3.key("absent"))
                Issue.record("a GET of a missing key succeeded")
            } catch {
                #expect(error.code == "S3_NOT_FOUND")
                #expect(error.status == 404)
            }
        }
    }
}

/// The streaming writer and the windowed reader, the two pieces a blob upload and a blob reader stand on.
@Suite(.serialized) struct S3StreamingTests {
    @Test func aStreamedUploadOfSeveralPartsReadsBackByteForByte() throws {
        try S3ClientTests.withStore { s3 in
            var bytes = [UInt8](repeating: 0, count: 11 << 20 + 12345)
            for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 9) }
            let writer = try S3MultipartWriter(client: s3, key: s3.key("uploads", "streamed"), partSize: 5 << 20)
            for start in stride(from: 0, to: bytes.count, by: 65536) {
                try bytes[start..<min(start + 65536, bytes.count)].withUnsafeBytes { try writer.write($0) }
            }
            try writer.finish()
            let reader = try S3ObjectReader(client: s3, key: writer.key, windowSize: 1 << 20)
            #expect(reader.size == Int64(bytes.count))
            var middle = [UInt8](repeating: 0, count: 3 << 20)
            let read = try middle.withUnsafeMutableBytes { try reader.readFully(at: 4 << 20, into: $0) }
            #expect(read == middle.count)
            #expect(middle == Array(bytes[(4 << 20)..<(7 << 20)]))
            var tail = [UInt8](repeating: 0, count: 100_000)
            let last = try tail.withUnsafeMutableBytes { try reader.readFully(at: Int64(bytes.count - 10), into: $0) }
            #expect(last == 10)
        }
    }

    @Test func aWriterDroppedBeforeFinishLeavesNoObjectAndNoUpload() throws {
        try S3ClientTests.withStore { s3 in
            let key = s3.key("uploads", "dropped")
            do {
                let writer = try S3MultipartWriter(client: s3, key: key, partSize: 5 << 20)
                let chunk = [UInt8](repeating: 9, count: 6 << 20)
                try chunk.withUnsafeBytes { try writer.write($0) }
                writer.abort()
            }
            #expect(try s3.listMultipartUploads(prefix: s3.key("uploads")).isEmpty)
            #expect(try s3.headObject(key) == nil)
        }
    }
}
