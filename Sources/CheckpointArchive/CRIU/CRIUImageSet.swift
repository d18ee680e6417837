/// Collects a checkpoint's CRIU images as an archive scan streams past them, in any order, and assembles the
/// process view.
///
/// The scanner reads the small metadata images whole (`readsWhole`) and hands them to `add`, which decodes them
/// at once and keeps only the decoded facts. Page data is never held whole: for each `pages-<id>.img` the set
/// names the byte ranges that hold some process's argv and environment (`wantedRanges`), and keeps only those
/// (`addPageBytes`), at most 1 MiB per region. In alphabetical archive order `mm-*` and `pagemap-*` come before
/// `pages-*`, so one pass is enough; otherwise `wantedRanges` says to come back.
public struct CRIUImageSet: Sendable {
    /// The most bytes of argv, and separately of environment, read for one process.
    public static let memoryRegionLimit: UInt64 = 1 << 20
    /// The most page bytes kept in all, whatever pagemaps a crafted archive carries; ranges beyond it are not
    /// kept and their processes get no command line.
    public static let pageBytesLimit: UInt64 = 64 << 20
    /// Processes deeper than this in the tree are refused, which bounds the recursion in `ProcessNode`'s
    /// nested children (real trees are a few levels deep).
    public static let maximumTreeDepth = 1024

    /// The page size the dump was taken with. CRIU writes the dumping host's page size; 4 KiB on x86-64 and on
    /// most arm64 hosts.
    public var pageSize: UInt64

    private var inventory: InventoryEntry?
    private var pstree: [PstreeEntry]?
    private var cores: [UInt32: CoreEntry] = [:]
    private var kobjIDs: [UInt32: TaskKobjIDs] = [:]
    private var addressSpaces: [UInt32: AddressSpace] = [:]
    private var pagemaps: [UInt32: PagemapLayout] = [:]
    private var files: [UInt32: FileEntry] = [:]
    private var fdinfos: [UInt32: [FdinfoEntry]] = [:]
    private var fsEntries: [UInt32: FSEntry] = [:]
    /// Page bytes kept per pages id, one buffer per wanted range.
    private var captures: [UInt32: [PageCapture]] = [:]
    /// Bytes allocated in `captures`, held under `pageBytesLimit`.
    private var capturedBytes: UInt64 = 0

    public init(pageSize: UInt64 = 4096) {
        self.pageSize = pageSize
    }

    /// Whether the scanner should read this `checkpoint/` image whole and hand it to `add`: `inventory.img`,
    /// `pstree.img`, `files.img`, `core-*`, `ids-*`, `mm-*`, `pagemap-*`, `fdinfo-*` and `fs-*`. `name` is the
    /// file name without `checkpoint/`.
    public static func readsWhole(_ imageName: String) -> Bool {
        guard let kind = CRIUImageKind(imageName: imageName) else { return false }
        if case .pages = kind { return false }
        return true
    }

    /// Decodes one metadata image and keeps what the process view needs. Names `readsWhole` rejects are ignored.
    /// A second image of the same name replaces the first.
    /// - Throws: `CRIU_BAD_MAGIC`, `CRIU_IMAGE_TRUNCATED` or `CRIU_IMAGE_INVALID`, naming `checkpoint/<name>`.
    public mutating func add(imageNamed name: String, bytes: [UInt8]) throws {
        guard let kind = CRIUImageKind(imageName: name) else { return }
        let entry = name.hasPrefix("checkpoint/") ? name : "checkpoint/" + name
        if case .pages = kind { return }
        if case .pagemap(let pid) = kind {
            pagemaps[pid] = try PagemapLayout(pagemapImage: bytes, name: entry, pageSize: pageSize)
            return
        }
        let image = try CRIUImageFile(bytes: bytes, name: entry, expecting: kind.magic)
        switch kind {
        case .inventory:
            inventory = try image.decodeOne(InventoryEntry.self, name: entry)
        case .pstree:
            pstree = try image.decodeAll(PstreeEntry.self, name: entry)
        case .files:
            var byID: [UInt32: FileEntry] = [:]
            for file in try image.decodeAll(FileEntry.self, name: entry) where byID[file.id] == nil {
                byID[file.id] = file  // go-criu takes the first entry with an id
            }
            files = byID
        case .core(let tid):
            cores[tid] = try image.decodeOne(CoreEntry.self, name: entry)
        case .ids(let pid):
            kobjIDs[pid] = try image.decodeOne(TaskKobjIDs.self, name: entry)
        case .mm(let pid):
            addressSpaces[pid] = AddressSpace(try image.decodeOne(MMEntry.self, name: entry))
        case .fdinfo(let filesID):
            fdinfos[filesID] = try image.decodeAll(FdinfoEntry.self, name: entry)
        case .fs(let pid):
            fsEntries[pid] = try image.decodeOne(FSEntry.self, name: entry)
        case .pagemap, .pages:
            break
        }
    }

