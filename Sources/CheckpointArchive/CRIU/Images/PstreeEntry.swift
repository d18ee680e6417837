/// One process of the dumped tree (`pstree.img`, `pstree_entry`). Ids are in the checkpoint's PID namespace.
public struct PstreeEntry: ProtobufDecodable, Hashable {
    public var pid: UInt32
    /// 0 for the root of the tree.
    public var ppid: UInt32
    public var pgid: UInt32
    public var sid: UInt32
    /// Thread ids, the leader included; each has its own `core-<tid>.img`.
    public var threads: [UInt32]

    public init(pid: UInt32, ppid: UInt32, pgid: UInt32, sid: UInt32, threads: [UInt32] = []) {
        self.pid = pid
        self.ppid = ppid
        self.pgid = pgid
        self.sid = sid
        self.threads = threads
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var pid: UInt32?
        var ppid: UInt32?
        var pgid: UInt32 = 0
        var sid: UInt32 = 0
        var threads: [UInt32] = []
        while let field = try reader.nextField() {
            switch field.number {
            case 1: pid = try reader.uint32(field)
            case 2: ppid = try reader.uint32(field)
            case 3: pgid = try reader.uint32(field)
            case 4: sid = try reader.uint32(field)
            case 5: try reader.appendUInt32s(field, to: &threads)
            default: try reader.skip(field)
            }
        }
        guard let pid else { throw ProtobufReader.missing("pid", in: "pstree_entry") }
        guard let ppid else { throw ProtobufReader.missing("ppid", in: "pstree_entry") }
        self.init(pid: pid, ppid: ppid, pgid: pgid, sid: sid, threads: threads)
    }
}
