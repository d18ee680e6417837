/// Where a process's dumped memory lies in its `pages-<pagesID>.img`, from one `pagemap-<pid>.img`.
///
/// The pages file is the bytes of every run that has data (`PE_PRESENT`, or, in images older than the `flags`
/// field, every run not `in_parent`), concatenated in pagemap order; runs kept in a parent pre-dump (`PE_PARENT`)
/// or only lazily (`PE_LAZY` without `PE_PRESENT`) take no room there. This maps virtual addresses to offsets in
/// that file and back, so `memparse --pid` can stream the pages file and label bytes by address.
///
/// go-criu's memory reader counts every run, with or without data, when it computes file offsets; for dumps
/// without a parent (all Podman, CRI-O and containerd exports seen) the two agree.
public struct PagemapLayout: Sendable, Hashable {
    /// One pagemap run.
    public struct Segment: Sendable, Hashable {
        public var virtualRange: Range<UInt64>
        public var pageCount: UInt64
        /// `PE_*` bits; nil in images older than the field.
        public var flags: UInt32?
        /// Where the run's bytes start in the pages file; nil when they are not there.
        public var fileOffset: UInt64?

        /// The run's bytes in the pages file, when it has any.
        public var fileRange: Range<UInt64>? {
            fileOffset.map { $0..<($0 + (virtualRange.upperBound - virtualRange.lowerBound)) }
        }
    }

    /// A piece of a virtual range and where its bytes are in the pages file.
    public struct Mapping: Sendable, Hashable {
        public var virtualRange: Range<UInt64>
        public var fileRange: Range<UInt64>
    }

    public let pagesID: UInt32
    public let pageSize: UInt64
    /// The runs in pagemap order.
    public let segments: [Segment]
    /// Σ pages × page size over every run: checkpointctl memparse's "MEMORY SIZE".
    public let memorySize: UInt64
    /// Bytes this process has in the pages file (the runs with data).
    public let pagesFileSize: UInt64

    /// Segment indices ordered by start address, for lookups.
    private let byAddress: [Int]
    /// Indices of segments with data and, alongside, their file offsets, which ascend by construction.
    private let withData: [Int]
    private let dataOffsets: [UInt64]

    /// - Throws: `CRIU_IMAGE_INVALID` when a run's addresses or the file offsets overflow 64 bits, or the page
    ///   size is not a power of two.
    public init(head: PagemapHead, entries: [PagemapEntry], pageSize: UInt64 = 4096) throws {
        guard pageSize > 0, pageSize & (pageSize - 1) == 0 else {
            throw CheckpointError(.criuImageInvalid, "page size \(pageSize) is not a power of two")
        }
        var segments: [Segment] = []
        segments.reserveCapacity(entries.count)
        var offset: UInt64 = 0
        var memorySize: UInt64 = 0
        for (index, entry) in entries.enumerated() {
            let (length, lengthOverflow) = entry.pageCount.multipliedReportingOverflow(by: pageSize)
            let (end, endOverflow) = entry.virtualAddress.addingReportingOverflow(length)
            let (total, totalOverflow) = memorySize.addingReportingOverflow(length)
            guard !lengthOverflow, !endOverflow, !totalOverflow else {
                throw CheckpointError(
                    .criuImageInvalid, "pagemap entry \(index) at 0x\(String(entry.virtualAddress, radix: 16)) "
                        + "with \(entry.pageCount) pages overflows the address space")
            }
            memorySize = total
            var segment = Segment(
                virtualRange: entry.virtualAddress..<end, pageCount: entry.pageCount, flags: entry.flags,
                fileOffset: nil)
            if entry.hasData {
                segment.fileOffset = offset
                offset += length  // cannot overflow: offset ≤ memorySize
            }
            segments.append(segment)
        }
        self.pagesID = head.pagesID
        self.pageSize = pageSize
        self.segments = segments
        self.memorySize = memorySize
        self.pagesFileSize = offset
        self.byAddress = segments.indices.sorted {
            (segments[$0].virtualRange.lowerBound, $0) < (segments[$1].virtualRange.lowerBound, $1)
        }
        let withData = segments.indices.filter { segments[$0].fileOffset != nil && segments[$0].pageCount > 0 }
        self.withData = withData
        self.dataOffsets = withData.compactMap { segments[$0].fileOffset }
    }

    /// Reads a whole `pagemap-<pid>.img`: the head, then the runs.
    public init(pagemapImage bytes: [UInt8], name: String, pageSize: UInt64 = 4096) throws {
        let image = try CRIUImageFile(bytes: bytes, name: name, expecting: .pagemap)
        guard let first = image.entries.first else {
            throw CheckpointError(.criuImageInvalid, "the pagemap holds no pagemap_head", entry: name)
        }
        do {
            let head = try PagemapHead(protobuf: first)
            let entries = try image.entries.dropFirst().map { try PagemapEntry(protobuf: $0) }
            try self.init(head: head, entries: entries, pageSize: pageSize)
        } catch let error as CheckpointError {
            throw error.inEntry(name)
        }
    }

    /// The run holding `address`, if any.
    public func segment(containing address: UInt64) -> Segment? {
        // The last run starting at or before the address; CRIU writes runs in ascending, disjoint order.
        var low = 0
        var high = byAddress.count
        while low < high {
            let middle = (low + high) / 2
            if segments[byAddress[middle]].virtualRange.lowerBound <= address {
                low = middle + 1
            } else {
                high = middle
            }
        }
        guard low > 0 else { return nil }
        let candidate = segments[byAddress[low - 1]]
        return candidate.virtualRange.contains(address) ? candidate : nil
    }

    /// The offset in the pages file of the byte at `address`, or nil when that byte is not in the file.
    public func fileOffset(ofVirtualAddress address: UInt64) -> UInt64? {
        guard let segment = segment(containing: address), let base = segment.fileOffset else { return nil }
        return base + (address - segment.virtualRange.lowerBound)
    }

    /// The virtual address of the byte at `offset` in the pages file, or nil past this process's data.
    public func virtualAddress(ofFileOffset offset: UInt64) -> UInt64? {
        var low = 0
        var high = withData.count
        while low < high {
            let middle = (low + high) / 2
            if dataOffsets[middle] <= offset { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        let segment = segments[withData[low - 1]]
        guard let range = segment.fileRange, range.contains(offset) else { return nil }
        return segment.virtualRange.lowerBound + (offset - range.lowerBound)
    }

    /// The parts of `range` whose bytes are in the pages file, in address order. Parts not listed were not dumped
    /// (go-criu reads them as zeros).
    public func mappings(covering range: Range<UInt64>) -> [Mapping] {
        guard !range.isEmpty else { return [] }
        var result: [Mapping] = []
        for index in byAddress {
            let segment = segments[index]
            if segment.virtualRange.lowerBound >= range.upperBound { break }
            guard let base = segment.fileOffset else { continue }
            let lower = max(segment.virtualRange.lowerBound, range.lowerBound)
            let upper = min(segment.virtualRange.upperBound, range.upperBound)
            guard lower < upper else { continue }
            let start = base + (lower - segment.virtualRange.lowerBound)
            result.append(Mapping(virtualRange: lower..<upper, fileRange: start..<(start + (upper - lower))))
        }
        return result
    }
}
