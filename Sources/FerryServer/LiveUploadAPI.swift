import FerryCatalog
import FerryHTTP
import Foundation

/// `/api/v1/nodes/{node}/uploads/{id}`: an upload that a node named (`Ferry-Upload-ID`), readable while it arrives.
///
/// - `GET …/{id}` → `{"upload","state","bytes_received","checkpoint"?,"error"?}`; state is `receiving`,
///   `complete` or `failed`.
/// - `GET …/{id}/archive` with `Range: bytes=A-` or `bytes=A-B` (no `Range`, or another form: from 0) waits up to `wait` seconds
///   (query, default 5, at most 30) for bytes past `A`, then answers
///   - `206` with the bytes the file holds from `A` (at most to `B`), `Content-Range: bytes A-E/*` while the upload
///     arrives and `…/TOTAL` once it is complete;
///   - `204` when there is nothing past `A` yet (`Ferry-Upload-State: receiving`) or ever (`complete`: `A` is the
///     upload's length);
///   - `409 UPLOAD_FAILED` once the upload failed; `416` for an `A` past the end of a complete upload.
///
///   Every answer carries `Ferry-Upload-State` and `Ferry-Upload-Received`, and once complete
///   `Ferry-Upload-Checkpoint` (the catalogued ID).
struct LiveUploadAPI: Sendable {
    let api: CheckpointAPI
    var uploads: LiveUploads { api.context.liveUploads }

    func status(_ request: HTTPRequest, node: String, id: String) throws -> HTTPResponse {
        try api.authorize(request, .read)
        let upload = try find(node: node, id: id)
        let (received, outcome) = upload.state
        var body: [String: AnyEncodable] = [
            "upload": AnyEncodable(upload.key), "state": AnyEncodable(Self.stateName(outcome)),
            "bytes_received": AnyEncodable(received),
        ]
        switch outcome {
        case .receiving: break
        case .complete(let checkpoint): body["checkpoint"] = AnyEncodable(checkpoint)
        case .failed(let code, let message): body["error"] = AnyEncodable(["code": code, "message": message])
        }
        return .json(body)
    }

    func archive(_ request: HTTPRequest, node: String, id: String) throws -> HTTPResponse {
        try api.authorize(request, .read)
        let upload = try find(node: node, id: id)
        let (first, last) = Self.range(request.header("range"))
        var wait = 5.0
        if let text = request.query["wait"] {
            guard let value = Double(text), (0...30).contains(value) else {
                throw HTTPError(.invalidQuery, "wait is a number of seconds from 0 to 30")
            }
            wait = value
        }
        let (received, outcome) = upload.wait(beyond: first, seconds: wait)
        var headers = [("Ferry-Upload-State", Self.stateName(outcome)), ("Ferry-Upload-Received", String(received))]
        switch outcome {
        case .failed(let code, let message):
            throw HTTPError(.uploadFailed, "the upload \(upload.key) failed (\(code)): \(message)")
        case .complete(let checkpoint):
            headers.append(("Ferry-Upload-Checkpoint", checkpoint))
            if first > received {
                var response = HTTPResponse.error(.rangeNotSatisfiable(size: received))
                response.headers += [("Content-Range", "bytes */\(received)")] + headers
                return response
            }
        case .receiving:
            break
        }
        guard received > first else { return HTTPResponse(status: 204, headers: headers) }
        let end = min(last ?? Int64.max, received - 1)
        let total: String
        if case .complete = outcome { total = String(received) } else { total = "*" }
        headers += [("Content-Type", "application/octet-stream"), ("Content-Range", "bytes \(first)-\(end)/\(total)")]
        // Sealed: decrypted as sent, each request with its own chunk cache.
        let body: HTTPResponse.Body = upload.reader.isSealed
            ? .stream(reader: BlobBody(upload.reader.sharing()), offset: first, length: end - first + 1)
            : .file(path: upload.path, offset: first, length: end - first + 1)
        return HTTPResponse(status: 206, headers: headers, body: body)
    }

    private func find(node: String, id: String) throws -> LiveUpload {
        guard LiveUploads.isValidID(id) else {
            throw HTTPError(.invalidUploadID, "an upload ID is 1 to 128 letters, digits, '-', '.' and '_'")
        }
        guard let upload = uploads.upload(node: node, id: id) else {
            throw HTTPError(.uploadNotFound, "no upload \(id) from node \(node.prefix(80)) is arriving or recently ended")
        }
        return upload
    }

    /// `bytes=A-` or `bytes=A-B` (B ≥ A). No header, or any other (RFC 9110 lets a server ignore a `Range`), is
    /// from 0.
    static func range(_ header: String?) -> (Int64, Int64?) {
        guard let header else { return (0, nil) }
        let value = header.trimmingCharacters(in: .whitespaces)
        let parts = value.hasPrefix("bytes=") ? value.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false) : []
        guard parts.count == 2, let first = Int64(parts[0]), first >= 0 else { return (0, nil) }
        if parts[1].isEmpty { return (first, nil) }
        guard let last = Int64(parts[1]), last >= first else { return (0, nil) }
        return (first, last)
    }

    static func stateName(_ outcome: LiveUpload.Outcome) -> String {
        switch outcome {
        case .receiving: "receiving"
        case .complete: "complete"
        case .failed: "failed"
        }
    }
}
