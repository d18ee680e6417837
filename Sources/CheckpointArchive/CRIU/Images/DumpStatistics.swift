/// CRIU's dump statistics (`dump_stats_entry` inside the `stats_entry` of the archive's root-level `stats-dump`).
/// Times are microseconds; counts are pages.
public struct DumpStatistics: ProtobufDecodable, Hashable {
    public var freezingTime: UInt32
    public var frozenTime: UInt32
    public var memdumpTime: UInt32
    public var memwriteTime: UInt32
    public var pagesScanned: UInt64
    public var pagesSkippedParent: UInt64
    public var pagesWritten: UInt64
    public var irmapResolve: UInt32?
    public var pagesLazy: UInt64
    public var pagePipes: UInt64?
    public var pagePipeBuffers: UInt64?
    public var sharedPagesScanned: UInt64?
    public var sharedPagesSkippedParent: UInt64?
    public var sharedPagesWritten: UInt64?

    public init(
        freezingTime: UInt32 = 0, frozenTime: UInt32 = 0, memdumpTime: UInt32 = 0, memwriteTime: UInt32 = 0,
        pagesScanned: UInt64 = 0, pagesSkippedParent: UInt64 = 0, pagesWritten: UInt64 = 0, pagesLazy: UInt64 = 0
    ) {
        self.freezingTime = freezingTime
        self.frozenTime = frozenTime
        self.memdumpTime = memdumpTime
        self.memwriteTime = memwriteTime
        self.pagesScanned = pagesScanned
        self.pagesSkippedParent = pagesSkippedParent
        self.pagesWritten = pagesWritten
        self.pagesLazy = pagesLazy
    }

    /// Reads the whole `stats-dump` file: `IMG_SERVICE` + `STATS` magics and one `stats_entry` whose `dump`
    /// (field 1) is set.
    public init(statsDump bytes: [UInt8]) throws {
        let name = "stats-dump"
        let image = try CRIUImageFile(bytes: bytes, name: name, expecting: .stats, service: true)
        guard let body = image.entries.first else {
            throw CheckpointError(.criuImageInvalid, "the stats file holds no entry", entry: name)
        }
        do {
            var reader = ProtobufReader(body)
            var dump: DumpStatistics?
            while let field = try reader.nextField() {
                if field.number == 1 { dump = try reader.message(field) } else { try reader.skip(field) }
            }
            guard let dump else { throw ProtobufReader.missing("dump", in: "stats_entry") }
            self = dump
        } catch let error as CheckpointError {
            throw error.inEntry(name)
        }
    }

    /// Decodes a `dump_stats_entry` body.
    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var stats = DumpStatistics()
        while let field = try reader.nextField() {
            switch field.number {
            case 1: stats.freezingTime = try reader.uint32(field)
            case 2: stats.frozenTime = try reader.uint32(field)
            case 3: stats.memdumpTime = try reader.uint32(field)
            case 4: stats.memwriteTime = try reader.uint32(field)
            case 5: stats.pagesScanned = try reader.uint64(field)
            case 6: stats.pagesSkippedParent = try reader.uint64(field)
            case 7: stats.pagesWritten = try reader.uint64(field)
            case 8: stats.irmapResolve = try reader.uint32(field)
            case 9: stats.pagesLazy = try reader.uint64(field)
            case 10: stats.pagePipes = try reader.uint64(field)
            case 11: stats.pagePipeBuffers = try reader.uint64(field)
            case 12: stats.sharedPagesScanned = try reader.uint64(field)
            case 13: stats.sharedPagesSkippedParent = try reader.uint64(field)
            case 14: stats.sharedPagesWritten = try reader.uint64(field)
            default: try reader.skip(field)
            }
        }
        self = stats
    }
}
