public import FerryAPI
import FerryClient
import FerryValidation
public import Foundation

/// Where and how the agent reaches its node's kubelet (`--kubelet-url`, `--kubelet-token-file`,
/// `--kubelet-ca-file`, `--kubelet-cert-file`, `--kubelet-key-file`).
public struct KubeletEndpoint: Sendable, Equatable {
    public var url: URL
    /// A file holding the bearer token (a service account's, allowed `create` on `nodes/checkpoint`).
    public var tokenFile: String?
    public var certificateAuthorityFile: String?
    public var clientCertificateFile: String?
    public var clientKeyFile: String?

    public init(url: URL, tokenFile: String? = nil, certificateAuthorityFile: String? = nil,
                clientCertificateFile: String? = nil, clientKeyFile: String? = nil) {
        self.url = url
        self.tokenFile = tokenFile
        self.certificateAuthorityFile = certificateAuthorityFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
    }

    /// The arguments of `ferry kubelet-checkpoint` that say the same.
    var arguments: [String] {
        var argv = ["--kubelet-url", url.absoluteString]
        if let tokenFile { argv += ["--kubelet-token-file", tokenFile] }
        if let certificateAuthorityFile { argv += ["--kubelet-ca-file", certificateAuthorityFile] }
        if let clientCertificateFile { argv += ["--kubelet-cert-file", clientCertificateFile] }
        if let clientKeyFile { argv += ["--kubelet-key-file", clientKeyFile] }
        return argv
    }
}

/// Checkpoints containers on a Kubernetes node through the kubelet's checkpoint API (KEP-2008):
/// `POST /checkpoint/{namespace}/{pod}/{container}[?timeout=SECONDS]`, which answers `{"items":["PATH"]}` with
/// the archive the runtime (CRI-O, containerd) wrote on the node; the agent copies it into the job and uploads it
/// like any checkpoint. A container is named `NAMESPACE/POD/CONTAINER`. Restores on such a node are a Pod whose
/// image is the checkpoint's `oci_reference` (Kubernetes does them), so this driver restores nothing itself.
///
/// The call runs as a command, `ferry kubelet-checkpoint …` (this same binary), so the job machinery treats it as
/// it treats every runtime: its PID recorded, its exit status and last stderr line judged, a restart of the agent
/// waiting for it. The exit status says what the kubelet answered (``KubeletCheckpoint/Outcome``).
public struct KubeletDriver: RuntimeDriver {
    public let name = "kubelet"
    public let endpoint: KubeletEndpoint
    /// The program that runs `kubelet-checkpoint` (this binary).
    let program: String

    public init(endpoint: KubeletEndpoint, program: String = KubeletDriver.currentExecutable) {
        self.endpoint = endpoint
        self.program = program
    }

    /// This process's executable.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    public func restoreCommand(archive: String, options: RuntimeRestoreOptions, job: JobContext) throws(AgentError) -> [String] {
        throw AgentError(.driverUnsupported, "the kubelet driver does not restore: restore as a Pod whose image is the checkpoint's oci_reference")
    }

    /// `ferry kubelet-checkpoint --kubelet-url … [--timeout S] NAMESPACE/POD/CONTAINER OUTPUT`. The kubelet's
    /// checkpoint always leaves the container running (the CRI has no other mode).
    public func checkpointCommand(container: String, output: String, options: CheckpointOptions,
                                  job: JobContext) throws(AgentError) -> [String] {
        guard container.split(separator: "/").count == 3 else {
            throw AgentError(.invalidJob, "a container on a kubelet node is NAMESPACE/POD/CONTAINER, not \(container)")
        }
        return [program, "kubelet-checkpoint"] + endpoint.arguments + [container, output]
    }

    public var canCheckpoint: Bool { true }
    public var rerunsInterruptedRestore: Bool { false }
    /// The kubelet leaves the container running: a second checkpoint is harmless.
    public var rerunsInterruptedCheckpoint: Bool { true }
    public var restorePrintsContainerID: Bool { false }
    public var checkpointLeavesContainerRunning: Bool { true }
    public var versionCommand: [String]? { nil }
    public func inspect(container: String) -> ContainerReport? { nil }
    public func restoreInPlaceCommand(container: String, options: RuntimeRestoreOptions) -> [String]? { nil }
    public func removeCommand(container: String) -> [String]? { nil }
    public func version(fromOutput output: String) -> String? { nil }

    public func checkpointFailureCode(exitStatus: Int32) -> AgentErrorCode? {
        KubeletCheckpoint.Outcome(rawValue: exitStatus).flatMap { $0 == .done ? nil : AgentErrorCode($0.code) }
    }
}

