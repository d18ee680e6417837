public import Foundation
internal import FerryClient
internal import Crypto

/// A failed object-store request or a bad object-store configuration, with a stable code.
public struct S3Error: Error, Sendable, CustomStringConvertible {
    /// `S3_CONFIG_INVALID` (bad `--blobs`/endpoint/credentials), `S3_UNREACHABLE` (no answer),
    /// `S3_REQUEST_FAILED` (an error status from the store), `S3_NOT_FOUND` (no such key).
    public var code: String
    public var message: String
    /// The HTTP status, when the store answered.
    public var status: Int?
    public var description: String { "\(code): \(message)" }

    public init(code: String, message: String, status: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }
}

/// Where the objects live and how to reach them: `s3://bucket/prefix`, endpoint, region, credentials.
public struct S3Configuration: Sendable {
    public var bucket: String
    /// Without leading or trailing `/`; may be empty.
    public var prefix: String
    /// `https://s3.REGION.amazonaws.com` unless an endpoint is given.
    public var endpoint: URL
    public var region: String
    public var credentials: S3Credentials
    /// `ENDPOINT/bucket/key` instead of `bucket.ENDPOINT/key`; on whenever an endpoint is given.
    public var pathStyle: Bool

    public init(bucket: String, prefix: String, endpoint: URL, region: String, credentials: S3Credentials,
                pathStyle: Bool) {
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.pathStyle = pathStyle
    }

    /// From `s3://bucket/prefix`, an optional `--s3-endpoint`, and `AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` in `environment`.
    public static func parse(location: String, endpoint: String?, pathStyle: Bool,
                             environment: [String: String]) throws(S3Error) -> S3Configuration {
        func bad(_ message: String) -> S3Error { S3Error(code: "S3_CONFIG_INVALID", message: message) }
        guard location.hasPrefix("s3://") else { throw bad("--blobs \(location): not an s3://bucket/prefix URL") }
        let rest = location.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        guard !bucket.isEmpty, bucket.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else {
            throw bad("--blobs \(location): no valid bucket name")
        }
        let prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")
        guard let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"], !region.isEmpty else {
            throw bad("AWS_REGION is not set")
        }
        guard let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty,
              let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
            throw bad("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set")
        }
        let given = endpoint ?? environment["AWS_ENDPOINT_URL"].flatMap { $0.isEmpty ? nil : $0 }
        let url: URL
        if let given {
            guard let parsed = URL(string: given), let scheme = parsed.scheme, scheme == "http" || scheme == "https",
                  parsed.host != nil else { throw bad("endpoint \(given): not an http(s)://HOST[:PORT] URL") }
            url = parsed
        } else {
            url = URL(string: "https://s3.\(region).amazonaws.com")!
        }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return S3Configuration(bucket: bucket, prefix: prefix, endpoint: url, region: region,
                               credentials: S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token),
                               pathStyle: pathStyle || given != nil)
    }
}

/// The S3 API calls the blob store needs, each one signed request over the libcurl transfer, on the calling
/// thread. Keys are full object keys (the prefix already in them).
public struct S3Client: Sendable {
    public var configuration: S3Configuration
    private var signer: SignatureV4

    public init(configuration: S3Configuration) {
        self.configuration = configuration
        self.signer = SignatureV4(credentials: configuration.credentials, region: configuration.region)
    }

    /// `prefix/components...`, the prefix left out when empty.
    public func key(_ components: String...) -> String {
        ([configuration.prefix].filter { !$0.isEmpty } + components).joined(separator: "/")
    }

    // MARK: Objects

    public func putObject(_ key: String, data: Data) throws(S3Error) {
        _ = try send("PUT", key: key, body: data)
    }

    /// The object's size, or nil when there is none.
    public func headObject(_ key: String) throws(S3Error) -> Int64? {
        let response = try send("HEAD", key: key, accept: [200, 404])
        if response.status == 404 { return nil }
        return response.header("content-length").flatMap(Int64.init)
    }

