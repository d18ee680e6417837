import ArgumentParser
import FerryAgent
import FerryServer
import Foundation

/// `ferry agent`: the per-node agent that restores and checkpoints containers for the service.
struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the node agent: heartbeats to the service, restore and checkpoint jobs with a runtime driver.",
        discussion: """
            Defaults: listen on 127.0.0.1:8090, work directory ./ferry-agent, a heartbeat every 5 s, the podman \
            driver. Environment: FERRY_SERVER, FERRY_NODE, FERRY_TOKEN. Without a token the agent listens on \
            loopback only. The command driver splits its templates on spaces (no shell) and replaces {archive}, \
            {name}, {container}, {output}, {options_json}, {checkpoint} and {job}, e.g. \
            --restore-command '/usr/local/bin/restore.sh {archive} {options_json}'. SIGTERM or SIGINT stops \
            accepting, lets running jobs be saved (they resume at the next start) and exits 0.
            """
    )

    @Option(help: "The Ferry service, e.g. http://ferry:8080 (default: $FERRY_SERVER).") var server: String?
    @Option(help: "This node's name: letters, digits, '-', '.', '_' (default: $FERRY_NODE).") var node: String?
    @Option(help: "Bearer token, sent to the service and required from it (default: $FERRY_TOKEN).") var token: String?
    @Option(help: "Address of the agent's API, HOST:PORT or [IPV6]:PORT (default 127.0.0.1:8090).") var listen: String?
    @Option(help: "The URL the service reaches the agent at (default http://LISTEN).") var advertise: String?
    @Option(help: "Runtime driver: podman, criu, command or kubelet (default podman).") var driver: String = "podman"
    @Option(help: "Restore command template of the command driver.") var restoreCommand: String?
    @Option(help: "Checkpoint command template of the command driver.") var checkpointCommand: String?
    @Option(help: "Work directory for jobs and archives (default ./ferry-agent).") var workDir: String?
    @Option(help: "Seconds between heartbeats (default 5).") var heartbeat: Double?
    @Option(help: "A TargetFacts JSON file merged over the detected facts.") var factsFile: String?
    @Option(help: "The service's provenance public key to trust (default: the service's, pinned in the work directory on first use).") var provenanceKey: String?
    @Option(help: "Download limit in bytes per second, e.g. 500000 or 50M (default none).") var maxDownloadRate: String?
    @Option(help: "The kubelet driver's kubelet, e.g. https://127.0.0.1:10250 ($FERRY_KUBELET_URL).") var kubeletURL: String?
    @Option(help: "File with the bearer token the kubelet takes ($FERRY_KUBELET_TOKEN_FILE).") var kubeletTokenFile: String?
    @Option(help: "CA bundle the kubelet's certificate chains to ($FERRY_KUBELET_CA_FILE).") var kubeletCAFile: String?
    @Option(help: "Client certificate for the kubelet, PEM ($FERRY_KUBELET_CERT_FILE).") var kubeletCertFile: String?
    @Option(help: "Client key for the kubelet, PEM ($FERRY_KUBELET_KEY_FILE).") var kubeletKeyFile: String?
    @Option(help: "Upload every checkpoint archive that appears in DIR, once (default: /var/lib/kubelet/checkpoints when it exists; 'none' for no collecting; $FERRY_COLLECT).") var collect: String?
    @Option(help: "What to do with a collected file once the catalog has it: keep or remove (default keep; $FERRY_AFTER_UPLOAD).") var afterUpload: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        do {
            guard let serverText = server ?? environment["FERRY_SERVER"] else {
                throw AgentConfigurationError("give --server URL (or FERRY_SERVER)")
            }
            guard let serverURL = URL(string: serverText) else {
                throw AgentConfigurationError("--server must be an http(s) URL, not \(serverText)")
            }
            guard let nodeName = node ?? environment["FERRY_NODE"] else {
                throw AgentConfigurationError("give --node NAME (or FERRY_NODE)")
            }
            var configuration = AgentConfiguration(server: serverURL, node: nodeName)
            configuration.token = token ?? environment["FERRY_TOKEN"]
            if let listen { try configuration.setListen(listen) }
            if let advertise {
                guard let url = URL(string: advertise) else {
                    throw AgentConfigurationError("--advertise must be an http(s) URL, not \(advertise)")
                }
                configuration.advertise = url
            }
            var kubelet: KubeletEndpoint?
            if let text = kubeletURL ?? environment["FERRY_KUBELET_URL"] {
                guard let url = URL(string: text) else { throw AgentConfigurationError("--kubelet-url must be an https URL, not \(text)") }
                kubelet = KubeletEndpoint(
                    url: url, tokenFile: kubeletTokenFile ?? environment["FERRY_KUBELET_TOKEN_FILE"],
                    certificateAuthorityFile: kubeletCAFile ?? environment["FERRY_KUBELET_CA_FILE"],
                    clientCertificateFile: kubeletCertFile ?? environment["FERRY_KUBELET_CERT_FILE"],
                    clientKeyFile: kubeletKeyFile ?? environment["FERRY_KUBELET_KEY_FILE"])
            }
            configuration.driver = try AgentConfiguration.driver(
                named: driver, restoreCommand: restoreCommand, checkpointCommand: checkpointCommand, kubelet: kubelet)
            if let workDir { configuration.workDirectory = workDir }
            if let heartbeat { configuration.heartbeatInterval = heartbeat }
            configuration.factsFile = factsFile
            configuration.provenanceKeyFile = provenanceKey
            configuration.maximumDownloadRate = try maxDownloadRate.map(ServerConfiguration.parseSize)
            switch collect ?? environment["FERRY_COLLECT"] {
            case "none", "":
                configuration.collectDirectory = nil
            case let directory?:
                configuration.collectDirectory = directory
            case nil:
                var isDirectory: ObjCBool = false
                let kubelet = AgentConfiguration.kubeletCheckpointDirectory
                if FileManager.default.fileExists(atPath: kubelet, isDirectory: &isDirectory), isDirectory.boolValue {
                    configuration.collectDirectory = kubelet
                }
            }
            configuration.afterUpload = afterUpload ?? environment["FERRY_AFTER_UPLOAD"] ?? "keep"
            try NodeAgent.run(configuration, log: ServeCommand.log)
        } catch {
            FileHandle.standardError.write(Data("ferry: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// `ferry kubelet-checkpoint`: one call of the kubelet's checkpoint API, as the kubelet driver's jobs run it. The
/// exit status says what the kubelet answered (0 done, 10 unauthorised, 11 not found, 12 runtime error, 13 time
/// out, 14 unreachable), with one line on stderr.
struct KubeletCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubelet-checkpoint", abstract: "Checkpoint a container through the kubelet API (the kubelet driver runs this).",
        shouldDisplay: false)

    @Option var kubeletURL: String
    @Option var kubeletTokenFile: String?
    @Option var kubeletCAFile: String?
    @Option var kubeletCertFile: String?
    @Option var kubeletKeyFile: String?
    @Option(help: "Seconds the kubelet may take (its ?timeout=).") var timeout: Int = 300
    @Argument(help: "NAMESPACE/POD/CONTAINER") var container: String
    @Argument(help: "Where the archive goes.") var output: String

    func run() throws {
        guard let url = URL(string: kubeletURL) else { throw ValidationError("--kubelet-url must be a URL") }
        let endpoint = KubeletEndpoint(url: url, tokenFile: kubeletTokenFile, certificateAuthorityFile: kubeletCAFile,
                                       clientCertificateFile: kubeletCertFile, clientKeyFile: kubeletKeyFile)
        do throws(KubeletCheckpoint.Failure) {
            try KubeletCheckpoint.run(endpoint, container: container, output: output, timeout: timeout)
        } catch {
            FileHandle.standardError.write(Data("ferry: \(error.description)\n".utf8))
            throw ExitCode(error.outcome.rawValue)
        }
    }
}