    /// For a `pages-<id>.img` about to stream past: the byte ranges of that file that hold some process's argv
    /// and environment (`mm_arg_start..<mm_arg_end`, `mm_env_start..<mm_env_end`, each capped at
    /// `memoryRegionLimit`), sorted and merged. Empty when no process needs anything from it.
    ///
    /// Nil when the `pagemap-*` or `mm-*` images that decide it have not been added yet; the scanner then comes
    /// back in a second pass. Still nil once everything is added means the checkpoint lacks them: skip the file.
    /// Ranges may reach past the end of the file when a stale pagemap names it; they simply get no bytes.
    public func wantedRanges(inPagesImage name: String) -> [Range<UInt64>]? {
        guard case .pages(let pagesID)? = CRIUImageKind(imageName: name) else { return [] }
        // A checkpoint directory reused for a second dump can keep the first dump's pagemap-<pid>.img of a
        // process that has since gone, naming the same pages id; once pstree.img is known only its pids count.
        let listed = pstree.map { Set($0.map(\.pid)) }
        let owners = pagemaps.filter { $0.value.pagesID == pagesID && listed?.contains($0.key) != false }
        guard !owners.isEmpty else { return allPagemapsKnown ? [] : nil }
        var ranges: [Range<UInt64>] = []
        for (pid, layout) in owners {
            guard let space = addressSpaces[pid] else { return nil }
            for region in space.regions(limit: Self.memoryRegionLimit) {
                ranges += layout.mappings(covering: region).map(\.fileRange)
            }
        }
        return Self.merged(ranges)
    }

    /// Bytes of a pages image at a file offset, as they stream past; they may come in any number of chunks. Only
    /// the parts inside `wantedRanges` are kept, so memory stays bounded whatever the caller hands over.
    public mutating func addPageBytes(pagesImage name: String, offset: UInt64, bytes: UnsafeRawBufferPointer) {
        guard case .pages(let pagesID)? = CRIUImageKind(imageName: name), !bytes.isEmpty else { return }
        if captures[pagesID] == nil {
            guard let wanted = wantedRanges(inPagesImage: name) else { return }
            captures[pagesID] = wanted.map { PageCapture(range: $0) }
        }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
        guard !overflow else { return }
        let chunk = offset..<end
        for index in 0..<(captures[pagesID]?.count ?? 0) {
            // Only the range is read here: holding the capture itself would make the copy below duplicate its
            // buffer.
            guard let range = captures[pagesID]?[index].range, range.overlaps(chunk) else { continue }
            if captures[pagesID]?[index].isAllocated == false {
                let size = range.upperBound - range.lowerBound
                guard size <= Self.pageBytesLimit - capturedBytes else { continue }
                capturedBytes += size
                captures[pagesID]?[index].bytes = [UInt8](repeating: 0, count: Int(size))
            }
            captures[pagesID]?[index].copy(from: bytes, at: chunk)
        }
    }

    /// The `PagemapLayout` of a process, once its `pagemap-<pid>.img` has been added.
    public func pagemapLayout(pid: UInt32) -> PagemapLayout? { pagemaps[pid] }

