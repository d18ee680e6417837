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
    @Option(help: "Runtime driver: podman, criu or command (default podman).") var driver: String = "podman"
    @Option(help: "Restore command template of the command driver.") var restoreCommand: String?
    @Option(help: "Checkpoint command template of the command driver.") var checkpointCommand: String?
    @Option(help: "Work directory for jobs and archives (default ./ferry-agent).") var workDir: String?
    @Option(help: "Seconds between heartbeats (default 5).") var heartbeat: Double?
    @Option(help: "A TargetFacts JSON file merged over the detected facts.") var factsFile: String?
    @Option(help: "Download limit in bytes per second, e.g. 500000 or 50M (default none).") var maxDownloadRate: String?
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
            configuration.driver = try AgentConfiguration.driver(
                named: driver, restoreCommand: restoreCommand, checkpointCommand: checkpointCommand)
            if let workDir { configuration.workDirectory = workDir }
            if let heartbeat { configuration.heartbeatInterval = heartbeat }
            configuration.factsFile = factsFile
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
