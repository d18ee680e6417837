public import Crypto
public import FerryAPI
public import Foundation
import FerryClient

/// The service's Ed25519 signing key: generated on first start in the data directory (mode 0600), read back on
/// every later start. The file holds the raw 32-byte seed, base64, on one line.
public struct ProvenanceSigner: Sendable {
    // The raw seed rather than the key: swift-crypto 3's keys are not Sendable.
    private let seed: Data
    public var privateKey: Curve25519.Signing.PrivateKey { try! Curve25519.Signing.PrivateKey(rawRepresentation: seed) }
    public let publicKey: ProvenancePublicKey

    public init(privateKey: Curve25519.Signing.PrivateKey) {
        seed = privateKey.rawRepresentation
        publicKey = ProvenancePublicKey(privateKey.publicKey)
    }

    /// A new random key, held in memory only.
    public static func generate() -> ProvenanceSigner { ProvenanceSigner(privateKey: .init()) }

    /// Reads the key at `path`, or creates it there (0600, written to a temporary file and renamed, so a crash
    /// never leaves half a key) when there is none.
    public static func loadOrCreate(at path: String) throws(ProvenanceError) -> ProvenanceSigner {
        if FileManager.default.fileExists(atPath: path) { return try load(path) }
        let key = Curve25519.Signing.PrivateKey()
        let text = Data((key.rawRepresentation.base64EncodedString() + "\n").utf8)
        guard FileWrite.replace(path, with: text, temporarySuffix: ".new") else {
            throw ProvenanceError(.invalidKey, "cannot create the signing key \(path)")
        }
        return ProvenanceSigner(privateKey: key)
    }

    static func load(_ path: String) throws(ProvenanceError) -> ProvenanceSigner {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let mode = attributes[.posixPermissions] as? Int else {
            throw ProvenanceError(.invalidKey, "cannot read the signing key \(path)")
        }
        guard mode & 0o077 == 0 else {
            throw ProvenanceError(.invalidKey, "the signing key \(path) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw ProvenanceError(.invalidKey, "\(path) is not a Ferry signing key")
        }
        return ProvenanceSigner(privateKey: key)
    }

    /// Signs the statement's exact bytes.
    public func envelope(signing payload: Data) throws -> StatementEnvelope {
        let signature = try privateKey.signature(for: ProvenanceVerifier.preAuthenticationEncoding(
            type: StatementEnvelope.payloadType, payload: payload))
        return StatementEnvelope(payload: payload.base64EncodedString(),
                                 signatures: [.init(keyid: publicKey.keyID, sig: Data(signature).base64EncodedString())])
    }

    /// Encodes and signs a statement; returns the envelope and `sha256:` of the payload (what the next statement
    /// of the chain names).
    public func sign(_ statement: ProvenanceStatement) throws -> (envelope: StatementEnvelope, digest: String) {
        let payload = try JSONEncoder.wire.encode(statement)
        return (try envelope(signing: payload), ProvenanceVerifier.digest(of: payload))
    }
}

/// An Ed25519 public key with its ID and its two published forms.
public struct ProvenancePublicKey: Sendable, Equatable {
    /// The 32 raw bytes (swift-crypto 3's keys are not Sendable).
    public let raw: Data
    public var key: Curve25519.Signing.PublicKey { try! Curve25519.Signing.PublicKey(rawRepresentation: raw) }

    public init(_ key: Curve25519.Signing.PublicKey) { raw = key.rawRepresentation }

    /// The first 16 bytes of SHA-256 over the raw key, hex: short enough to print, long enough not to collide.
    public var keyID: String { Hex.string(SHA256.hash(data: raw).prefix(16)) }

    public var info: ProvenanceKeyInfo {
        ProvenanceKeyInfo(keyID: keyID, publicKey: key.rawRepresentation.base64EncodedString(), pem: pem)
    }

    /// SubjectPublicKeyInfo for Ed25519 (RFC 8410) is a fixed 12-byte DER prefix before the raw key.
    static let spkiPrefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]

    public var pem: String {
        let der = Data(Self.spkiPrefix) + key.rawRepresentation
        return "-----BEGIN PUBLIC KEY-----\n\(der.base64EncodedString())\n-----END PUBLIC KEY-----\n"
    }

    /// The key that `GET /.well-known/ferry/provenance-key` describes.
    public init(info: ProvenanceKeyInfo) throws(ProvenanceError) {
        guard info.algorithm == "ed25519", let raw = Data(base64Encoded: info.publicKey),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw ProvenanceError(.invalidKey, "the key document does not hold an Ed25519 public key")
        }
        self.init(key)
    }

    /// Reads what `GET /.well-known/ferry/provenance-key` serves (JSON), a PEM `PUBLIC KEY`, or a raw key in base64.
    public init(parsing data: Data) throws(ProvenanceError) {
        if let info = try? JSONDecoder().decode(ProvenanceKeyInfo.self, from: data) {
            try self.init(info: info)
            return
        }
        let text = String(decoding: data, as: UTF8.self)
        let body = text.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
        guard let bytes = Data(base64Encoded: body) else { throw ProvenanceError(.invalidKey, "not an Ed25519 public key") }
        let raw = bytes.count == 44 && bytes.prefix(12) == Data(Self.spkiPrefix) ? bytes.suffix(32) : bytes
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw ProvenanceError(.invalidKey, "not an Ed25519 public key")
        }
        self.init(key)
    }
}
