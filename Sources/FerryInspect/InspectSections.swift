/// Which parts of an inspection to show: checkpointctl's `inspect` flags.
public struct InspectSections: Sendable, Equatable {
    /// CRIU dump statistics (`--stats`).
    public var statistics = false
    /// Mounts from `spec.dump` (`--mounts`).
    public var mounts = false
    /// The process tree (`--ps-tree`).
    public var processTree = false
    /// Full command lines read from memory (`--ps-tree-cmd`).
    public var commandLines = false
    /// Environment variables read from memory (`--ps-tree-env`).
    public var environment = false
    /// Open files per process (`--files`).
    public var files = false
    /// Open sockets per process (`--sockets`).
    public var sockets = false
    /// Pod name, namespace and annotations (`--metadata`).
    public var metadata = false
    /// Ferry's facts beyond checkpointctl's: archive, architecture, rootfs diff, deleted files, bind mounts,
    /// volumes, CRIU inventory, per-process memory (`--all`).
    public var ferryFacts = false
    /// Show only this process and its children (`--pid`).
    public var rootPID: UInt32?

    public init() {}

    /// Everything (`--all`).
    public static var all: InspectSections {
        var sections = InspectSections()
        sections.statistics = true
        sections.mounts = true
        sections.processTree = true
        sections.commandLines = true
        sections.environment = true
        sections.files = true
        sections.sockets = true
        sections.metadata = true
        sections.ferryFacts = true
        return sections
    }
}
