import Crypto
public import FerryAPI
import Foundation

extension FerryClient {
    /// The service's public signing key (`GET /.well-known/ferry/provenance-key`).
    public func provenanceKey() throws -> ProvenanceKeyInfo {
        try decode(ProvenanceKeyInfo.self, "GET", "/.well-known/ferry/provenance-key")
    }

    /// A checkpoint's signed statement (`GET /api/v1/checkpoints/{id}/statement`).
    public func statement(_ id: String) throws -> StatementEnvelope {
        try decode(StatementEnvelope.self, "GET", "/api/v1/checkpoints/\(id)/statement")
    }

    /// Every statement of a container's chain, oldest first (`GET /api/v1/chain`).
    public func chain(_ container: String) throws -> ProvenanceChain {
        try decode(ProvenanceChain.self, "GET", "/api/v1/chain", query: ["container": container])
    }

    /// The SHA-256 (hex) and length of a checkpoint's archive as the service sends it, hashed as it streams by:
    /// nothing is written to disk.
    public func archiveDigest(_ id: String) throws -> (digest: String, size: Int64) {
        var hasher = SHA256()
        var size: Int64 = 0
        var errorBody = Data()
        var ok = false
        let response = try transport(request("GET", "/api/v1/checkpoints/\(id)/archive"), onResponse: { status, _ in
            ok = status == 200
            return true
        }, onBody: { bytes in
            if ok {
                hasher.update(bufferPointer: bytes)
                size += Int64(bytes.count)
            } else if errorBody.count < 1 << 20 {
                errorBody.append(contentsOf: bytes)
            }
            return true
        })
        guard response.status == 200 else { throw Self.error(status: response.status, body: errorBody) }
        return (Hex.string(hasher.finalize()), size)
    }
}
