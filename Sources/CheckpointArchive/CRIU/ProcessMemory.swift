/// One process's memory as checkpointctl memparse tabulates it, plus the layout needed to read its pages.
public struct ProcessMemory: Sendable, Hashable {
    public var pid: UInt32
    public var command: String
    /// Σ pages × page size over the process's pagemap (`MEMORY SIZE`).
    public var memorySize: UInt64
    /// Bytes of `MAP_SHARED` mappings (`SHARED MEMORY SIZE`, go-criu `GetShmemSize`); nil when `mm-<pid>.img`
    /// is missing.
    public var sharedMemorySize: UInt64?
    /// Where each run of the process's memory is in `pages-<layout.pagesID>.img`.
    public var layout: PagemapLayout

    public init(pid: UInt32, command: String, memorySize: UInt64, sharedMemorySize: UInt64?,
                layout: PagemapLayout) {
        self.pid = pid
        self.command = command
        self.memorySize = memorySize
        self.sharedMemorySize = sharedMemorySize
        self.layout = layout
    }

    /// The pages image that holds this process's memory, e.g. `pages-2.img`.
    public var pagesImageName: String { "pages-\(layout.pagesID).img" }
}
