import FerryCatalog
import FerryHTTP

/// A stored blob as an HTTP response with the download semantics of ``HTTPResponse/file(path:request:etag:contentType:extraHeaders:lastModified:)``
/// (validators, 304, ranges): sent from the file with `sendfile` when it is a plain local file (every blob of a
/// local store without encryption takes exactly that path, as before), otherwise read through the blob's reader
/// as the connection takes it: decrypted chunk by chunk when sealed, streamed by ranged GETs from an object store.
enum BlobResponse {
    static func make(_ blobs: BlobStore, digest: String, path: String?, request: HTTPRequest, etag: String, contentType: String,
                     extraHeaders: [(String, String)]) -> HTTPResponse {
        // Without a key no blob is sealed (the start-up check refuses a store that has any).
        if blobs.encryption == nil, let path {
            return .file(path: path, request: request, etag: etag, contentType: contentType, extraHeaders: extraHeaders)
        }
        do {
            let reader = try blobs.openReader(digest)
            if !reader.isSealed, let path = reader.path {
                return .file(path: path, request: request, etag: etag, contentType: contentType, extraHeaders: extraHeaders)
            }
            guard let size = reader.size else { return .error(.internalError) }
            return .stream(reader: BlobBody(reader), size: size, modified: reader.modified, request: request, etag: etag,
                           contentType: contentType, extraHeaders: extraHeaders)
        } catch let error as CatalogError {
            return .error(CheckpointAPI.httpError(error))
        } catch {
            return .error(.internalError)
        }
    }
}

/// A blob reader as the body of a response.
final class BlobBody: HTTPBodyReader {
    let reader: BlobReader
    init(_ reader: BlobReader) { self.reader = reader }

    /// Fills as much of libmicrohttpd's buffer as there is (a read of the reader stops at its chunk's end), so
    /// a connection gets several chunks per call.
    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try reader.readFully(at: offset, into: buffer)
    }
}
