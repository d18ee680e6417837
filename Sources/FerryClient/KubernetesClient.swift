public import FerryAPI
public import Foundation
internal import Yams

/// A failure talking to Kubernetes, with a stable code: KUBECONFIG_INVALID (no usable credentials),
/// KUBERNETES_UNREACHABLE, KUBERNETES_UNAUTHORIZED (401/403), KUBERNETES_NOT_FOUND (404), POD_EXISTS (409),
/// POD_INVALID (422), KUBERNETES_FAILED (any other answer).
public struct KubernetesError: Error, Sendable, CustomStringConvertible {
    public var code: String
    public var message: String
    public var description: String { "\(message) [\(code)]" }

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Where the Kubernetes API is and how to prove who we are: a kubeconfig's current (or named) context, or the
/// service account of the pod we run in.
public struct KubernetesCredentials: Sendable {
    public var server: URL
    public var token: String?
    public var tls: TransferRequest.TLSFiles
    /// The context's namespace, if it names one.
    public var namespace: String?
    /// Where the credentials came from, for messages.
    public var origin: String
    /// A private directory holding PEM files written from `*-data` fields; `discard()` removes it.
    var scratch: URL?

    /// The service account's files in a pod.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// Credentials in kubectl's order: `kubeconfig` if given, else `$KUBECONFIG` (its first file), else the pod's
    /// service account when `KUBERNETES_SERVICE_HOST` is set, else `~/.kube/config`.
    public static func load(kubeconfig: String?, context: String?,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            serviceAccount: String = serviceAccountDirectory) throws(KubernetesError) -> KubernetesCredentials {
        if let kubeconfig { return try fromKubeconfig(kubeconfig, context: context) }
        if let paths = environment["KUBECONFIG"], let first = paths.split(separator: ":").first {
            return try fromKubeconfig(String(first), context: context)
        }
        if let host = environment["KUBERNETES_SERVICE_HOST"], FileManager.default.fileExists(atPath: serviceAccount + "/token") {
            return try inCluster(host: host, port: environment["KUBERNETES_SERVICE_PORT"] ?? "443", directory: serviceAccount)
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return try fromKubeconfig(home + "/.kube/config", context: context)
    }

    /// The pod's service account: token, CA and namespace from `serviceAccountDirectory`.
    public static func inCluster(host: String, port: String, directory: String = serviceAccountDirectory) throws(KubernetesError) -> KubernetesCredentials {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        guard let url = URL(string: "https://\(hostPart):\(port)") else {
            throw KubernetesError("KUBECONFIG_INVALID", "KUBERNETES_SERVICE_HOST \(host) is not a host")
        }
        guard let token = try? String(contentsOfFile: directory + "/token", encoding: .utf8) else {
            throw KubernetesError("KUBECONFIG_INVALID", "cannot read the service account token in \(directory)")
        }
        let namespace = try? String(contentsOfFile: directory + "/namespace", encoding: .utf8)
        return KubernetesCredentials(
            server: url, token: token.trimmingCharacters(in: .whitespacesAndNewlines),
            tls: .init(certificateAuthority: directory + "/ca.crt"),
            namespace: namespace?.trimmingCharacters(in: .whitespacesAndNewlines), origin: "the pod's service account")
    }

    /// A kubeconfig file (YAML): `context` or its `current-context`, that context's cluster and user. Supports a
    /// bearer `token` or `tokenFile`, client certificates (files or `-data`), CA files or `-data`. Exec and
    /// auth-provider plugins are refused with a clear error (Ferry runs no programs a file names).
    public static func fromKubeconfig(_ path: String, context wanted: String?) throws(KubernetesError) -> KubernetesCredentials {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw KubernetesError("KUBECONFIG_INVALID", "cannot read the kubeconfig \(path): \(error.localizedDescription)")
        }
        let root: [String: Any]
        do {
            guard let loaded = try Yams.load(yaml: text) as? [String: Any] else {
                throw KubernetesError("KUBECONFIG_INVALID", "the kubeconfig \(path) is not a YAML mapping")
            }
            root = loaded
        } catch let error as KubernetesError {
            throw error
        } catch {
            throw KubernetesError("KUBECONFIG_INVALID", "the kubeconfig \(path) is not valid YAML: \(error)")
        }
        func named(_ list: String, _ name: String) -> [String: Any]? {
            (root[list] as? [[String: Any]])?.first { $0["name"] as? String == name }
        }
        guard let contextName = wanted ?? root["current-context"] as? String, !contextName.isEmpty else {
            throw KubernetesError("KUBECONFIG_INVALID", "the kubeconfig \(path) has no current-context; name one with --context")
        }
        guard let context = named("contexts", contextName)?["context"] as? [String: Any] else {
            throw KubernetesError("KUBECONFIG_INVALID", "the kubeconfig \(path) has no context \(contextName)")
        }
        guard let clusterName = context["cluster"] as? String,
              let cluster = named("clusters", clusterName)?["cluster"] as? [String: Any],
              let serverText = cluster["server"] as? String, let server = URL(string: serverText),
              server.scheme == "https" || server.scheme == "http" else {
            throw KubernetesError("KUBECONFIG_INVALID", "context \(contextName) in \(path) names no cluster with an http(s) server")
        }
        let user = (context["user"] as? String).flatMap { named("users", $0)?["user"] as? [String: Any] } ?? [:]
        if user["exec"] != nil || user["auth-provider"] != nil {
            throw KubernetesError("KUBECONFIG_INVALID",
                "context \(contextName) authenticates through an exec or auth-provider plugin, which Ferry does not run; use a token or a client certificate")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func file(_ value: Any?) -> String? {
            guard let name = value as? String, !name.isEmpty else { return nil }
            return name.hasPrefix("/") ? name : base.appendingPathComponent(name).path
        }
        var credentials = KubernetesCredentials(server: server, token: nil, tls: .init(),
                                                namespace: context["namespace"] as? String,
                                                origin: "\(path) (context \(contextName))")
        do throws(KubernetesError) {
            // A file named beats inline data, as in kubectl.
            credentials.tls.certificateAuthority = file(cluster["certificate-authority"])
            if credentials.tls.certificateAuthority == nil {
                credentials.tls.certificateAuthority = try credentials.written(cluster["certificate-authority-data"], as: "ca.crt")
            }
            credentials.tls.clientCertificate = file(user["client-certificate"])
            if credentials.tls.clientCertificate == nil {
                credentials.tls.clientCertificate = try credentials.written(user["client-certificate-data"], as: "client.crt")
            }
            credentials.tls.clientKey = file(user["client-key"])
            if credentials.tls.clientKey == nil {
                credentials.tls.clientKey = try credentials.written(user["client-key-data"], as: "client.key")
            }
            if let token = user["token"] as? String, !token.isEmpty {
                credentials.token = token
            } else if let tokenFile = file(user["tokenFile"]) {
                guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                    throw KubernetesError("KUBECONFIG_INVALID", "cannot read the token file \(tokenFile)")
                }
                credentials.token = token.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        } catch {
            credentials.discard()
            throw error
        }
        return credentials
    }

    /// Writes a base64 `-data` field to a 0600 file in a private 0700 directory (libcurl reads PEM from files).
    private mutating func written(_ value: Any?, as name: String) throws(KubernetesError) -> String? {
        guard let text = value as? String, !text.isEmpty else { return nil }
        guard let bytes = Data(base64Encoded: text, options: .ignoreUnknownCharacters) else {
            throw KubernetesError("KUBECONFIG_INVALID", "\(origin): a -data field is not base64")
        }
        if scratch == nil {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-kube-\(UUID().uuidString)")
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw KubernetesError("KUBECONFIG_INVALID", "cannot make a private directory for the kubeconfig's certificates: \(error)")
            }
            scratch = directory
        }
        let path = scratch!.appendingPathComponent(name).path
        guard FileManager.default.createFile(atPath: path, contents: bytes, attributes: [.posixPermissions: 0o600]) else {
            throw KubernetesError("KUBECONFIG_INVALID", "cannot write \(path)")
        }
        return path
    }

