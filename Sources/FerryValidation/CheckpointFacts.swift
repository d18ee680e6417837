public import CheckpointArchive
internal import Foundation

/// What ``Preflight`` needs to know about a checkpoint, small enough to keep as JSON in a catalog row so a
/// target can be checked without reading the archive again. JSON keys are snake_case.
public struct CheckpointFacts: Codable, Sendable, Equatable {
    /// One network the container was attached to, with the addresses and MACs a Podman restore re-requests.
    public struct Network: Codable, Sendable, Equatable {
        public var name: String
        public var interfaces: [Interface]

        public init(name: String, interfaces: [Interface]) {
            self.name = name
            self.interfaces = interfaces
        }
    }

    /// One interface of a ``Network``.
    public struct Interface: Codable, Sendable, Equatable {
        public var name: String
        /// CIDR, e.g. `10.88.0.6/16`.
        public var addresses: [String]
        public var mac: String?

        public init(name: String, addresses: [String], mac: String? = nil) {
            self.name = name
            self.addresses = addresses
            self.mac = mac
        }
    }

    public var engine: ContainerEngine
    /// `uname -m` form (`x86_64`, `aarch64`) from the CRIU core image, else the image annotation's `host.arch`.
    public var architecture: String?
    /// OCI runtime name from `config.dump`, else the image annotation's `runtime.name`.
    public var runtime: String?
    public var containerID: String
    public var containerName: String
    /// `rootfsImageName`.
    public var image: String?
    /// Podman `rootfsImageID`, CRI-O/containerd `rootfsImageRef`.
    public var imageID: String?
    /// As the user asked for it (`rootfsImage`, Podman `RawImageName`).
    public var imageRequested: String?
    /// The base image pinned by digest (`name@sha256:…`), as a node can pull it: CRI-O's `ImageRef` annotation, or
    /// `rootfsImageRef` when it is one. Nil when the archive names the base image by ID or tag only.
    public var imageDigestReference: String?
    /// Labels the runtime recorded on the container other than Kubernetes' own `io.kubernetes.*` (CRI-O's `Labels`).
    public var labels: [String: String]?
    /// The memory and CPU limits of the container's OCI spec.
    public var resources: ContainerResources?
    public var networks: [Network]
    /// CRI-O `io.kubernetes.cri-o.IP.N`, in index order.
    public var podIPs: [String]
    /// Whether any socket is an established TCP connection; nil when the CRIU images were not decoded.
    public var hasEstablishedTCP: Bool?
    /// The distinct local addresses of those connections (loopback ones survive an IP change).
    public var establishedTCPAddresses: [String]
    /// Inventory `tcp_close`: connections were closed at dump, so none need restoring.
    public var tcpClose: Bool?
    /// The CRIU that dumped, as an integer (`40300`), from the checkpoint-image annotations.
    public var criuVersion: Int?
    /// Dumping host's kernel (`uname -r`), from the checkpoint-image annotations.
    public var hostKernel: String?
    /// Dumping host's cgroup version (`v1`, `v2`), from the checkpoint-image annotations.
    public var cgroupVersion: String?

    enum CodingKeys: String, CodingKey {
        case engine, architecture, runtime, image, networks
        case containerID = "container_id"
        case containerName = "container_name"
        case imageID = "image_id"
        case imageRequested = "image_requested"
        case imageDigestReference = "image_digest_reference"
        case labels, resources
        case podIPs = "pod_ips"
        case hasEstablishedTCP = "has_established_tcp"
        case establishedTCPAddresses = "established_tcp_addresses"
        case tcpClose = "tcp_close"
        case criuVersion = "criu_version"
        case hostKernel = "host_kernel"
        case cgroupVersion = "cgroup_version"
    }

    enum AnnotationNames {
        static let crioImageRef = "io.kubernetes.cri-o.ImageRef"
        static let crioLabels = "io.kubernetes.cri-o.Labels"
    }

    /// Podman `--create-image` annotations (`io.podman.annotations.checkpoint.*`) and their checkpointctl
    /// equivalents (`org.criu.checkpoint.*`), Podman first.
    enum ImageAnnotation {
        static let podman = "io.podman.annotations.checkpoint."
        static let checkpointctl = "org.criu.checkpoint."

