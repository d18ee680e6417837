/// The first entry of `pagemap-<pid>.img` (`pagemap_head`): which `pages-<pages_id>.img` holds the page data.
public struct PagemapHead: ProtobufDecodable, Hashable {
    public var pagesID: UInt32

    public init(pagesID: UInt32) { self.pagesID = pagesID }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var pagesID: UInt32?
        while let field = try reader.nextField() {
            if field.number == 1 { pagesID = try reader.uint32(field) } else { try reader.skip(field) }
        }
        guard let pagesID else { throw ProtobufReader.missing("pages_id", in: "pagemap_head") }
        self.init(pagesID: pagesID)
    }
}

/// A run of pages in a process's memory (`pagemap_entry`).
public struct PagemapEntry: ProtobufDecodable, Hashable {
    /// `PE_PARENT`: the pages are in the parent (pre-dump) image, not in this pages file.
    public static let flagParent: UInt32 = 1
    /// `PE_LAZY`: the pages may be served lazily (userfaultfd).
    public static let flagLazy: UInt32 = 2
    /// `PE_PRESENT`: the pages' bytes are in this checkpoint's pages file.
    public static let flagPresent: UInt32 = 4

    public var virtualAddress: UInt64
    public var pageCount: UInt64
    /// Nil in images older than the `flags` field; there `inParent` alone tells where the pages are.
    public var flags: UInt32?
    public var inParent: Bool?

    public init(virtualAddress: UInt64, pageCount: UInt64, flags: UInt32? = PagemapEntry.flagPresent,
                inParent: Bool? = nil) {
        self.virtualAddress = virtualAddress
        self.pageCount = pageCount
        self.flags = flags
        self.inParent = inParent
    }

    /// Whether this run's bytes are stored in the pages file (in pagemap order).
    public var hasData: Bool {
        if let flags { return flags & Self.flagPresent != 0 }
        return inParent != true
    }

    /// Field 2 was `nr_pages` (uint32) until CRIU moved it to field 5 (uint64) and kept 2 as
    /// `compat_nr_pages`; new images write 0 there. Field 5 wins when present.
    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var vaddr: UInt64?
        var compatPages: UInt32?
        var pages: UInt64?
        var flags: UInt32?
        var inParent: Bool?
        while let field = try reader.nextField() {
            switch field.number {
            case 1: vaddr = try reader.uint64(field)
            case 2: compatPages = try reader.uint32(field)
            case 3: inParent = try reader.bool(field)
            case 4: flags = try reader.uint32(field)
            case 5: pages = try reader.uint64(field)
            default: try reader.skip(field)
            }
        }
        guard let vaddr else { throw ProtobufReader.missing("vaddr", in: "pagemap_entry") }
        guard let count = pages ?? compatPages.map(UInt64.init) else {
            throw ProtobufReader.missing("nr_pages", in: "pagemap_entry")
        }
        self.init(virtualAddress: vaddr, pageCount: count, flags: flags, inParent: inParent)
    }
}
