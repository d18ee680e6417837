import ArgumentParser
import FerryAPI
import FerryClient
import FerryProvenance
import Foundation

/// `ferry verify`: checks signed provenance. Exit 0 only when every signature, digest and chain link matches.
///
/// - `ferry verify ID [--server URL] [--public-key FILE]`: a catalogued checkpoint, against the archive the
///   service sends and the container's chain.
/// - `ferry verify --chain CONTAINER [--no-archives]`: every statement of a container's chain, and every archive
///   still catalogued.
/// - `ferry verify ARCHIVE --statement FILE --public-key FILE`: an archive file against its statement, offline.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Verify a checkpoint's signed statement, its archive and its container's hash chain.")

    @OptionGroup var serverOptions: ServerOptions
    @Argument(help: "A checkpoint ID (or unique prefix), or with --statement an archive file.") var target: String?
    @Option(help: "Verify the chain of CONTAINER (a Podman container) or NAMESPACE/POD/CONTAINER.") var chain: String?
    @Option(help: "The statement (the envelope JSON of GET /api/v1/checkpoints/{id}/statement) to verify an archive file against, offline.")
    var statement: String?
    @Option(help: "The trusted public key (the JSON of /.well-known/ferry/provenance-key, or a PEM). Default: the service's, as it answers.")
    var publicKey: String?
    @Flag(help: "With --chain, check the statements and links only, not the archives.") var noArchives = false

    func validate() throws {
        switch (target, chain, statement) {
        case (.some, nil, _), (nil, .some, nil): break
        case (nil, nil, _): throw ValidationError("give a checkpoint ID, --chain CONTAINER, or an archive file with --statement")
        default: throw ValidationError("give either a checkpoint ID (or archive file) or --chain, not both")
        }
        if statement != nil && publicKey == nil { throw ValidationError("--statement needs --public-key: offline, only a key you trust can vouch") }
        if let chain, ProvenanceStatement.chainKey(parsing: chain) == nil {
            throw ValidationError("--chain is CONTAINER or NAMESPACE/POD/CONTAINER")
        }
    }

    func run() throws {
        try runVerification {
            if let statement, let target {
                let check = ProvenanceCheck(trusting: try Self.key(file: publicKey!))
                let envelope = try Self.envelope(file: statement)
                let verified = try check.offline(archive: target, envelope: envelope)
                Output.write("verified \(target): \(Self.describe(verified)), key \(check.verifier.trusted.keyID)\n")
                return
            }
            let client = try serverOptions.client()
            let key: ProvenancePublicKey
            if let publicKey {
                key = try Self.key(file: publicKey)
            } else {
                key = try ProvenancePublicKey(info: client.provenanceKey())
                FileHandle.standardError.write(Data("ferry: trusting the service's key \(key.keyID) as it answers; pin it with --public-key\n".utf8))
            }
            let check = ProvenanceCheck(trusting: key)
            if let chain {
                let report = try check.chain(chain, client: client, archives: !noArchives)
                for link in report.links {
                    let archive = !link.present ? "deleted" : noArchives ? "archive not checked" : "archive matches"
                    Output.write("\(link.statement.chain.index) \(link.checkpointID.prefix(12)) \(Self.describe(link.statement)) (\(archive))\n")
                }
                let deleted = report.links.filter { !$0.present }.count
                Output.write("chain \(report.links.first?.statement.chain.key ?? chain): \(report.links.count) statement(s) verified, \(report.archivesVerified) archive(s) matched, \(deleted) deleted; key \(key.keyID)\n")
                return
            }
            let verified = try check.checkpoint(target!, client: client)
            Output.write("verified \(verified.subject.digest): \(Self.describe(verified)), statement \(verified.chain.index) of \(verified.chain.key), key \(key.keyID)\n")
        }
    }

    static func describe(_ statement: ProvenanceStatement) -> String {
        let identity = statement.identity
        let scope = identity.podName.map { "\(identity.podNamespace ?? "")/\($0)/" } ?? ""
        let node = identity.sourceNode.map { " from \($0)" } ?? ""
        return "\(identity.engine) \(scope)\(identity.containerName)\(node), uploaded \(statement.uploadedAt), findings \(statement.findings.state)"
    }

    static func key(file: String) throws -> ProvenancePublicKey {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ProvenanceError(.invalidKey, "cannot read the public key \(file)")
        }
        return try ProvenancePublicKey(parsing: data)
    }

    static func envelope(file: String) throws -> StatementEnvelope {
        guard let data = FileManager.default.contents(atPath: file),
              let envelope = try? JSONDecoder().decode(StatementEnvelope.self, from: data) else {
            throw ProvenanceError(.invalidKey, "\(file) is not a statement envelope")
        }
        return envelope
    }
}

/// Runs a verification: a provenance failure is one stderr line with its code and exit status 1, like a refusal.
func runVerification(_ body: () throws -> Void) throws {
    do {
        try runClient(body)
    } catch let error as ProvenanceError {
        FileHandle.standardError.write(Data("ferry: \(error.message) [\(error.code)]\n".utf8))
        throw ExitCode(ClientExit.refused)
    }
}