    /// Removes the PEM files written from `-data` fields.
    public func discard() {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }
}

/// The few objects of the Kubernetes API Ferry reads, with only the fields it uses.
public enum KubernetesObjects {
    public struct Metadata: Decodable, Sendable {
        public var name: String?
        public var namespace: String?
        public var uid: String?
        public var annotations: [String: String]?
    }

    public struct Node: Decodable, Sendable {
        public struct Info: Decodable, Sendable {
            public var containerRuntimeVersion: String?
            public var kubeletVersion: String?
            public var architecture: String?
        }
        public struct Condition: Decodable, Sendable {
            public var type: String
            public var status: String
            public var message: String?
        }
        public struct Status: Decodable, Sendable {
            public var nodeInfo: Info?
            public var conditions: [Condition]?
        }
        public var metadata: Metadata
        public var status: Status?
    }

    public struct Pod: Decodable, Sendable {
        public struct ContainerState: Decodable, Sendable {
            public struct Detail: Decodable, Sendable {
                public var reason: String?
                public var message: String?
                public var exitCode: Int?
            }
            public var running: [String: String]?
            public var waiting: Detail?
            public var terminated: Detail?
        }
        public struct ContainerStatus: Decodable, Sendable {
            public var name: String
            public var state: ContainerState?
        }
        public struct Status: Decodable, Sendable {
            public var phase: String?
            public var reason: String?
            public var message: String?
            public var containerStatuses: [ContainerStatus]?
        }
        public var metadata: Metadata
        public var status: Status?
    }

