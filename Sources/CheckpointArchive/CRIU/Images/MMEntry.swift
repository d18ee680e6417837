/// A process's address space (`mm-<pid>.img`, `mm_entry`): where argv and the environment live, and its VMAs.
public struct MMEntry: ProtobufDecodable, Hashable {
    public var argStart: UInt64
    public var argEnd: UInt64
    public var envStart: UInt64
    public var envEnd: UInt64
    /// `files.img` id of the executable.
    public var exeFileID: UInt32?
    public var vmas: [VMAEntry]

    public init(
        argStart: UInt64, argEnd: UInt64, envStart: UInt64, envEnd: UInt64, exeFileID: UInt32? = nil,
        vmas: [VMAEntry] = []
    ) {
        self.argStart = argStart
        self.argEnd = argEnd
        self.envStart = envStart
        self.envEnd = envEnd
        self.exeFileID = exeFileID
        self.vmas = vmas
    }

    /// Virtual addresses of the argv strings (`mm_arg_start..<mm_arg_end`), empty when the image is inconsistent.
    public var argumentRange: Range<UInt64> { argStart..<max(argStart, argEnd) }
    /// Virtual addresses of the environment strings (`mm_env_start..<mm_env_end`).
    public var environmentRange: Range<UInt64> { envStart..<max(envStart, envEnd) }

    /// Bytes of shared mappings, as go-criu's `GetShmemSize` counts them (and so checkpointctl memparse's
    /// "SHARED MEMORY SIZE"): the length of every VMA whose mmap flags have `MAP_SHARED` (0x01).
    public var sharedMemorySize: UInt64 {
        vmas.reduce(0) { total, vma in
            vma.flags & VMAEntry.mapShared != 0 ? total &+ vma.size : total
        }
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var argStart: UInt64?
        var argEnd: UInt64?
        var envStart: UInt64?
        var envEnd: UInt64?
        var exeFileID: UInt32?
        var vmas: [VMAEntry] = []
        while let field = try reader.nextField() {
            switch field.number {
            case 8: argStart = try reader.uint64(field)
            case 9: argEnd = try reader.uint64(field)
            case 10: envStart = try reader.uint64(field)
            case 11: envEnd = try reader.uint64(field)
            case 12: exeFileID = try reader.uint32(field)
            case 14: vmas.append(try reader.message(field, as: VMAEntry.self))
            default: try reader.skip(field)
            }
        }
        guard let argStart, let argEnd else { throw ProtobufReader.missing("mm_arg_start/end", in: "mm_entry") }
        guard let envStart, let envEnd else { throw ProtobufReader.missing("mm_env_start/end", in: "mm_entry") }
        self.init(
            argStart: argStart, argEnd: argEnd, envStart: envStart, envEnd: envEnd, exeFileID: exeFileID, vmas: vmas)
    }
}

/// One mapping of an address space (`vma_entry`).
public struct VMAEntry: ProtobufDecodable, Hashable {
    /// `MAP_SHARED` in `flags`.
    public static let mapShared: UInt32 = 0x01

    public var start: UInt64
    public var end: UInt64
    public var pgoff: UInt64
    /// For file and shared mappings, the `files.img` id or shmem id behind the mapping.
    public var shmid: UInt64
    /// `PROT_*` bits.
    public var prot: UInt32
    /// `MAP_*` bits as passed to mmap.
    public var flags: UInt32
    /// CRIU's `VMA_*` status bits (`VMA_AREA_REGULAR` 1, `VMA_FILE_SHARED` 1<<7, …).
    public var status: UInt32

    public init(start: UInt64, end: UInt64, pgoff: UInt64 = 0, shmid: UInt64 = 0, prot: UInt32 = 0,
                flags: UInt32 = 0, status: UInt32 = 0) {
        self.start = start
        self.end = end
        self.pgoff = pgoff
        self.shmid = shmid
        self.prot = prot
        self.flags = flags
        self.status = status
    }

    public var size: UInt64 { end >= start ? end - start : 0 }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var start: UInt64?
        var end: UInt64?
        var vma = VMAEntry(start: 0, end: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: start = try reader.uint64(field)
            case 2: end = try reader.uint64(field)
            case 3: vma.pgoff = try reader.uint64(field)
            case 4: vma.shmid = try reader.uint64(field)
            case 5: vma.prot = try reader.uint32(field)
            case 6: vma.flags = try reader.uint32(field)
            case 7: vma.status = try reader.uint32(field)
            default: try reader.skip(field)
            }
        }
        guard let start, let end else { throw ProtobufReader.missing("start/end", in: "vma_entry") }
        vma.start = start
        vma.end = end
        self = vma
    }
}