    /// Builds the process view from everything added so far. Command lines and environments are filled for the
    /// processes whose pages were handed over; the rest stay nil.
    /// - Throws: `METADATA_MISSING` when `pstree.img` was never added; `CRIU_IMAGE_INVALID` when the tree is
    ///   deeper than `maximumTreeDepth`.
    public func assemble() throws -> CRIUSnapshot {
        guard let pstree else {
            throw CheckpointError(
                .metadataMissing, "pstree.img is missing from the checkpoint", entry: "checkpoint/pstree.img")
        }
        var entries: [PstreeEntry] = []
        var seen: Set<UInt32> = []
        for entry in pstree where seen.insert(entry.pid).inserted { entries.append(entry) }

        let leaves = entries.map(leafNode)
        let (root, nodesByPID, walk) = try buildTree(entries: entries, leaves: leaves)
        let processes = leaves.map { nodesByPID[$0.pid] ?? $0 }

        var fileLists: [ProcessFiles] = []
        var socketLists: [ProcessSockets] = []
        for entry in entries where hasResources(entry.pid) {
            if let files = openFiles(of: entry.pid) { fileLists.append(ProcessFiles(pid: entry.pid, files: files)) }
            let sockets = sockets(of: entry.pid)
            if !sockets.isEmpty { socketLists.append(ProcessSockets(pid: entry.pid, sockets: sockets)) }
        }

        var memory: [ProcessMemory] = []
        let reached = Set(walk)
        for pid in walk + entries.map(\.pid).filter({ !reached.contains($0) }) {
            guard let layout = pagemaps[pid] else { continue }
            memory.append(
                ProcessMemory(
                    pid: pid, command: cores[pid]?.command ?? "", memorySize: layout.memorySize,
                    sharedMemorySize: addressSpaces[pid]?.sharedMemorySize, layout: layout))
        }

        return CRIUSnapshot(
            inventory: inventory, root: root, architecture: root.flatMap { cores[$0.pid]?.architecture },
            processes: processes, openFiles: fileLists, sockets: socketLists, memory: memory)
    }

    // MARK: Process tree

