/// One open file of a process as checkpointctl's `--files` lists it (go-criu `ExploreFds`): each descriptor
/// from `fdinfo-<files_id>.img`, then the working directory and the root from `fs-<pid>.img`.
public struct OpenFile: Sendable, Hashable {
    /// The descriptor type's name (`REG`, `PIPE`, `INETSK`, …); "" for `cwd` and `root`.
    public var type: String
    /// The descriptor number in decimal, or `cwd` / `root`.
    public var fd: String
    /// The file as go-criu names it: the path of a regular file (`unknown` when `files.img` lacks it),
    /// `pipe[<inode>]`, `unix[<inode> (<peer>) <name>]`, or `<TYPE>.<id>` for every other kind (`INETSK.8`).
    public var path: String
    /// The numeric descriptor, nil for `cwd` and `root`.
    public var descriptor: UInt32?
    public var descriptorType: FileDescriptorType?

    public init(type: String, fd: String, path: String, descriptor: UInt32? = nil,
                descriptorType: FileDescriptorType? = nil) {
        self.type = type
        self.fd = fd
        self.path = path
        self.descriptor = descriptor
        self.descriptorType = descriptorType
    }

    /// checkpointctl's `fd` field and tree label: type and number joined by a space and trimmed, so `REG 0`,
    /// `PIPE 1`, `cwd`, `root`.
    public var checkpointctlFD: String {
        type.isEmpty ? fd : fd.isEmpty ? type : "\(type) \(fd)"
    }
}

/// The open files of one process, in descriptor-image order followed by `cwd` and `root`.
public struct ProcessFiles: Sendable, Hashable {
    public var pid: UInt32
    public var files: [OpenFile]

    public init(pid: UInt32, files: [OpenFile]) {
        self.pid = pid
        self.files = files
    }
}
