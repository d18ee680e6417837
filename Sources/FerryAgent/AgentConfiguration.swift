public import Foundation
import FerryHTTP

/// How `ferry agent` runs: the service it reports to, its name, where it listens and keeps its jobs, and the
/// runtime driver. Defaults: listen on 127.0.0.1:8090, work directory `./ferry-agent`, a heartbeat every 5 s,
/// the Podman driver, no download limit.
public struct AgentConfiguration: Sendable {
    /// The Ferry service, e.g. `http://ferry.example:8080`.
    public var server: URL
    /// This node's name in the service: letters, digits, `-`, `.`, `_`.
    public var node: String
    /// Sent to the service with every request, and required from it on every request to the agent.
    public var token: String?
    /// The address the agent's API listens on (an IP literal, `localhost`, or `0.0.0.0`/`::` for all).
    public var host = "127.0.0.1"
    /// The port of the agent's API; 0 lets the kernel choose (read it from ``NodeAgent/port``).
    public var port: UInt16 = 8090
    /// The URL the service uses to reach the agent; default `http://HOST:PORT` of `host` and the bound port.
    public var advertise: URL?
    public var driver: any RuntimeDriver = PodmanDriver()
    /// Jobs, archives and driver output live here (made 0700).
    public var workDirectory = "./ferry-agent"
    /// Seconds between heartbeats.
    public var heartbeatInterval: Double = 5
    /// A TargetFacts JSON file merged over the detected facts.
    public var factsFile: String?
    /// The service's provenance public key, pinned (nil: the service's, pinned on first use in the work directory).
    public var provenanceKeyFile: String?
    /// Download bandwidth limit in bytes per second; nil for none.
    public var maximumDownloadRate: Int64?
    /// A directory whose checkpoint archives the agent uploads as they appear (``CheckpointCollector``); nil for none.
    public var collectDirectory: String?
    /// What happens to a collected file once the catalog has it: `keep` or `remove`.
    public var afterUpload = "keep"

    /// Where the kubelet writes the archives of `POST /checkpoint/…`: collected by default when it exists.
    public static let kubeletCheckpointDirectory = "/var/lib/kubelet/checkpoints"

    /// The version the agent reports in heartbeats.
    public static let version = "ferry agent 0.1.0"

    public init(server: URL, node: String) {
        self.server = server
        self.node = node
    }

    /// Parses `HOST:PORT`, `[IPV6]:PORT` or `:PORT`.
    public mutating func setListen(_ text: String) throws(AgentConfigurationError) {
        switch ListenAddress.parse(text, defaultHost: host) {
        case .success(let address):
            host = address.host
            port = address.port
        case .failure(let error):
            throw AgentConfigurationError(error.description)
        }
    }

    /// The driver `--driver NAME` asks for.
    public static func driver(named name: String, restoreCommand: String?, checkpointCommand: String?,
                              kubelet: KubeletEndpoint? = nil) throws(AgentConfigurationError) -> any RuntimeDriver {
        if name != "kubelet", kubelet != nil {
            throw AgentConfigurationError("--kubelet-url and its files go with --driver kubelet")
        }
        switch name {
        case "kubelet":
            guard let kubelet else { throw AgentConfigurationError("--driver kubelet needs --kubelet-url https://HOST:10250") }
            guard kubelet.url.scheme == "https" || kubelet.url.scheme == "http", kubelet.url.host != nil else {
                throw AgentConfigurationError("--kubelet-url must be an https URL, not \(kubelet.url.absoluteString)")
            }
            for file in [kubelet.tokenFile, kubelet.certificateAuthorityFile, kubelet.clientCertificateFile, kubelet.clientKeyFile].compactMap({ $0 })
            where !FileManager.default.isReadableFile(atPath: file) {
                throw AgentConfigurationError("cannot read \(file)")
            }
            guard (kubelet.clientCertificateFile == nil) == (kubelet.clientKeyFile == nil) else {
                throw AgentConfigurationError("--kubelet-cert-file and --kubelet-key-file go together")
            }
            return KubeletDriver(endpoint: kubelet)
        case "podman", "criu":
            guard restoreCommand == nil && checkpointCommand == nil else {
                throw AgentConfigurationError("--restore-command and --checkpoint-command go with --driver command")
            }
            return name == "podman" ? PodmanDriver() : CRIUDriver()
        case "command":
            guard let restoreCommand, !restoreCommand.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw AgentConfigurationError("--driver command needs --restore-command 'PROGRAM ARGS…'")
            }
            return CommandDriver(restore: restoreCommand, checkpoint: checkpointCommand)
        default:
            throw AgentConfigurationError("--driver is podman, criu, command or kubelet, not \(name)")
        }
    }

    /// Whether `host` is a loopback address, the only kind the agent listens on without a token.
    public var isLoopback: Bool { ListenAddress(host: host, port: port).isLoopback }

    /// Checks what can be checked before binding.
    public func validate() throws(AgentConfigurationError) {
        guard server.scheme == "http" || server.scheme == "https", server.host != nil else {
            throw AgentConfigurationError("--server must be an http(s) URL, not \(server.absoluteString)")
        }
        guard !node.isEmpty, node.count <= 253,
              node.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }) else {
            throw AgentConfigurationError("--node is letters, digits, '-', '.' and '_', not \(node.isEmpty ? "empty" : node)")
        }
        guard token != nil || isLoopback else {
            throw AgentConfigurationError("refusing to listen on \(host) without a token: give --token, or listen on 127.0.0.1")
        }
        if let token, token.isEmpty || token.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw AgentConfigurationError("--token must be non-empty and without spaces")
        }
        if let advertise {
            guard advertise.scheme == "http" || advertise.scheme == "https", advertise.host != nil else {
                throw AgentConfigurationError("--advertise must be an http(s) URL, not \(advertise.absoluteString)")
            }
        } else if ["", "0.0.0.0", "::"].contains(host) {
            throw AgentConfigurationError("listening on all addresses: give --advertise http://ADDRESS:PORT, the URL the service can reach")
        }
        guard heartbeatInterval > 0, heartbeatInterval <= 3600 else {
            throw AgentConfigurationError("--heartbeat is between 0 and 3600 seconds")
        }
        guard CheckpointCollector.AfterUpload(rawValue: afterUpload) != nil else {
            throw AgentConfigurationError("--after-upload is keep or remove, not \(afterUpload)")
        }
        if let collectDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: collectDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw AgentConfigurationError("--collect: \(collectDirectory) is not a directory")
            }
        }
        if let maximumDownloadRate, maximumDownloadRate <= 0 {
            throw AgentConfigurationError("--max-download-rate is a positive number of bytes per second")
        }
    }

    /// `advertise`, or `http://HOST:PORT` with the port the agent is bound to.
    func agentURL(port: UInt16) -> String {
        if let advertise { return advertise.absoluteString }
        let literal = host.contains(":") ? "[\(host)]" : host
        return "http://\(literal):\(port)"
    }
}

/// A configuration the agent cannot run with.
public struct AgentConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