    /// The API's error body.
    struct Status: Decodable {
        var message: String?
        var reason: String?
    }
}

/// Where a Pod that restores a checkpoint stands.
public enum PodProgress: Sendable, Equatable {
    /// Scheduled, pulling, restoring: not decided yet (`detail` says what the kubelet last said).
    case pending(detail: String)
    /// Its container runs: the checkpoint is restored.
    case running
    /// It will not run: a stable code and the kubelet's words.
    case failed(code: String, message: String)

    /// Waiting reasons after which the kubelet does not succeed without a change to the Pod or the node.
    /// (ErrImagePull alone is retried by the kubelet; ImagePullBackOff is its verdict after the retry.)
    static let fatalWaitingReasons: [String: String] = [
        "ImagePullBackOff": "IMAGE_PULL_FAILED", "ErrImageNeverPull": "IMAGE_PULL_FAILED", "InvalidImageName": "IMAGE_PULL_FAILED",
        "CreateContainerError": "RESTORE_FAILED", "CreateContainerConfigError": "RESTORE_FAILED",
        "RunContainerError": "RESTORE_FAILED", "CrashLoopBackOff": "RESTORE_FAILED",
    ]

    public init(_ pod: KubernetesObjects.Pod, container: String) {
        let status = pod.status
        let state = status?.containerStatuses?.first { $0.name == container }?.state
        if let terminated = state?.terminated {
            self = .failed(code: "RESTORED_CONTAINER_EXITED",
                           message: "the container ended (exit \(terminated.exitCode.map(String.init) ?? "?")\(terminated.reason.map { ", " + $0 } ?? ""))\(terminated.message.map { ": " + $0 } ?? "")")
            return
        }
        if status?.phase == "Failed" {
            self = .failed(code: "POD_FAILED", message: [status?.reason, status?.message].compactMap { $0 }.joined(separator: ": "))
            return
        }
        if state?.running != nil {
            self = .running
            return
        }
        if let waiting = state?.waiting, let reason = waiting.reason {
            if let code = Self.fatalWaitingReasons[reason] {
                self = .failed(code: code, message: reason + (waiting.message.map { ": " + $0 } ?? ""))
                return
            }
            self = .pending(detail: reason + (waiting.message.map { ": " + $0 } ?? ""))
            return
        }
        self = .pending(detail: status?.phase ?? "created")
    }
}

/// A blocking client of the few Kubernetes API calls a restore needs, over libcurl (`HTTPTransfer`).
public struct KubernetesClient: Sendable {
    public let credentials: KubernetesCredentials

