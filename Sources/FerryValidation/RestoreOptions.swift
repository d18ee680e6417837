/// The restore options that change what can go wrong on the target, named after Podman's
/// `podman container restore` flags. A finding one of them waives is not reported when it is set.
public struct RestoreOptions: Codable, Sendable, Equatable {
    /// `--name`: restore under a new name. Podman then also gives the container a new ID and drops the static IPs
    /// and MACs, so name, ID, IP and MAC conflicts are all waived.
    public var name: String?
    /// `--ignore-static-ip`: take a fresh IP instead of the checkpointed one.
    public var ignoreStaticIP = false
    /// `--ignore-static-mac`: take a fresh MAC instead of the checkpointed one.
    public var ignoreStaticMAC = false
    /// `--ignore-rootfs`: skip the rootfs diff. No preflight rule depends on it; archive rules still judge the
    /// diff, because the archive may be restored elsewhere without the flag.
    public var ignoreRootfs = false
    /// `--tcp-established`: restore established TCP connections.
    public var tcpEstablished = false
    /// `--tcp-close`: restore established TCP connections closed.
    public var tcpClose = false
    /// `--pod`: restore into an existing pod (Podman then needs CRIU ≥ 3.16).
    public var pod: String?

    public init(
        name: String? = nil, ignoreStaticIP: Bool = false, ignoreStaticMAC: Bool = false, ignoreRootfs: Bool = false,
        tcpEstablished: Bool = false, tcpClose: Bool = false, pod: String? = nil
    ) {
        self.name = name
        self.ignoreStaticIP = ignoreStaticIP
        self.ignoreStaticMAC = ignoreStaticMAC
        self.ignoreRootfs = ignoreRootfs
        self.tcpEstablished = tcpEstablished
        self.tcpClose = tcpClose
        self.pod = pod
    }

    enum CodingKeys: String, CodingKey {
        case name, pod
        case ignoreStaticIP = "ignore_static_ip"
        case ignoreStaticMAC = "ignore_static_mac"
        case ignoreRootfs = "ignore_rootfs"
        case tcpEstablished = "tcp_established"
        case tcpClose = "tcp_close"
    }

    // Every key may be left out of the JSON; absent flags are off.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        ignoreStaticIP = try container.decodeIfPresent(Bool.self, forKey: .ignoreStaticIP) ?? false
        ignoreStaticMAC = try container.decodeIfPresent(Bool.self, forKey: .ignoreStaticMAC) ?? false
        ignoreRootfs = try container.decodeIfPresent(Bool.self, forKey: .ignoreRootfs) ?? false
        tcpEstablished = try container.decodeIfPresent(Bool.self, forKey: .tcpEstablished) ?? false
        tcpClose = try container.decodeIfPresent(Bool.self, forKey: .tcpClose) ?? false
        pod = try container.decodeIfPresent(String.self, forKey: .pod)
    }
}
