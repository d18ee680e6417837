import FerryAPI
import CheckpointArchive
import Crypto
import FerryCatalog
import FerryHTTP
import Foundation

/// The registry view at `/v2/`: OCI distribution-spec v1.1 Pull and tag listing, read-only. Every catalogued
/// plain, gzip or zstd archive is a checkpoint image (``CheckpointImage``) in the repository ``OCIName`` gives it,
/// tagged with its short ID, the newest of each repository also `latest`. The layer is the stored archive itself,
/// byte for byte; the manifest and config are built from the catalog row (so they are the same on every pull).
///
/// Errors are the spec's shape (`{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`), not the REST API's.
/// Authentication: with tokens configured, a Ferry token with the `read` role as a bearer token or as the password
/// of HTTP Basic (`podman login`, `skopeo --creds`; the user name is ignored); without one, 401 with
/// `WWW-Authenticate: Basic`.
struct RegistryAPI: Sendable {
    let api: CheckpointAPI
    var context: FerryServiceContext { api.context }

    func register(in router: inout Router) {
        router.addPrefix("GET", "/v2", fromMemory: { request, parameters in cachedBlob(request, path: parameters["path"] ?? "") }) { request, parameters, _ in
            respond { try pull(request, path: parameters["path"] ?? "") }
        }
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            router.addPrefix(method, "/v2") { request, _, _ in
                respond {
                    try authorize(request)
                    throw RegistryError(.unsupported, "Ferry's registry is read-only: checkpoints come in through POST /api/v1/checkpoints")
                }
            }
        }
    }

    /// Runs a handler, turning its failures into the registry's error shape.
    private func respond(_ body: () throws -> HTTPResponse) -> HTTPResponse {
        do {
            return try body()
        } catch let error as RegistryError {
            return error.response
        } catch let error as CatalogError where error.code == .checkpointNotFound {
            return RegistryError(.manifestUnknown, error.message).response
        } catch {
            context.log("registry: \(error)")
            return RegistryError(.unknown, "the registry failed; the service log says why").response
        }
    }

    private func authorize(_ request: HTTPRequest) throws {
        guard !context.tokens.isEmpty else { return }
        guard let header = request.header("authorization") else {
            throw RegistryError(.unauthorized, "sign in with a Ferry token (as the password, or as a bearer token)")
        }
        var bearer = header
        if header.lowercased().hasPrefix("basic ") {
            let encoded = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
            guard let decoded = Data(base64Encoded: encoded).map({ String(decoding: $0, as: UTF8.self) }),
                  let colon = decoded.firstIndex(of: ":") else {
                throw RegistryError(.unauthorized, "the Basic credentials are malformed")
            }
            bearer = "Bearer " + decoded[decoded.index(after: colon)...]
        }
        guard let identity = context.tokens.identity(forAuthorization: bearer) else {
            throw RegistryError(.unauthorized, "the token is not valid")
        }
        guard identity.role.allows(.read) else {
            throw RegistryError(.denied, "a \(identity.role.rawValue) token may not pull")
        }
    }

    // MARK: Pull

    private func pull(_ request: HTTPRequest, path: String) throws -> HTTPResponse {
        try authorize(request)
        let segments = path.split(separator: "/").map(String.init)
        if segments.isEmpty {
            return HTTPResponse(status: 200, headers: [("Content-Type", "application/json"), Self.apiVersion], body: .bytes(Array("{}".utf8)))
        }
        guard segments.count >= 3 else { throw RegistryError(.nameUnknown, "no repository at /v2/\(path.prefix(200))") }
        let name = segments.dropLast(2).joined(separator: "/")
        let (kind, reference) = (segments[segments.count - 2], segments[segments.count - 1])
        guard OCIName.isValidRepository(name) else { throw RegistryError(.nameInvalid, "\(name.prefix(200)) is not a repository name") }
        switch (kind, reference) {
        case ("tags", "list"): return try tags(request, repository: name)
        case ("manifests", _): return try manifest(request, repository: name, reference: reference)
        case ("blobs", _): return try blob(request, repository: name, digest: reference)
        case ("referrers", _):
            // No checkpoint has referrers: an empty index, as the spec asks of a registry that supports the API.
            _ = try repositoryCheckpoints(name)
            let empty = #"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#
            return HTTPResponse(status: 200, headers: [("Content-Type", CheckpointImage.indexMediaType), Self.apiVersion],
                                body: .bytes(Array(empty.utf8)))
        default:
            throw RegistryError(.nameUnknown, "no repository at /v2/\(path.prefix(200))")
        }
    }

    /// The servable checkpoints of a repository, newest first; NAME_UNKNOWN when it has none.
    private func repositoryCheckpoints(_ name: String) throws -> [CheckpointRecord] {
        let records = try context.catalog.imageCheckpoints(repository: name)
        guard !records.isEmpty else { throw RegistryError(.nameUnknown, "no checkpoint images in \(name)") }
        return records
    }

    private func tags(_ request: HTTPRequest, repository: String) throws -> HTTPResponse {
        let records = try repositoryCheckpoints(repository)
        var tags = (["latest"] + records.map { OCIName.tag(of: $0.id) }).sorted()
        if let last = request.query["last"], !last.isEmpty { tags = tags.filter { $0 > last } }
        var headers: [(String, String)] = [("Content-Type", "application/json"), Self.apiVersion]
        if let n = request.query["n"] {
            guard let count = Int(n), count >= 0 else { throw RegistryError(.paginationNumberInvalid, "n must be a number") }
            if tags.count > count {
                tags = Array(tags.prefix(count))
                if let final = tags.last {
                    headers.append(("Link", "</v2/\(repository)/tags/list?n=\(count)&last=\(final)>; rel=\"next\""))
                }
            }
        }
        let body = try JSONSerialization.data(withJSONObject: ["name": repository, "tags": tags], options: [.sortedKeys, .withoutEscapingSlashes])
        return HTTPResponse(status: 200, headers: headers, body: .bytes(Array(body)))
    }

    private func manifest(_ request: HTTPRequest, repository: String, reference: String) throws -> HTTPResponse {
        let image: CheckpointImage
        let accept = request.header("accept") ?? ""
        if reference.hasPrefix("sha256:") {
            // By digest: the index or the manifest of one of the repository's images.
            for record in try repositoryCheckpoints(repository) where record.uncompressedDigest != nil || record.compression == "none" {
                let candidate = try self.image(record)
                if candidate.indexDigest == reference { return document(candidate.index, candidate.indexDigest, CheckpointImage.indexMediaType) }
                if candidate.manifestDigest == reference { return document(candidate.manifest, candidate.manifestDigest, CheckpointImage.manifestMediaType) }
            }
            throw RegistryError(.manifestUnknown, "\(repository) has no manifest \(reference.prefix(80))")
        }
        guard OCIName.isValidTag(reference) else { throw RegistryError(.manifestInvalid, "\(reference.prefix(200)) is not a tag") }
        let records = try repositoryCheckpoints(repository)
        guard let record = reference == "latest" ? records.first : records.first(where: { OCIName.tag(of: $0.id) == reference }) else {
            throw RegistryError(.manifestUnknown, "\(repository) has no tag \(reference)")
        }
        image = try self.image(record)
        // The index carries the annotations containerd looks for; a client that takes no index gets the manifest.
        if accept.isEmpty || accept.contains(CheckpointImage.indexMediaType) || accept.contains("*/*") {
            return document(image.index, image.indexDigest, CheckpointImage.indexMediaType)
        }
        return document(image.manifest, image.manifestDigest, CheckpointImage.manifestMediaType)
    }

    private func document(_ bytes: [UInt8], _ digest: String, _ mediaType: String) -> HTTPResponse {
        HTTPResponse(status: 200, headers: [("Content-Type", mediaType), ("Docker-Content-Digest", digest),
                                            ("ETag", "\"\(digest)\""), Self.apiVersion], body: .bytes(bytes))
    }

    /// A layer blob from a known location, on the worker thread; nil for anything else, or when the catalog must
    /// be asked.
    private func cachedBlob(_ request: HTTPRequest, path: String) -> HTTPResponse? {
        guard path.contains("/blobs/sha256:") else { return nil }
        do {
            try authorize(request)
        } catch {
            return respond { throw error }
        }
        guard let location = context.archiveLocations.value(for: "v2/" + path, generation: context.catalog.generation),
              let path = location.path, access(path, F_OK) == 0 else { return nil }
        return layer(request, at: location)
    }

    private func layer(_ request: HTTPRequest, at location: ArchiveLocation) -> HTTPResponse {
        let digest = "sha256:" + location.id
        return BlobResponse.make(context.blobs, digest: location.id, path: location.path, request: request, etag: "\"\(digest)\"",
                                 contentType: "application/octet-stream", extraHeaders: [("Docker-Content-Digest", digest), Self.apiVersion])
    }

    private func blob(_ request: HTTPRequest, repository: String, digest: String) throws -> HTTPResponse {
        guard digest.hasPrefix("sha256:"), digest.count == 71, digest.dropFirst(7).allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            if digest.contains(":") { throw RegistryError(.blobUnknown, "\(repository) has no blob \(digest.prefix(80))") }
            throw RegistryError(.digestInvalid, "\(digest.prefix(80)) is not a digest")
        }
        let hex = String(digest.dropFirst(7))
        let generation = context.catalog.generation
        let records = try repositoryCheckpoints(repository)
        if let record = records.first(where: { $0.id == hex }) {
            guard context.blobs.contains(record.id) else { throw RegistryError(.blobUnknown, "the archive of \(record.id.prefix(12)) is gone from the store") }
            let location = ArchiveLocation(record, in: context.blobs)
            context.archiveLocations.store(location, for: "v2/\(repository)/blobs/\(digest)", generation: generation)
            return layer(request, at: location)
        }
        for record in records where record.uncompressedDigest != nil || record.compression == "none" {
            let image = try self.image(record)
            if image.configDigest == digest {
                return HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", digest),
                                                           ("ETag", "\"\(digest)\""), Self.apiVersion], body: .bytes(image.config))
            }
        }
        throw RegistryError(.blobUnknown, "\(repository) has no blob \(digest)")
    }

    /// The image of a checkpoint; works out (and records) the uncompressed tar's digest the first time.
    private func image(_ record: CheckpointRecord) throws -> CheckpointImage {
        var record = record
        if record.uncompressedDigest == nil {
            record.uncompressedDigest = try UncompressedDigest.compute(record, blobs: context.blobs, catalog: context.catalog)
        }
        return try CheckpointImage(record)
    }

    static let apiVersion = ("Docker-Distribution-API-Version", "registry/2.0")
}

