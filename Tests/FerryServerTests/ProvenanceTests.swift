import FerryAPI
import FerryProvenance
import FerryServer
import FerryTestSupport
import Foundation
import Testing

/// Signed provenance end to end: a real service signs every checkpoint it catalogues, `ferry verify` checks a
/// checkpoint, a chain and an offline archive, and each kind of tampering (the blob, a statement, the chain's
/// order, the public key) is caught with its own code. The signatures are also checked by openssl, which shares
/// no code with Ferry.
@Suite("provenance", .serialized)
struct ProvenanceTests {
    static let first = "podman-series-1.tar"
    static let second = "podman-series-2.tar"
    static let other = "podman-counter-none.tar"

    struct Catalogued {
        let server: TestServer
        let ids: [String: String]
        var database: String { server.dataDirectory.appendingPathComponent("data/catalog.sqlite").path }
    }

    static func catalogue(_ server: TestServer? = nil) throws -> Catalogued {
        let server = try server ?? TestServer()
        var ids: [String: String] = [:]
        for name in [first, second, other] {
            let response = try server.upload(Fixtures.archive(name), query: "?node=node-a")
            #expect(response.status == 201, "\(name): \(response.text)")
            ids[name] = try #require((response.json["checkpoint"] as? [String: Any])?["id"] as? String)
        }
        return Catalogued(server: server, ids: ids)
    }

    static func verify(_ server: TestServer, _ arguments: [String]) throws -> ProcessResult {
        try Fixtures.ferry(["verify", "--server", server.base] + arguments)
    }