        static func value(_ annotations: [String: String], podman: String, checkpointctl: String) -> String? {
            let value = annotations[Self.podman + podman] ?? annotations[Self.checkpointctl + checkpointctl]
            return value.flatMap { $0.isEmpty ? nil : $0 }
        }
    }

    /// Facts given field by field: a running container as its runtime describes it, before any checkpoint exists.
    public init(engine: ContainerEngine, architecture: String? = nil, runtime: String? = nil, containerID: String,
                containerName: String, image: String? = nil, imageID: String? = nil, imageRequested: String? = nil,
                networks: [Network] = [], podIPs: [String] = [], hasEstablishedTCP: Bool? = nil,
                establishedTCPAddresses: [String] = [], tcpClose: Bool? = nil) {
        self.engine = engine
        self.architecture = architecture
        self.runtime = runtime
        self.containerID = containerID
        self.containerName = containerName
        self.image = image
        self.imageID = imageID
        self.imageRequested = imageRequested
        self.networks = networks
        self.podIPs = podIPs
        self.hasEstablishedTCP = hasEstablishedTCP
        self.establishedTCPAddresses = establishedTCPAddresses
        self.tcpClose = tcpClose
    }

    /// `name@sha256:<64 hex>`: a reference a registry resolves to exactly one image.
    public static func isDigestReference(_ text: String) -> Bool {
        guard let at = text.range(of: "@sha256:"), at.lowerBound > text.startIndex else { return false }
        let hex = text[at.upperBound...]
        return hex.count == 64 && hex.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// Gathers the facts from a manifest. `imageAnnotations` are the annotations of the OCI checkpoint image the
    /// archive came from, when there was one (Podman writes the host facts only there); the manifest's `spec.dump`
    /// annotations are searched too.
    public init(manifest: CheckpointManifest, imageAnnotations: [String: String] = [:]) {
        let annotations = manifest.annotations.merging(manifest.sourceImage?.annotations ?? [:]) { _, image in image }
            .merging(imageAnnotations) { _, image in image }
        engine = manifest.engine
        architecture = manifest.criu?.architecture.flatMap { $0 == .unknown ? nil : $0.name }
            ?? ImageAnnotation.value(annotations, podman: "host.arch", checkpointctl: "host.arch")
        runtime = manifest.container.runtime.flatMap { $0.isEmpty ? nil : $0 }
            ?? ImageAnnotation.value(annotations, podman: "runtime.name", checkpointctl: "runtime.name")
        containerID = manifest.container.id
        containerName = manifest.container.name
        image = manifest.container.image
        imageID = manifest.container.imageID
        imageRequested = manifest.container.imageRequested
        imageDigestReference = [manifest.annotations[AnnotationNames.crioImageRef], manifest.container.imageID,
                                manifest.container.image]
            .compactMap { $0 }.first { Self.isDigestReference($0) }
        if let text = manifest.annotations[AnnotationNames.crioLabels],
           let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
            let recorded = object.compactMapValues { $0 as? String }.filter { !$0.key.hasPrefix("io.kubernetes.") }
            labels = recorded.isEmpty ? nil : recorded
        }
        resources = manifest.resources
        networks = manifest.networks.map { network in
            Network(
                name: network.name,
                interfaces: network.interfaces.map { Interface(name: $0.name, addresses: $0.addresses, mac: $0.mac) })
        }
        podIPs = NetworkRules.podIPAnnotations(manifest.annotations).map(\.value)
        if let criu = manifest.criu {
            let established = criu.sockets.flatMap(\.sockets).filter {
                $0.kind == .inet && $0.protocolName == "TCP" && $0.state == "ESTABLISHED"
            }
            hasEstablishedTCP = !established.isEmpty
            var addresses: [String] = []
            for socket in established where !addresses.contains(socket.sourceAddress) {
                addresses.append(socket.sourceAddress)
            }
            establishedTCPAddresses = addresses
            tcpClose = criu.inventory?.tcpClose
        } else {
            hasEstablishedTCP = nil
            establishedTCPAddresses = []
            tcpClose = nil
        }
        criuVersion = ImageAnnotation.value(annotations, podman: "criu.version", checkpointctl: "criu.version")
            .flatMap { Int($0) }
        hostKernel = ImageAnnotation.value(annotations, podman: "host.kernel", checkpointctl: "host.kernel")
        cgroupVersion = ImageAnnotation.value(annotations, podman: "cgroups.version", checkpointctl: "cgroup.version")
    }
}