/// The SHA-256 of an archive's uncompressed tar (an image config's diff_id): the blob's own digest when it is not
/// compressed; otherwise one decompressing pass over the stored file, recorded in the catalog.
enum UncompressedDigest {
    static func compute(_ record: CheckpointRecord, blobs: BlobStore, catalog: Catalog) throws -> String {
        if let known = record.uncompressedDigest { return known }
        if record.compression == "none" { return "sha256:" + record.id }
        guard blobs.contains(record.id) else { throw RegistryError(.blobUnknown, "the archive of \(record.id.prefix(12)) is gone from the store") }
        var hasher = SHA256()
        try ArchiveReader.decompressedStream(source: try blobs.openReader(record.id).byteSource()) { hasher.update(bufferPointer: $0) }
        let digest = "sha256:" + Hex.string(hasher.finalize())
        try catalog.setUncompressedDigest(record.id, digest)
        return digest
    }
}

/// An error of the registry view, in the distribution spec's shape.
struct RegistryError: Error {
    enum Code: String {
        case blobUnknown = "BLOB_UNKNOWN"
        case digestInvalid = "DIGEST_INVALID"
        case manifestUnknown = "MANIFEST_UNKNOWN"
        case manifestInvalid = "MANIFEST_INVALID"
        case nameInvalid = "NAME_INVALID"
        case nameUnknown = "NAME_UNKNOWN"
        case paginationNumberInvalid = "PAGINATION_NUMBER_INVALID"
        case unauthorized = "UNAUTHORIZED"
        case denied = "DENIED"
        case unsupported = "UNSUPPORTED"
        case unknown = "UNKNOWN"

        var status: Int {
            switch self {
            case .blobUnknown, .manifestUnknown, .nameUnknown: 404
            case .digestInvalid, .manifestInvalid, .nameInvalid, .paginationNumberInvalid: 400
            case .unauthorized: 401
            case .denied: 403
            case .unsupported: 405
            case .unknown: 500
            }
        }
    }

    var code: Code
    var message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var response: HTTPResponse {
        let body = try? JSONSerialization.data(withJSONObject: ["errors": [["code": code.rawValue, "message": message, "detail": [String: String]()]]],
                                               options: [.sortedKeys, .withoutEscapingSlashes])
        var headers: [(String, String)] = [("Content-Type", "application/json"), RegistryAPI.apiVersion]
        if code == .unauthorized { headers.append(("WWW-Authenticate", "Basic realm=\"Ferry\"")) }
        return HTTPResponse(status: code.status, headers: headers, body: .bytes(Array(body ?? Data())))
    }
}