    /// Streams bytes `range` (all of them when nil) of the object to `onBody`; returns false from it to stop.
    public func getObject(_ key: String, range: ClosedRange<Int64>? = nil,
                          onBody: @escaping (UnsafeRawBufferPointer) -> Bool) throws(S3Error) {
        var headers: [(String, String)] = []
        if let range { headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        // An error status's small XML body is read and dropped rather than the transfer stopped, so the
        // connection ends cleanly and the status is reported.
        var failed: Int?
        let response = try send("GET", key: key, headers: headers, accept: [200, 206, 404, 403, 416, 500, 503],
                                stream: { status in
            if status >= 300 { failed = status }
            return true
        }, onBody: { bytes in failed == nil ? onBody(bytes) : true })
        if let failed = failed ?? (response.status >= 300 ? response.status : nil) { throw statusError(failed, "GET", key) }
    }

    /// The whole object in memory (small objects only: key documents, tests).
    public func getObjectData(_ key: String) throws(S3Error) -> Data {
        var data = Data()
        try getObject(key) { data.append(contentsOf: $0); return true }
        return data
    }

    public func deleteObject(_ key: String) throws(S3Error) {
        _ = try send("DELETE", key: key, accept: [200, 204, 404])
    }

    /// Server-side copy of an object of at most 5 GiB (larger ones go through `copyLarge`).
    public func copyObject(from source: String, to destination: String) throws(S3Error) {
        let response = try send("PUT", key: destination, headers: [("x-amz-copy-source", copySource(source))])
        if String(decoding: response.body, as: UTF8.self).contains("<Error>") {
            throw S3Error(code: "S3_REQUEST_FAILED", message: "copy \(source) to \(destination) failed", status: 200)
        }
    }

    /// Copies an object of any size: one CopyObject up to 5 GiB, UploadPartCopy in 1 GiB parts above.
    public func copyLarge(from source: String, to destination: String, size: Int64) throws(S3Error) {
        if size <= 5 << 30 { return try copyObject(from: source, to: destination) }
        let upload = try createMultipartUpload(destination)
        do throws(S3Error) {
            var parts: [String] = []
            var offset: Int64 = 0
            let partSize: Int64 = 1 << 30
            while offset < size {
                let end = min(offset + partSize, size) - 1
                let response = try send("PUT", key: destination,
                                        query: [("partNumber", "\(parts.count + 1)"), ("uploadId", upload)],
                                        headers: [("x-amz-copy-source", copySource(source)),
                                                  ("x-amz-copy-source-range", "bytes=\(offset)-\(end)")])
                guard let etag = XMLText.first("ETag", in: response.body) else {
                    throw S3Error(code: "S3_REQUEST_FAILED", message: "UploadPartCopy answered no ETag")
                }
                parts.append(etag)
                offset = end + 1
            }
            try completeMultipartUpload(destination, uploadID: upload, etags: parts)
        } catch {
            try? abortMultipartUpload(destination, uploadID: upload)
            throw error
        }
    }

    // MARK: Multipart uploads

    public func createMultipartUpload(_ key: String) throws(S3Error) -> String {
        let response = try send("POST", key: key, query: [("uploads", "")])
        guard let id = XMLText.first("UploadId", in: response.body) else {
            throw S3Error(code: "S3_REQUEST_FAILED", message: "CreateMultipartUpload answered no UploadId")
        }
        return id
    }

    /// Sends part `number` (from 1) and returns its ETag.
    public func uploadPart(_ key: String, uploadID: String, number: Int, data: Data) throws(S3Error) -> String {
        let response = try send("PUT", key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID)], body: data)
        guard let etag = response.header("etag") else {
            throw S3Error(code: "S3_REQUEST_FAILED", message: "UploadPart answered no ETag")
        }
        return etag
    }

    public func completeMultipartUpload(_ key: String, uploadID: String, etags: [String]) throws(S3Error) {
        let parts = etags.enumerated().map {
            "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(XMLText.escape($0.element))</ETag></Part>"
        }.joined()
        let body = Data("<CompleteMultipartUpload>\(parts)</CompleteMultipartUpload>".utf8)
        let response = try send("POST", key: key, query: [("uploadId", uploadID)], body: body)
        // S3 may answer 200 with an error document once it has started sending.
        if String(decoding: response.body, as: UTF8.self).contains("<Error>") {
            throw S3Error(code: "S3_REQUEST_FAILED", message: "CompleteMultipartUpload failed", status: 200)
        }
    }

    public func abortMultipartUpload(_ key: String, uploadID: String) throws(S3Error) {
        _ = try send("DELETE", key: key, query: [("uploadId", uploadID)], accept: [200, 204, 404])
    }

    /// The multipart uploads in progress under `prefix`: key, upload ID, and when it was started.
    public func listMultipartUploads(prefix: String) throws(S3Error) -> [(key: String, uploadID: String, initiated: Date?)] {
        var found: [(key: String, uploadID: String, initiated: Date?)] = []
        var markers: [(String, String)] = []
        while true {
            let response = try send("GET", key: nil, query: [("uploads", ""), ("prefix", prefix)] + markers)
            for upload in XMLText.all("Upload", in: response.body) {
                guard let key = XMLText.first("Key", in: upload), let id = XMLText.first("UploadId", in: upload) else { continue }
                let initiated = XMLText.first("Initiated", in: upload).flatMap(Self.parseTime)
                found.append((key, id, initiated))
            }
            guard XMLText.first("IsTruncated", in: response.body) == "true",
                  let nextKey = XMLText.first("NextKeyMarker", in: response.body),
                  let nextID = XMLText.first("NextUploadIdMarker", in: response.body) else { return found }
            markers = [("key-marker", nextKey), ("upload-id-marker", nextID)]
        }
    }

    // MARK: Listing

    /// Every key under `prefix` with its size and last change, page by page (ListObjectsV2).
    public func listObjects(prefix: String) throws(S3Error) -> [(key: String, size: Int64, modified: Date?)] {
        var found: [(key: String, size: Int64, modified: Date?)] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let response = try send("GET", key: nil, query: query)
            for item in XMLText.all("Contents", in: response.body) {
                guard let key = XMLText.first("Key", in: item) else { continue }
                found.append((key, XMLText.first("Size", in: item).flatMap(Int64.init) ?? 0,
                              XMLText.first("LastModified", in: item).flatMap(Self.parseTime)))
            }
            token = XMLText.first("IsTruncated", in: response.body) == "true"
                ? XMLText.first("NextContinuationToken", in: response.body) : nil
        } while token != nil
        return found
    }

    // MARK: Sending

    private func copySource(_ key: String) -> String {
        "/\(configuration.bucket)/\(SignatureV4.uriEncode(key, keepSlash: true))"
    }

    private func statusError(_ status: Int, _ method: String, _ key: String?) -> S3Error {
        S3Error(code: status == 404 ? "S3_NOT_FOUND" : "S3_REQUEST_FAILED",
                message: "\(method) \(key ?? configuration.bucket) answered HTTP \(status)", status: status)
    }

    /// One signed request. `key` nil addresses the bucket itself. A status outside `accept` throws, unless
    /// `stream` takes the body (it then sees the status first and decides).
    private func send(_ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
                      body: Data? = nil, accept: Set<Int> = [200],
                      stream: ((Int) -> Bool)? = nil,
                      onBody: ((UnsafeRawBufferPointer) -> Bool)? = nil) throws(S3Error) -> TransferResponse {
        let endpoint = configuration.endpoint
        let host = endpoint.port.map { "\(endpoint.host!):\($0)" } ?? endpoint.host!
        let encodedKey = key.map { SignatureV4.uriEncode($0, keepSlash: true) }
        var path: String
        var signedHost = host
        if configuration.pathStyle {
            path = "/\(configuration.bucket)" + (encodedKey.map { "/\($0)" } ?? "")
        } else {
            signedHost = "\(configuration.bucket).\(host)"
            path = "/" + (encodedKey ?? "")
        }
        let basePath = endpoint.path.hasSuffix("/") ? String(endpoint.path.dropLast()) : endpoint.path
        path = basePath + path
        let payloadHash = body.map { SignatureV4.hex(SHA256.hash(data: $0)) } ?? SignatureV4.emptyPayloadHash
        let requestHeaders = [("host", signedHost)] + headers
        let signature = signer.sign(method: method, path: path, query: query, headers: requestHeaders,
                                    payloadHash: payloadHash, date: Date())
        let queryText = query.map { "\(SignatureV4.uriEncode($0.0))=\(SignatureV4.uriEncode($0.1))" }.joined(separator: "&")
        let scheme = endpoint.scheme ?? "https"
        guard let url = URL(string: "\(scheme)://\(signedHost)\(path)" + (queryText.isEmpty ? "" : "?\(queryText)")) else {
            throw S3Error(code: "S3_CONFIG_INVALID", message: "cannot form a URL for key \(key ?? "")")
        }
        var request = TransferRequest(method: method, url: url, headers: headers.map { ($0.0, $0.1) } + signature,
                                      body: body.map { .data($0) } ?? .none, timeout: nil)
        request.stallTimeout = 60
        // libcurl would otherwise add `Expect: 100-continue` to a part upload, which costs a round trip.
        request.setHeader("Expect", "")
        // libcurl labels a posted body as a form otherwise, which servers then try to parse.
        if body != nil { request.setHeader("Content-Type", "application/octet-stream") }
        if method == "HEAD" { request.maximumBodyBytes = 0 }
        let response: TransferResponse
        do {
            if let stream, let onBody {
                var status = 0
                response = try HTTPTransfer.perform(request, onResponse: { code, _ in status = code; return stream(code) },
                                                    onBody: onBody)
                _ = status
            } else {
                response = try HTTPTransfer.perform(request)
            }
        } catch {
            if error.cancelled && stream != nil { return TransferResponse(status: 0, headers: [:], body: Data()) }
            throw S3Error(code: "S3_UNREACHABLE", message: "\(method) \(url.absoluteString): \(error.message)")
        }
        guard accept.contains(response.status) else {
            let detail = XMLText.first("Code", in: response.body).map { " (\($0))" } ?? ""
            var failure = statusError(response.status, method, key)
            failure.message += detail
            throw failure
        }
        return response
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