    public init(credentials: KubernetesCredentials) {
        self.credentials = credentials
    }

    /// `GET /api/v1/nodes/{name}`.
    public func node(_ name: String) throws(KubernetesError) -> KubernetesObjects.Node {
        try decode(call("GET", "/api/v1/nodes/\(Self.segment(name))"))
    }

    /// The kubelet's feature gates from its live configuration (`GET /api/v1/nodes/{name}/proxy/configz`, which
    /// needs `get` on `nodes/proxy`); nil when they cannot be read.
    public func kubeletFeatureGates(node name: String) -> [String: Bool]? {
        guard let data = try? call("GET", "/api/v1/nodes/\(Self.segment(name))/proxy/configz"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let configuration = object["kubeletconfig"] as? [String: Any] else { return nil }
        return (configuration["featureGates"] as? [String: Bool]) ?? [:]
    }

    /// `POST /api/v1/namespaces/{ns}/pods`.
    public func createPod(_ pod: RestorePod) throws(KubernetesError) -> KubernetesObjects.Pod {
        let body: Data
        do {
            body = try JSONEncoder().encode(pod)
        } catch {
            throw KubernetesError("POD_INVALID", "the Pod cannot be encoded: \(error)")
        }
        return try decode(call("POST", "/api/v1/namespaces/\(Self.segment(pod.metadata.namespace))/pods", body: body))
    }

    /// `GET /api/v1/namespaces/{ns}/pods/{name}`.
    public func pod(namespace: String, name: String) throws(KubernetesError) -> KubernetesObjects.Pod {
        try decode(call("GET", "/api/v1/namespaces/\(Self.segment(namespace))/pods/\(Self.segment(name))"))
    }

    private func call(_ method: String, _ path: String, body: Data? = nil) throws(KubernetesError) -> Data {
        guard let url = URL(string: credentials.server.absoluteString.trimmingSuffix("/") + path) else {
            throw KubernetesError("KUBECONFIG_INVALID", "\(credentials.server) does not make a URL with \(path)")
        }
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let token = credentials.token { headers.append(("Authorization", "Bearer " + token)) }
        if body != nil { headers.append(("Content-Type", "application/json")) }
        var request = TransferRequest(method: method, url: url, headers: headers, body: body.map { .data($0) } ?? .none, timeout: 30)
        request.tls = credentials.tls
        request.maximumBodyBytes = 8 << 20
        let response: TransferResponse
        do {
            response = try HTTPTransfer.perform(request)
        } catch {
            throw KubernetesError("KUBERNETES_UNREACHABLE", "the Kubernetes API at \(credentials.server) cannot be reached: \(error.message)")
        }
        guard (200..<300).contains(response.status) else {
            let status = try? JSONDecoder().decode(KubernetesObjects.Status.self, from: response.body)
            let said = status?.message ?? String(decoding: response.body.prefix(300), as: UTF8.self)
            let code = switch response.status {
            case 401, 403: "KUBERNETES_UNAUTHORIZED"
            case 404: "KUBERNETES_NOT_FOUND"
            case 409: "POD_EXISTS"
            case 422: "POD_INVALID"
            default: "KUBERNETES_FAILED"
            }
            throw KubernetesError(code, "\(method) \(path): \(response.status) \(said)")
        }
        return response.body
    }

    private func decode<T: Decodable>(_ data: Data) throws(KubernetesError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw KubernetesError("KUBERNETES_FAILED", "the Kubernetes API's answer is not a \(T.self): \(error)")
        }
    }

    /// A path segment, percent-encoded.
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