    private func leafNode(_ entry: PstreeEntry) -> ProcessNode {
        let core = cores[entry.pid]
        var node = ProcessNode(
            pid: entry.pid, ppid: entry.ppid, pgid: entry.pgid, sid: entry.sid, threads: entry.threads,
            command: core?.command ?? "", taskState: core?.taskState, exitCode: core?.exitCode)
        if hasResources(entry.pid), let space = addressSpaces[entry.pid] {
            let regions = space.regions(limit: Self.memoryRegionLimit)
            if let argv = readMemory(pid: entry.pid, range: regions[0]) {
                node.cmdline = String(decoding: argv.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            }
            if let environ = readMemory(pid: entry.pid, range: regions[1]) {
                node.environment = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            }
        }
        return node
    }

    /// Links the leaves by `ppid` without recursion: children in pstree order, the root the first entry with
    /// `ppid` 0. Returns the root, every node with its subtree, and the depth-first pre-order walk from the root.
    private func buildTree(entries: [PstreeEntry], leaves: [ProcessNode]) throws
        -> (ProcessNode?, [UInt32: ProcessNode], [UInt32])
    {
        var childIndices: [UInt32: [Int]] = [:]
        for (index, entry) in entries.enumerated() where entry.ppid != 0 && entry.ppid != entry.pid {
            childIndices[entry.ppid, default: []].append(index)
        }
        guard let rootIndex = entries.firstIndex(where: { $0.ppid == 0 }) else {
            var nodes: [UInt32: ProcessNode] = [:]
            for leaf in leaves { nodes[leaf.pid] = leaf }
            return (nil, nodes, [])
        }

        // Pre-order walk with depths; a pid is visited once, so a corrupt tree cannot loop.
        var walk: [Int] = []
        var depth: [Int: Int] = [rootIndex: 0]
        var visited: Set<Int> = [rootIndex]
        var stack = [rootIndex]
        while let index = stack.popLast() {
            walk.append(index)
            let children = (childIndices[entries[index].pid] ?? []).filter { !visited.contains($0) }
            let childDepth = (depth[index] ?? 0) + 1
            for child in children {
                visited.insert(child)
                depth[child] = childDepth
                guard childDepth <= Self.maximumTreeDepth else {
                    throw CheckpointError(
                        .criuImageInvalid, "the process tree is deeper than \(Self.maximumTreeDepth) levels",
                        entry: "checkpoint/pstree.img")
                }
            }
            stack.append(contentsOf: children.reversed())
        }

        // Children are complete before their parent in reverse pre-order.
        var nodes: [UInt32: ProcessNode] = [:]
        for leaf in leaves { nodes[leaf.pid] = leaf }
        for index in walk.reversed() {
            let pid = entries[index].pid
            let children = (childIndices[pid] ?? []).filter { visited.contains($0) }
            let linked = children.compactMap { nodes[entries[$0].pid] }
            nodes[pid]?.children = linked
        }
        return (nodes[entries[rootIndex].pid], nodes, walk.map { entries[$0].pid })
    }

    private func hasResources(_ pid: UInt32) -> Bool {
        cores[pid]?.taskState?.hasResources ?? true
    }

    /// Whether every process in the tree that can own memory has had its pagemap added.
    private var allPagemapsKnown: Bool {
        guard let pstree else { return false }
        return pstree.allSatisfy { entry in
            pagemaps[entry.pid] != nil || cores[entry.pid]?.taskState.map { !$0.hasResources } == true
        }
    }

    // MARK: Memory

    /// The bytes at `range` of a process's memory. Parts the pagemap does not cover read as zeros, as in go-criu;
    /// nil when the pages that hold the rest were not handed over.
    private func readMemory(pid: UInt32, range: Range<UInt64>) -> [UInt8]? {
        guard let layout = pagemaps[pid] else { return nil }
        var result = [UInt8](repeating: 0, count: Int(range.upperBound - range.lowerBound))
        let mappings = layout.mappings(covering: range)
        guard !mappings.isEmpty else { return result }
        guard let pieces = captures[layout.pagesID] else { return nil }
        for mapping in mappings {
            var covered: UInt64 = 0
            for piece in pieces {
                guard let stored = piece.bytes else { continue }
                let lower = max(piece.range.lowerBound, mapping.fileRange.lowerBound)
                let upper = min(piece.range.upperBound, mapping.fileRange.upperBound)
                guard lower < upper else { continue }
                let target = Int(
                    mapping.virtualRange.lowerBound - range.lowerBound + (lower - mapping.fileRange.lowerBound))
                let source = Int(lower - piece.range.lowerBound)
                result.replaceSubrange(
                    target..<target + Int(upper - lower), with: stored[source..<source + Int(upper - lower)])
                covered += upper - lower
            }
            guard covered >= mapping.fileRange.upperBound - mapping.fileRange.lowerBound else { return nil }
        }
        return result
    }

    // MARK: Files and sockets

    /// go-criu `ExploreFds` for one process; nil when neither its descriptors nor its fs image are known.
    private func openFiles(of pid: UInt32) -> [OpenFile]? {
        let descriptors = kobjIDs[pid].flatMap { fdinfos[$0.filesID] }
        let fs = fsEntries[pid]
        guard descriptors != nil || fs != nil else { return nil }
        var result = (descriptors ?? []).map { fd in
            OpenFile(
                type: fd.type.name, fd: String(fd.fd), path: path(ofFile: fd.id, type: fd.type), descriptor: fd.fd,
                descriptorType: fd.type)
        }
        if let fs {
            result.append(OpenFile(type: "", fd: "cwd", path: path(ofFile: fs.cwdID, type: .regular)))
            result.append(OpenFile(type: "", fd: "root", path: path(ofFile: fs.rootID, type: .regular)))
        }
        return result
    }

    /// go-criu `getFilePath`.
    private func path(ofFile id: UInt32, type: FileDescriptorType) -> String {
        let file = files[id]
        switch type {
        case .regular:
            return file?.regular?.name ?? "unknown"
        case .pipe:
            return file?.pipe.map { "pipe[\($0.pipeID)]" } ?? "pipe[?]"
        case .unixSocket:
            guard let socket = file?.unixSocket else { return "unix[?]" }
            return "unix[\(socket.inode) (\(socket.peer)) \(String(decoding: socket.name, as: UTF8.self))]"
        default:
            return "\(type.name).\(id)"
        }
    }

    /// go-criu `ExploreSk` for one process: its INET, UNIX, packet and netlink descriptors, in descriptor order.
    private func sockets(of pid: UInt32) -> [OpenSocket] {
        guard let descriptors = kobjIDs[pid].flatMap({ fdinfos[$0.filesID] }) else { return [] }
        return descriptors.compactMap { fd in
            let file = files[fd.id]
            switch fd.type {
            case .inetSocket:
                var socket = OpenSocket(kind: .inet, fd: fd.fd)
                guard let inet = file?.inetSocket else { return socket }
                socket.isDescribed = true
                socket.family = SocketNames.family(inet.family)
                socket.protocolName = SocketNames.proto(inet.proto)
                socket.type = SocketNames.type(inet.type)
                socket.state = SocketNames.state(inet.state)
                socket.sourceAddressWords = inet.sourceAddress
                socket.destinationAddressWords = inet.destinationAddress
                socket.sourceAddress = InetAddressText.string(fromWords: inet.sourceAddress)
                socket.destinationAddress = InetAddressText.string(fromWords: inet.destinationAddress)
                socket.sourcePort = inet.sourcePort
                socket.destinationPort = inet.destinationPort
                socket.sendBufferSize = inet.options?.sendBuffer ?? 0
                socket.receiveBufferSize = inet.options?.receiveBuffer ?? 0
                socket.rawFamily = inet.family
                socket.rawType = inet.type
                socket.rawProtocol = inet.proto
                socket.rawState = inet.state
                return socket
            case .unixSocket:
                var socket = OpenSocket(kind: .unix, fd: fd.fd)
                guard let unix = file?.unixSocket else { return socket }
                socket.isDescribed = true
                socket.family = SocketNames.family(1)
                socket.type = SocketNames.type(unix.type)
                socket.state = SocketNames.state(unix.state)
                socket.unixAddress = unix.name
                socket.sendBufferSize = unix.options?.sendBuffer ?? 0
                socket.receiveBufferSize = unix.options?.receiveBuffer ?? 0
                socket.rawType = unix.type
                socket.rawState = unix.state
                return socket
            case .packetSocket:
                var socket = OpenSocket(kind: .packet, fd: fd.fd)
                guard let packet = file?.packetSocket else { return socket }
                socket.isDescribed = true
                socket.family = SocketNames.family(17)
                // go-criu names both from the protocol number.
                socket.type = SocketNames.type(packet.proto)
                socket.protocolName = SocketNames.proto(packet.proto)
                socket.sendBufferSize = packet.options?.sendBuffer ?? 0
                socket.receiveBufferSize = packet.options?.receiveBuffer ?? 0
                socket.rawType = packet.type
                socket.rawProtocol = packet.proto
                return socket
            case .netlinkSocket:
                var socket = OpenSocket(kind: .netlink, fd: fd.fd)
                guard let netlink = file?.netlinkSocket else { return socket }
                socket.isDescribed = true
                socket.family = SocketNames.family(16)
                socket.state = SocketNames.state(netlink.state)
                socket.protocolName = SocketNames.proto(netlink.proto)
                socket.type = SocketNames.type(netlink.proto)
                socket.sendBufferSize = netlink.options?.sendBuffer ?? 0
                socket.receiveBufferSize = netlink.options?.receiveBuffer ?? 0
                socket.rawProtocol = netlink.proto
                socket.rawState = netlink.state
                return socket
            default:
                return nil
            }
        }
    }

    // MARK: Helpers

    /// Sorted, with overlapping and touching ranges joined.
    static func merged(_ ranges: [Range<UInt64>]) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        for range in ranges.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, range.lowerBound <= last.upperBound {
                result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }
}

/// What the set keeps of an `mm-<pid>.img`: where argv and the environment are, and the shared-memory total.
private struct AddressSpace: Sendable {
    var arguments: Range<UInt64>
    var environment: Range<UInt64>
    var sharedMemorySize: UInt64

