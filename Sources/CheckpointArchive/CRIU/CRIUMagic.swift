/// The little-endian u32 magics at the start of CRIU image files (CRIU `criu/include/magic.h`).
///
/// Since image format V1.1 every image starts with `imgCommon` (or `imgService` for service files such as
/// `stats-dump`) followed by its own magic; `inventory.img` carries only `inventory`.
public struct CRIUMagic: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Prefix of every image except `inventory.img` and service files.
    public static let imgCommon = CRIUMagic(rawValue: 0x5456_4319)
    /// Prefix of service files (`stats-dump`, `stats-restore`, `irmap-cache`).
    public static let imgService = CRIUMagic(rawValue: 0x5510_5940)
    /// Raw images (`pages-*.img`, iproute2 and iptables dumps) have no header at all.
    public static let raw = CRIUMagic(rawValue: 0)

    public static let inventory = CRIUMagic(rawValue: 0x5831_3116)
    public static let pstree = CRIUMagic(rawValue: 0x5027_3030)
    public static let core = CRIUMagic(rawValue: 0x5505_3847)
    public static let ids = CRIUMagic(rawValue: 0x5443_2030)
    public static let mm = CRIUMagic(rawValue: 0x5749_2820)
    public static let vmas = CRIUMagic(rawValue: 0x5412_3737)
    public static let pagemap = CRIUMagic(rawValue: 0x5608_4025)
    public static let files = CRIUMagic(rawValue: 0x5630_3138)
    public static let fdinfo = CRIUMagic(rawValue: 0x5621_3732)
    public static let fs = CRIUMagic(rawValue: 0x5140_3912)
    public static let stats = CRIUMagic(rawValue: 0x5709_3306)
    public static let inetSocket = CRIUMagic(rawValue: 0x5644_3851)
    public static let unixSocket = CRIUMagic(rawValue: 0x5437_3943)
    public static let tcpStream = CRIUMagic(rawValue: 0x5146_5506)
    public static let mountpoints = CRIUMagic(rawValue: 0x5556_3928)
    public static let cpuinfo = CRIUMagic(rawValue: 0x6140_4013)
    public static let cgroup = CRIUMagic(rawValue: 0x5938_3330)
    public static let netdev = CRIUMagic(rawValue: 0x5737_3951)
    public static let seccomp = CRIUMagic(rawValue: 0x6441_3049)
    public static let timens = CRIUMagic(rawValue: 0x4311_4433)
    public static let pidns = CRIUMagic(rawValue: 0x6115_7326)
    public static let apparmor = CRIUMagic(rawValue: 0x5942_3047)
    public static let pidfd = CRIUMagic(rawValue: 0x5443_5556)

    private static let names: [UInt32: String] = [
        imgCommon.rawValue: "IMG_COMMON", imgService.rawValue: "IMG_SERVICE", raw.rawValue: "RAW",
        inventory.rawValue: "INVENTORY", pstree.rawValue: "PSTREE", core.rawValue: "CORE", ids.rawValue: "IDS",
        mm.rawValue: "MM", vmas.rawValue: "VMAS", pagemap.rawValue: "PAGEMAP", files.rawValue: "FILES",
        fdinfo.rawValue: "FDINFO", fs.rawValue: "FS", stats.rawValue: "STATS", inetSocket.rawValue: "INETSK",
        unixSocket.rawValue: "UNIXSK", tcpStream.rawValue: "TCP_STREAM", mountpoints.rawValue: "MNTS",
        cpuinfo.rawValue: "CPUINFO", cgroup.rawValue: "CGROUP", netdev.rawValue: "NETDEV",
        seccomp.rawValue: "SECCOMP", timens.rawValue: "TIMENS", pidns.rawValue: "PIDNS",
        apparmor.rawValue: "APPARMOR", pidfd.rawValue: "PIDFD",
    ]

    /// CRIU's name for the magic (`CORE`, `PAGEMAP`, …), or nil for a value Ferry does not know.
    public var name: String? { Self.names[rawValue] }

    /// `CORE (0x55053847)`, or just the hex value when unknown.
    public var description: String {
        let hex = "0x" + String(rawValue, radix: 16)
        return name.map { "\($0) (\(hex))" } ?? hex
    }
}
