/// What a target node reports about itself for ``Preflight`` (from its agent, or a JSON file for
/// `ferry validate --target-facts`). JSON keys are snake_case. A nil fact is unknown and its rules are skipped; an
/// empty list is a known empty list.
public struct TargetFacts: Codable, Sendable, Equatable {
    /// One network on the target: its name and one subnet (list a dual-stack network once per subnet).
    public struct Network: Codable, Sendable, Equatable {
        public var name: String
        /// CIDR, e.g. `10.88.0.0/16`.
        public var subnet: String

        public init(name: String, subnet: String) {
            self.name = name
            self.subnet = subnet
        }
    }

    /// `uname -m` (`x86_64`) or Go's `GOARCH` (`amd64`); both are understood.
    public var architecture: String?
    /// CRIU as an integer, as `criu --version` maps to Podman's `criu.version` (`40200` for 4.2).
    public var criuVersion: Int?
    /// OCI runtimes installed (`runc`, `crun`, …).
    public var runtimes: [String]?
    /// `uname -r`.
    public var kernel: String?
    /// `v1` or `v2` (`1`, `2`, `cgroup2` are understood).
    public var cgroupVersion: String?
    /// Image names (`localhost/busybox:test`) and IDs (`sha256:…`, bare or short hex) present.
    public var images: [String]?
    public var ipsInUse: [String]?
    public var macsInUse: [String]?
    public var networks: [Network]?
    public var containerNames: [String]?
    public var containerIDs: [String]?

    public init(
        architecture: String? = nil, criuVersion: Int? = nil, runtimes: [String]? = nil, kernel: String? = nil,
        cgroupVersion: String? = nil, images: [String]? = nil, ipsInUse: [String]? = nil, macsInUse: [String]? = nil,
        networks: [Network]? = nil, containerNames: [String]? = nil, containerIDs: [String]? = nil
    ) {
        self.architecture = architecture
        self.criuVersion = criuVersion
        self.runtimes = runtimes
        self.kernel = kernel
        self.cgroupVersion = cgroupVersion
        self.images = images
        self.ipsInUse = ipsInUse
        self.macsInUse = macsInUse
        self.networks = networks
        self.containerNames = containerNames
        self.containerIDs = containerIDs
    }

    enum CodingKeys: String, CodingKey {
        case architecture, runtimes, kernel, images, networks
        case criuVersion = "criu_version"
        case cgroupVersion = "cgroup_version"
        case ipsInUse = "ips_in_use"
        case macsInUse = "macs_in_use"
        case containerNames = "container_names"
        case containerIDs = "container_ids"
    }
}