/// One call of the kubelet's checkpoint API, and the copy of the archive it names (what `ferry kubelet-checkpoint`
/// does).
public enum KubeletCheckpoint {
    /// What the kubelet answered, as stable codes (and the command's exit status).
    public enum Outcome: Int32, Sendable {
        case done = 0
        /// 401 or 403: the token or certificate is not allowed `create` on `nodes/checkpoint`.
        case unauthorized = 10
        /// 404: the `ContainerCheckpoint` feature gate is off, or no such pod or container.
        case notFound = 11
        /// 500: the runtime failed the checkpoint (its message follows).
        case runtimeError = 12
        /// No answer within the time limit.
        case timeout = 13
        /// The kubelet could not be reached, or answered something else.
        case unreachable = 14

        public var code: String {
            switch self {
            case .done: "OK"
            case .unauthorized: "KUBELET_UNAUTHORIZED"
            case .notFound: "KUBELET_NOT_FOUND"
            case .runtimeError: "KUBELET_CHECKPOINT_FAILED"
            case .timeout: "KUBELET_TIMEOUT"
            case .unreachable: "KUBELET_UNREACHABLE"
            }
        }
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var outcome: Outcome
        public var message: String
        public var description: String { "\(message) [\(outcome.code)]" }
    }

    /// Asks the kubelet to checkpoint `container` (`NAMESPACE/POD/CONTAINER`) and copies the archive it wrote to
    /// `output` (0600). `timeout` is passed on as the kubelet's `?timeout=` and bounds the whole call (plus as much
    /// again, at most 30 s, for the kubelet to answer after its runtime gave up).
    public static func run(_ endpoint: KubeletEndpoint, container: String, output: String, timeout: Int = 300) throws(Failure) {
        guard timeout > 0 else { throw Failure(outcome: .timeout, message: "the timeout must be a positive number of seconds") }
        let parts = container.split(separator: "/").map(String.init)
        guard parts.count == 3 else { throw Failure(outcome: .notFound, message: "\(container) is not NAMESPACE/POD/CONTAINER") }
        var token: String?
        if let file = endpoint.tokenFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw Failure(outcome: .unauthorized, message: "cannot read the kubelet token file \(file)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var components = URLComponents(url: endpoint.url, resolvingAgainstBaseURL: false)!
        let escaped = parts.map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? $0 }
        components.percentEncodedPath = (components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath)
            + "/checkpoint/" + escaped.joined(separator: "/")
        components.queryItems = [URLQueryItem(name: "timeout", value: String(timeout))]
        var request = TransferRequest(method: "POST", url: components.url!, body: .data(Data()), timeout: Double(timeout + min(timeout, 30)))
        if let token { request.setHeader("Authorization", "Bearer \(token)") }
        request.tls = .init(certificateAuthority: endpoint.certificateAuthorityFile,
                            clientCertificate: endpoint.clientCertificateFile, clientKey: endpoint.clientKeyFile)
        request.maximumBodyBytes = 1 << 20
        let response: TransferResponse
        do {
            response = try HTTPTransfer.perform(request)
        } catch {
            let timedOut = error.message.lowercased().contains("timed out") || error.message.lowercased().contains("timeout")
            throw Failure(outcome: timedOut ? .timeout : .unreachable, message: "the kubelet at \(endpoint.url.absoluteString): \(error.message)")
        }
        let text = String(decoding: response.body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        switch response.status {
        case 200: break
        case 401, 403:
            throw Failure(outcome: .unauthorized, message: "the kubelet refused the credentials (\(response.status)): \(text)")
        case 404:
            throw Failure(outcome: .notFound, message: "the kubelet has no checkpoint API or no container \(container) (404; the ContainerCheckpoint feature gate may be off): \(text)")
        case 500:
            throw Failure(outcome: .runtimeError, message: "the runtime failed the checkpoint of \(container): \(text)")
        default:
            throw Failure(outcome: .unreachable, message: "the kubelet answered \(response.status): \(text)")
        }
        struct Items: Decodable { var items: [String] }
        guard let items = try? JSONDecoder().decode(Items.self, from: response.body), let path = items.items.first, path.hasPrefix("/") else {
            throw Failure(outcome: .unreachable, message: "the kubelet's answer is not {\"items\":[\"PATH\"]}: \(text)")
        }
        do {
            try copy(path, to: output)
        } catch {
            throw Failure(outcome: .runtimeError, message: "the archive the kubelet wrote, \(path), cannot be read: \(error)")
        }
    }

    /// Copies a file into a new 0600 file.
    static func copy(_ source: String, to destination: String) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw CocoaError(.fileReadNoSuchFile) }
        defer { try? input.close() }
        let fd = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission) }
        defer { close(fd) }
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            guard chunk.withUnsafeBytes({ FileWrite.all(fd, $0) }) else { throw CocoaError(.fileWriteOutOfSpace) }
        }
        guard fsync(fd) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
}
