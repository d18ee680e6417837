/// The machine a checkpoint was dumped on (`core_entry.mtype`, enum `march`). Images only restore on the same
/// architecture.
public struct CPUArchitecture: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let unknown = CPUArchitecture(rawValue: 0)
    public static let x86_64 = CPUArchitecture(rawValue: 1)
    public static let arm = CPUArchitecture(rawValue: 2)
    public static let aarch64 = CPUArchitecture(rawValue: 3)
    public static let ppc64 = CPUArchitecture(rawValue: 4)
    public static let s390 = CPUArchitecture(rawValue: 5)
    public static let mips = CPUArchitecture(rawValue: 6)
    public static let loongarch64 = CPUArchitecture(rawValue: 7)
    public static let riscv64 = CPUArchitecture(rawValue: 8)

    /// The kernel's name for it, as `uname -m` prints (`x86_64`, `aarch64`, …); `unknown` for 0 and
    /// `march-<n>` for a value newer than Ferry.
    public var name: String {
        switch self {
        case .unknown: "unknown"
        case .x86_64: "x86_64"
        case .arm: "arm"
        case .aarch64: "aarch64"
        case .ppc64: "ppc64le"
        case .s390: "s390x"
        case .mips: "mips64"
        case .loongarch64: "loongarch64"
        case .riscv64: "riscv64"
        default: "march-\(rawValue)"
        }
    }

    /// Go's `GOARCH` for it, which Podman records in the `…checkpoint.host.arch` image annotation (`amd64`,
    /// `arm64`, …); nil when there is none.
    public var goArchitecture: String? {
        switch self {
        case .x86_64: "amd64"
        case .arm: "arm"
        case .aarch64: "arm64"
        case .ppc64: "ppc64le"
        case .s390: "s390x"
        case .mips: "mips64le"
        case .loongarch64: "loong64"
        case .riscv64: "riscv64"
        default: nil
        }
    }

    public var description: String { name }
}