    static func sql(_ database: String, _ statement: String, _ arguments: [String] = []) throws -> String {
        let script = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2], sys.argv[3:]).fetchall(); c.commit(); print('\\n'.join('|'.join(str(v) for v in row) for row in r))"
        let result = try Fixtures.run("/usr/bin/env", ["python3", "-c", script, database, statement] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func key(_ server: TestServer) throws -> ProvenancePublicKey {
        let response = try server.request("GET", "/.well-known/ferry/provenance-key")
        #expect(response.status == 200)
        return try ProvenancePublicKey(parsing: response.body)
    }

    func envelope(_ server: TestServer, _ id: String) throws -> StatementEnvelope {
        let response = try server.request("GET", "/api/v1/checkpoints/\(id)/statement")
        #expect(response.status == 200, "\(response.text)")
        return try JSONDecoder().decode(StatementEnvelope.self, from: response.body)
    }

    @Test("every checkpoint is signed on ingest: the statement binds digest, identity, findings and chain; openssl agrees")
    func signedOnIngest() throws {
        let catalogued = try Self.catalogue()
        let server = catalogued.server
        let keyFile = server.dataDirectory.appendingPathComponent("data/provenance-key").path
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int)
        #expect(mode == 0o600, "the signing key is private")
        let key = try key(server)
        let verifier = ProvenanceVerifier(trusting: key)

        let firstID = try #require(catalogued.ids[Self.first])
        let secondID = try #require(catalogued.ids[Self.second])
        let (one, oneDigest) = try verifier.verify(envelope(server, firstID))
        let (two, _) = try verifier.verify(envelope(server, secondID))
        #expect(one.subject.digest == "sha256:" + firstID)
        #expect(one.subject.size == Int64(try Data(contentsOf: URL(fileURLWithPath: Fixtures.archive(Self.first))).count))
        #expect(one.identity.containerName == "cd-series" && one.identity.engine == "Podman" && one.identity.sourceNode == "node-a")
        #expect(one.identity.containerID.hasPrefix("52df1daa4b29"))
        #expect(["clean", "warnings", "errors"].contains(one.findings.state))
        // The two series archives are one container's chain; the third archive starts a chain of its own.
        #expect(one.chain == .init(key: "//cd-series", index: 0, previousStatement: nil, previousCheckpoint: nil))
        #expect(two.chain == .init(key: "//cd-series", index: 1, previousStatement: oneDigest, previousCheckpoint: "sha256:" + firstID))
        let (three, _) = try verifier.verify(envelope(server, try #require(catalogued.ids[Self.other])))
        #expect(three.chain.index == 0 && three.chain.key != one.chain.key)

        // openssl verifies the Ed25519 signature over DSSE's pre-authentication encoding with the published PEM.
        let scratch = try Fixtures.temporaryDirectory()
        let signed = try envelope(server, firstID)
        let pae = ProvenanceVerifier.preAuthenticationEncoding(type: signed.payloadType, payload: try #require(Data(base64Encoded: signed.payload)))
        try pae.write(to: scratch.appendingPathComponent("pae"))
        try #require(Data(base64Encoded: signed.signatures[0].sig)).write(to: scratch.appendingPathComponent("sig"))
        try key.info.pem.write(to: scratch.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
        let openssl = try Fixtures.run("/usr/bin/openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", scratch.appendingPathComponent("key.pem").path,
                                                            "-rawin", "-in", scratch.appendingPathComponent("pae").path,
                                                            "-sigfile", scratch.appendingPathComponent("sig").path])
        #expect(openssl.status == 0 && openssl.stdout.contains("Signature Verified Successfully"), "\(openssl.stdout) \(openssl.stderr)")

        // The checkpoint's page shows the statement as the service verifies it.
        let page = try server.request("GET", "/checkpoints/\(secondID)").text
        #expect(page.contains("<span class=\"badge ok\" id=\"provenance\">signed</span> statement 1 of chain <span class=\"mono\">//cd-series</span>"), "\(page)")

        // ferry verify: the checkpoint, the chain, and offline on an archive file plus its statement.
        let checkpoint = try Self.verify(server, [String(secondID.prefix(12))])
        #expect(checkpoint.status == 0, "\(checkpoint.stderr)")
        #expect(checkpoint.stdout.contains("verified sha256:\(secondID)") && checkpoint.stdout.contains("statement 1 of //cd-series"))
        let chain = try Self.verify(server, ["--chain", "cd-series"])
        #expect(chain.status == 0, "\(chain.stderr)")
        #expect(chain.stdout.contains("2 statement(s) verified, 2 archive(s) matched, 0 deleted"), "\(chain.stdout)")
        try JSONEncoder().encode(signed).write(to: scratch.appendingPathComponent("statement.json"))
        try JSONEncoder().encode(key.info).write(to: scratch.appendingPathComponent("key.json"))
        for keyForm in ["key.json", "key.pem"] {
            let offline = try Fixtures.ferry(["verify", Fixtures.archive(Self.first), "--statement", scratch.appendingPathComponent("statement.json").path,
                                              "--public-key", scratch.appendingPathComponent(keyForm).path])
            #expect(offline.status == 0, "\(keyForm): \(offline.stderr)")
        }
        // The archive file of another checkpoint does not match that statement.
        let wrongFile = try Fixtures.ferry(["verify", Fixtures.archive(Self.second), "--statement", scratch.appendingPathComponent("statement.json").path,
                                            "--public-key", scratch.appendingPathComponent("key.json").path])
        #expect(wrongFile.status == 1 && wrongFile.stderr.contains("[DIGEST_MISMATCH]"), "\(wrongFile.stderr)")
    }

    @Test("a tampered blob, statement, chain order or public key is each caught with its code")
    func tamperingCaught() throws {
        let catalogued = try Self.catalogue()
        let server = catalogued.server
        let firstID = try #require(catalogued.ids[Self.first])
        let secondID = try #require(catalogued.ids[Self.second])
        let database = catalogued.database

        // The blob: one byte changed in place on disk.
        let blob = server.blobsDirectory.appendingPathComponent(String(firstID.prefix(2))).appendingPathComponent(firstID).path
        let original = try Data(contentsOf: URL(fileURLWithPath: blob))
        var altered = original
        altered[altered.count / 2] ^= 0x01
        try altered.write(to: URL(fileURLWithPath: blob))
        let blobCheck = try Self.verify(server, [firstID])
        #expect(blobCheck.status == 1 && blobCheck.stderr.contains("[DIGEST_MISMATCH]"), "\(blobCheck.stderr)")
        let chainWithBadBlob = try Self.verify(server, ["--chain", "cd-series"])
        #expect(chainWithBadBlob.status == 1 && chainWithBadBlob.stderr.contains("[DIGEST_MISMATCH]"), "\(chainWithBadBlob.stderr)")
        let statementsOnly = try Self.verify(server, ["--chain", "cd-series", "--no-archives"])
        #expect(statementsOnly.status == 0, "the statements themselves are intact: \(statementsOnly.stderr)")
        try original.write(to: URL(fileURLWithPath: blob))
        #expect(try Self.verify(server, [firstID]).status == 0)

        // A statement: its payload changed (another container name), the signature left as it was.
        let stored = try Self.sql(database, "SELECT envelope FROM checkpoint_statement WHERE checkpoint_id = ?", [secondID])
        var envelope = try JSONDecoder().decode(StatementEnvelope.self, from: Data(stored.utf8))
        let payload = String(decoding: try #require(Data(base64Encoded: envelope.payload)), as: UTF8.self)
        envelope.payload = Data(payload.replacingOccurrences(of: "\"node-a\"", with: "\"node-z\"").utf8).base64EncodedString()
        #expect(envelope.payload != (try JSONDecoder().decode(StatementEnvelope.self, from: Data(stored.utf8))).payload)
        _ = try Self.sql(database, "UPDATE checkpoint_statement SET envelope = ? WHERE checkpoint_id = ?",
                         [String(decoding: try JSONEncoder().encode(envelope), as: UTF8.self), secondID])
        let statementCheck = try Self.verify(server, [secondID])
        #expect(statementCheck.status == 1 && statementCheck.stderr.contains("[SIGNATURE_INVALID]"), "\(statementCheck.stderr)")
        #expect(try server.request("GET", "/checkpoints/\(secondID)").text.contains("id=\"provenance\">SIGNATURE_INVALID</span>"))
        // … and re-signed by someone else's key under the service's key ID: still not the service's signature.
        let forger = ProvenanceSigner.generate()
        var forged = try forger.envelope(signing: Data(payload.utf8))
        forged.signatures[0].keyid = try key(server).keyID
        _ = try Self.sql(database, "UPDATE checkpoint_statement SET envelope = ? WHERE checkpoint_id = ?",
                         [String(decoding: try JSONEncoder().encode(forged), as: UTF8.self), secondID])
        let forgedCheck = try Self.verify(server, [secondID])
        #expect(forgedCheck.status == 1 && forgedCheck.stderr.contains("[SIGNATURE_INVALID]"), "\(forgedCheck.stderr)")
        _ = try Self.sql(database, "UPDATE checkpoint_statement SET envelope = ? WHERE checkpoint_id = ?", [stored, secondID])
        #expect(try Self.verify(server, [secondID]).status == 0)

        // The chain's order: the two statements swapped in place.
        _ = try Self.sql(database, "UPDATE checkpoint_statement SET chain_index = -1 WHERE checkpoint_id = ?", [firstID])
        _ = try Self.sql(database, "UPDATE checkpoint_statement SET chain_index = 0 WHERE checkpoint_id = ?", [secondID])
        _ = try Self.sql(database, "UPDATE checkpoint_statement SET chain_index = 1 WHERE checkpoint_id = ?", [firstID])
        let order = try Self.verify(server, ["--chain", "cd-series"])
        #expect(order.status == 1 && order.stderr.contains("[CHAIN_BROKEN]"), "\(order.stderr)")
        let orderFromOne = try Self.verify(server, [secondID])
        #expect(orderFromOne.status == 1 && orderFromOne.stderr.contains("[CHAIN_BROKEN]"), "\(orderFromOne.stderr)")
        // … and the first statement removed: the second names a predecessor the chain no longer has.
        _ = try Self.sql(database, "UPDATE checkpoint_statement SET chain_index = 0 WHERE checkpoint_id = ?", [secondID])
        let saved = try Self.sql(database, "SELECT envelope, statement_digest FROM checkpoint_statement WHERE checkpoint_id = ?", [firstID])
        _ = try Self.sql(database, "DELETE FROM checkpoint_statement WHERE checkpoint_id = ?", [firstID])
        let gap = try Self.verify(server, ["--chain", "cd-series", "--no-archives"])
        #expect(gap.status == 1 && gap.stderr.contains("[CHAIN_BROKEN]"), "\(gap.stderr)")
        #expect(!saved.isEmpty)

        // The public key: a key the operator trusts that did not sign, and a service whose key was swapped.
        let otherKey = try Fixtures.temporaryDirectory().appendingPathComponent("other.json")
        try JSONEncoder().encode(forger.publicKey.info).write(to: otherKey)
        let otherID = try #require(catalogued.ids[Self.other])
        let pinned = try Self.verify(server, [otherID, "--public-key", otherKey.path])
        #expect(pinned.status == 1 && pinned.stderr.contains("[KEY_MISMATCH]"), "\(pinned.stderr)")
        let originalKey = try key(server)
        server.running.stop(timeout: 5)
        let keyFile = server.dataDirectory.appendingPathComponent("data/provenance-key")
        try FileManager.default.removeItem(at: keyFile)
        let restarted = try TestServer(reusing: server.dataDirectory)
        #expect(try key(restarted) != originalKey, "a new key was made")
        let swapped = try Self.verify(restarted, [otherID])
        #expect(swapped.status == 1 && swapped.stderr.contains("[KEY_MISMATCH]"), "\(swapped.stderr)")
    }

    @Test("a deleted checkpoint keeps its statement and its link; unsigned checkpoints are signed at start, oldest first")
    func deletionsAndBackfill() throws {
        let catalogued = try Self.catalogue()
        var server = catalogued.server
        let firstID = try #require(catalogued.ids[Self.first])
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(firstID)?reason=test").status == 204)
        #expect(try server.request("GET", "/api/v1/checkpoints/\(firstID)/statement").status == 200, "served by full ID after the delete")
        let chain = try Self.verify(server, ["--chain", "cd-series"])
        #expect(chain.status == 0, "\(chain.stderr)")
        #expect(chain.stdout.contains("2 statement(s) verified, 1 archive(s) matched, 1 deleted"), "\(chain.stdout)")
        let missing = try server.request("GET", "/api/v1/checkpoints/\(String(repeating: "0", count: 64))/statement")
        #expect(missing.status == 404 && missing.errorCode == "CHECKPOINT_NOT_FOUND")
        let noChain = try server.request("GET", "/api/v1/chain?container=nobody")
        #expect(noChain.status == 404 && noChain.errorCode == "STATEMENT_NOT_FOUND")
        #expect(try server.request("GET", "/api/v1/chain?container=a/b").errorCode == "INVALID_QUERY")

        // A catalog from before provenance: no statements. The next start signs every checkpoint, oldest first.
        let directory = server.dataDirectory
        server.running.stop(timeout: 5)
        _ = try Self.sql(catalogued.database, "DELETE FROM checkpoint_statement")
        server = try TestServer(reusing: directory)
        let secondID = try #require(catalogued.ids[Self.second])
        let unsignedStatement = try server.request("GET", "/api/v1/checkpoints/\(secondID)/statement")
        #expect(unsignedStatement.status == 200)
        #expect(server.log.contains { $0.contains("provenance: signed 2 checkpoint(s)") }, "\(server.log)")
        let rebuilt = try Self.verify(server, ["--chain", "cd-series"])
        #expect(rebuilt.status == 0 && rebuilt.stdout.contains("1 statement(s) verified"), "\(rebuilt.stdout) \(rebuilt.stderr)")
        // A checkpoint whose statement went missing is refused as unsigned.
        _ = try Self.sql(catalogued.database, "DELETE FROM checkpoint_statement WHERE checkpoint_id = ?", [secondID])
        let unsigned = try server.request("GET", "/api/v1/checkpoints/\(secondID)/statement")
        #expect(unsigned.status == 404 && unsigned.errorCode == "STATEMENT_NOT_FOUND")
        let refused = try Self.verify(server, [secondID])
        #expect(refused.status == 1 && refused.stderr.contains("[SIGNATURE_INVALID]"), "\(refused.stderr)")
    }

    @Test("a signing key readable by others, or not a key, stops the service with one line")
    func keyFileChecked() throws {
        let server = try TestServer()
        let directory = server.dataDirectory
        server.running.stop(timeout: 5)
        let key = directory.appendingPathComponent("data/provenance-key").path
        chmod(key, 0o644)
        let open = try Fixtures.ferry(["serve", "--listen", "127.0.0.1:0", "--data-dir", directory.appendingPathComponent("data").path])
        #expect(open.status == 1 && open.stderr.contains("readable by others"), "\(open.stderr)")
        chmod(key, 0o600)
        try "not a key\n".write(toFile: key, atomically: true, encoding: .utf8)
        chmod(key, 0o600)
        let garbage = try Fixtures.ferry(["serve", "--listen", "127.0.0.1:0", "--data-dir", directory.appendingPathComponent("data").path])
        #expect(garbage.status == 1 && garbage.stderr.contains("is not a Ferry signing key"), "\(garbage.stderr)")
    }

    @Test("with encryption at rest, statements sign the archive as uploaded and ferry verify hashes what the service decrypts")
    func encryptedStore() throws {
        let key = try Fixtures.temporaryDirectory().appendingPathComponent("data.key").path
        let made = try Fixtures.ferry(["keygen", "-o", key])
        #expect(made.status == 0, "\(made.stderr)")
        let catalogued = try Self.catalogue(try TestServer(encryptionKey: key))
        let firstID = try #require(catalogued.ids[Self.first])
        let blob = catalogued.server.blobsDirectory.appendingPathComponent(String(firstID.prefix(2))).appendingPathComponent(firstID).path
        #expect(try sha256(ofFile: blob) != firstID, "the stored file is sealed, not the archive")
        let chain = try Self.verify(catalogued.server, ["--chain", "cd-series"])
        #expect(chain.status == 0 && chain.stdout.contains("2 statement(s) verified, 2 archive(s) matched"), "\(chain.stdout) \(chain.stderr)")
    }
}