    init(_ mm: MMEntry) {
        arguments = mm.argumentRange
        environment = mm.environmentRange
        sharedMemorySize = mm.sharedMemorySize
    }

    /// argv then environment, each cut to at most `limit` bytes from its start.
    func regions(limit: UInt64) -> [Range<UInt64>] {
        [arguments, environment].map { region in
            region.lowerBound..<(region.lowerBound + min(region.upperBound - region.lowerBound, limit))
        }
    }
}

/// The kept bytes of one wanted range of a pages file; the set allocates the buffer when its first bytes arrive.
private struct PageCapture: Sendable {
    var range: Range<UInt64>
    var bytes: [UInt8]?

    init(range: Range<UInt64>) { self.range = range }

    var isAllocated: Bool { bytes != nil }

    /// Copies the part of `chunk` (which sits at `chunkRange` in the file) that falls in this range.
    mutating func copy(from chunk: UnsafeRawBufferPointer, at chunkRange: Range<UInt64>) {
        let lower = max(range.lowerBound, chunkRange.lowerBound)
        let upper = min(range.upperBound, chunkRange.upperBound)
        guard lower < upper, bytes != nil else { return }
        let source = Int(lower - chunkRange.lowerBound)
        let target = Int(lower - range.lowerBound)
        let count = Int(upper - lower)
        bytes?.withUnsafeMutableBytes { buffer in
            UnsafeMutableRawBufferPointer(rebasing: buffer[target..<target + count])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[source..<source + count]))
        }
    }
}
