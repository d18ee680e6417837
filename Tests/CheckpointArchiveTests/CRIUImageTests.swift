@testable import CheckpointArchive
import Foundation
import Testing

// Real Podman and CRI-O archives, each next to what checkpointctl 1.5.0 printed for it.
private let archives = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("shared/testdata/archives")

/// The uncompressed archives, which `/usr/bin/tar` reads without helpers.
private let plainArchives = [
    "crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z",
    "podman-counter-none", "podman-inpod", "podman-multinet", "podman-series-1", "podman-series-2",
    "podman-staticip-leave-running", "podman-tcp-established", "podman-volume", "podman-web-tcp",
]

// MARK: Fixtures

/// Runs `/usr/bin/tar` and returns its standard output.
private func tar(_ arguments: [String]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "tar \(arguments) failed"])
    }
    return [UInt8](data)
}

/// One archive's `checkpoint/` images, extracted one by one with `tar -xOf`.
private struct CheckpointFixture {
    let name: String
    let path: String
    /// Image names (without `checkpoint/`) in archive order.
    let imageNames: [String]

    init(_ name: String) throws {
        self.name = name
        path = archives.appendingPathComponent(name + ".tar").path
        imageNames = String(decoding: try tar(["-tf", path]), as: UTF8.self)
            .split(separator: "\n")
            .filter { $0.hasPrefix("checkpoint/") && !$0.hasSuffix("/") }
            .map { String($0.dropFirst("checkpoint/".count)) }
    }

    func image(_ imageName: String) throws -> [UInt8] {
        try tar(["-xOf", path, "checkpoint/" + imageName])
    }

    func rootFile(_ fileName: String) throws -> [UInt8] {
        try tar(["-xOf", path, fileName])
    }

    /// Feeds the images the way the archive scanner does: metadata whole, pages only in the wanted ranges and in
    /// small chunks, with pages images whose ranges are not known yet revisited in a second pass.
    func imageSet(order: [String]? = nil, chunkSize: Int = 1000) throws -> CRIUImageSet {
        var set = CRIUImageSet()
        var deferred: [String] = []
        for imageName in order ?? imageNames {
            if CRIUImageSet.readsWhole(imageName) {
                try set.add(imageNamed: imageName, bytes: image(imageName))
            } else if imageName.hasPrefix("pages-") {
                if let ranges = set.wantedRanges(inPagesImage: imageName) {
                    try feed(imageName, ranges: ranges, into: &set, chunkSize: chunkSize)
                } else {
                    deferred.append(imageName)
                }
            }
        }
        for imageName in deferred {
            let ranges = try #require(set.wantedRanges(inPagesImage: imageName))
            try feed(imageName, ranges: ranges, into: &set, chunkSize: chunkSize)
        }
        return set
    }

    private func feed(_ imageName: String, ranges: [Range<UInt64>], into set: inout CRIUImageSet, chunkSize: Int)
        throws
    {
        let pages = try image(imageName)
        for range in ranges {
            // As the scanner does, stop at the end of the file.
            var start = Int(range.lowerBound)
            let stop = min(Int(range.upperBound), pages.count)
            while start < stop {
                let end = min(start + chunkSize, stop)
                pages[start..<end].withUnsafeBytes {
                    set.addPageBytes(pagesImage: imageName, offset: UInt64(start), bytes: $0)
                }
                start = end
            }
        }
    }

    /// The single object of `<name>.inspect.json`.
    func inspect() throws -> [String: Any] {
        let data = try Data(contentsOf: archives.appendingPathComponent(name + ".inspect.json"))
        let array = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        return try #require(array.first)
    }

    /// `<name>.memparse.txt` rows: pid → (process name, memory bytes, shared memory bytes).
    func memparseRows() throws -> [UInt32: (String, UInt64, UInt64)] {
        let text = try String(contentsOf: archives.appendingPathComponent(name + ".memparse.txt"), encoding: .utf8)
        var rows: [UInt32: (String, UInt64, UInt64)] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 6, let pid = UInt32(fields[0]) else { continue }
            rows[pid] = (String(fields[1]), try bytes(fields[2], fields[3]), try bytes(fields[4], fields[5]))
        }
        return rows
    }

    private func bytes(_ number: Substring, _ unit: Substring) throws -> UInt64 {
        let multiplier: Double = ["B": 1, "KiB": 1024, "MiB": 1024 * 1024][String(unit)] ?? .nan
        return UInt64(try #require(Double(number)) * multiplier)
    }
}

/// Decoding CRIU images from real checkpoints and from hostile bytes built in code.
@Suite("CRIU images")
struct CRIUImageTests {
    // MARK: Process tree

    @Test("the process tree of podman-counter-none matches checkpointctl's")
    func counterProcessTree() throws {
        let fixture = try CheckpointFixture("podman-counter-none")
        let snapshot = try fixture.imageSet().assemble()
        let root = try #require(snapshot.root)
        #expect(root.pid == 1)
        #expect(root.command == "sh")
        #expect(root.taskState == .alive)
        #expect(root.taskState?.name == "Alive")
        #expect(root.children.map(\.pid) == [12])
        #expect(root.children.first?.cmdline == "sleep 1 ")
        #expect(root.environment?.contains("SECRET_TOKEN=hunter2") == true)
        #expect(snapshot.architecture == .x86_64)
        #expect(snapshot.architecture?.name == "x86_64")
        try expectTree(root, matches: try #require(fixture.inspect()["process_tree"] as? [String: Any]))
    }

    @Test("the process tree of podman-tcp-established matches checkpointctl's, children in pstree order")
    func tcpEstablishedProcessTree() throws {
        let fixture = try CheckpointFixture("podman-tcp-established")
        let snapshot = try fixture.imageSet().assemble()
        let root = try #require(snapshot.root)
        #expect(root.children.map(\.pid) == [7, 8, 9, 11, 12])
        #expect(snapshot.processes.map(\.pid) == [1, 7, 8, 9, 11, 16, 12])
        #expect(try snapshot.process(pid: 11).children.map(\.pid) == [16])
        #expect(try snapshot.process(pid: 9).cmdline == "nc -l -p 9000 ")
        try expectTree(root, matches: try #require(fixture.inspect()["process_tree"] as? [String: Any]))
    }

    @Test("every plain archive's process tree matches checkpointctl's", arguments: plainArchives)
    func everyProcessTree(archive: String) throws {
        let fixture = try CheckpointFixture(archive)
        let snapshot = try fixture.imageSet().assemble()
        try expectTree(
            try #require(snapshot.root), matches: try #require(fixture.inspect()["process_tree"] as? [String: Any]))
    }

    /// Compares a node and its subtree with checkpointctl's JSON (`pid`, `command`, `cmdline`, `task_state`,
    /// `environment_variables`, `children`).
    private func expectTree(_ node: ProcessNode, matches json: [String: Any]) throws {
        #expect(UInt32(exactly: json["pid"] as? Int ?? -1) == node.pid)
        #expect(json["command"] as? String == node.command)
        #expect(json["cmdline"] as? String == node.cmdline)
        #expect(json["task_state"] as? String == node.taskState?.name)
        var environment: [String: String] = [:]
        for variable in node.environment ?? [] {
            let parts = variable.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        #expect(json["environment_variables"] as? [String: String] ?? [:] == environment, "pid \(node.pid)")
        let children = json["children"] as? [[String: Any]] ?? []
        #expect(children.count == node.children.count, "children of pid \(node.pid)")
        for (child, childJSON) in zip(node.children, children) { try expectTree(child, matches: childJSON) }
    }

    @Test("images arriving in any order give the same view, pages revisited once their pagemap is known")
    func outOfOrderImages() throws {
        let fixture = try CheckpointFixture("podman-counter-none")
        let alphabetical = try fixture.imageSet().assemble()
        // Pages first and pstree first: every pages image must wait for the second pass.
        let pagesFirst = fixture.imageNames.filter { $0.hasPrefix("pages-") }
            + ["pstree.img"] + fixture.imageNames.filter { !$0.hasPrefix("pages-") && $0 != "pstree.img" }.reversed()
        var set = CRIUImageSet()
        #expect(set.wantedRanges(inPagesImage: "pages-1.img") == nil)
        try set.add(imageNamed: "pagemap-1.img", bytes: fixture.image("pagemap-1.img"))
        #expect(set.wantedRanges(inPagesImage: "pages-1.img") == nil, "mm-1.img is still missing")
        try set.add(imageNamed: "mm-1.img", bytes: fixture.image("mm-1.img"))
        #expect(set.wantedRanges(inPagesImage: "pages-1.img")?.isEmpty == false)
        #expect(try fixture.imageSet(order: pagesFirst, chunkSize: 7).assemble() == alphabetical)
    }

    @Test("only the argv and environment bytes of a pages image are asked for")
    func wantedRangesAreSmall() throws {
        let fixture = try CheckpointFixture("podman-counter-none")
        let set = try fixture.imageSet()
        for pages in ["pages-1.img", "pages-2.img"] {
            let ranges = try #require(set.wantedRanges(inPagesImage: pages))
            let wanted = ranges.reduce(0) { $0 + $1.upperBound - $1.lowerBound }
            #expect(wanted > 0 && wanted <= 2 * 4096, "\(pages) wants \(wanted) bytes")
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound < $1.lowerBound })
        }
        #expect(set.wantedRanges(inPagesImage: "pages-9.img") == [], "no process owns pages-9.img")
        #expect(set.wantedRanges(inPagesImage: "core-1.img") == [])
    }

    @Test("command lines and environments stay nil when the pages are not handed over")
    func noPagesNoCmdline() throws {
        let fixture = try CheckpointFixture("podman-counter-none")
        var set = CRIUImageSet()
        for name in fixture.imageNames where CRIUImageSet.readsWhole(name) {
            try set.add(imageNamed: name, bytes: fixture.image(name))
        }
        let snapshot = try set.assemble()
        #expect(snapshot.root?.command == "sh")
        #expect(snapshot.root?.cmdline == nil)
        #expect(snapshot.root?.environment == nil)
        #expect(snapshot.memory.map(\.pid) == [1, 12])
    }

    // MARK: Files and sockets

    @Test("the open files of podman-counter-none match checkpointctl's file_descriptors")
    func counterOpenFiles() throws {
        let fixture = try CheckpointFixture("podman-counter-none")
        let snapshot = try fixture.imageSet().assemble()
        let first = try #require(snapshot.openFiles.first?.files)
        #expect(first.map(\.checkpointctlFD) == ["REG 0", "PIPE 1", "PIPE 2", "cwd", "root"])
        #expect(first.map(\.path) == ["/dev/null", "pipe[43693]", "pipe[43694]", "/", "/"])
        try expectFiles(snapshot.openFiles, match: fixture)
    }

    @Test("the open files of every socket archive match checkpointctl's", arguments: [
        "podman-tcp-established", "podman-web-tcp", "podman-series-2",
    ])
    func socketArchiveOpenFiles(archive: String) throws {
        let fixture = try CheckpointFixture(archive)
        try expectFiles(try fixture.imageSet().assemble().openFiles, match: fixture)
    }

    private func expectFiles(_ files: [ProcessFiles], match fixture: CheckpointFixture) throws {
        let json = try #require(fixture.inspect()["file_descriptors"] as? [[String: Any]])
        #expect(files.map(\.pid) == json.map { UInt32($0["pid"] as? Int ?? -1) })
        for (process, processJSON) in zip(files, json) {
            let open = processJSON["open_files"] as? [[String: String]] ?? []
            #expect(process.files.map(\.type) == open.map { $0["type"] ?? "?" }, "pid \(process.pid)")
            #expect(process.files.map(\.checkpointctlFD) == open.map { $0["fd"] ?? "?" }, "pid \(process.pid)")
            #expect(process.files.map(\.path) == open.map { $0["path"] ?? "?" }, "pid \(process.pid)")
        }
    }

    @Test("the sockets of podman-tcp-established match checkpointctl's, IPv4-mapped addresses written correctly")
    func tcpEstablishedSockets() throws {
        let fixture = try CheckpointFixture("podman-tcp-established")
        let snapshot = try fixture.imageSet().assemble()
        #expect(snapshot.sockets.map(\.pid) == [7, 9, 12])
        let server = try #require(snapshot.sockets.first { $0.pid == 9 }?.sockets.first)
        #expect(server.family == "IPV6")
        #expect(server.sourceAddress == "::ffff:127.0.0.1")
        #expect(server.destinationAddress == "::ffff:127.0.0.1")
        #expect(InetAddressText.checkpointctlString(fromWords: server.sourceAddressWords) == "7f00:1::")
        #expect(server.sendBufferSize == 3_939_840)
        let listener = try #require(snapshot.sockets.first?.sockets.first)
        #expect(listener.state == "LISTEN")
        #expect(listener.sourceAddress == "::")
        #expect(listener.fd == 3)
        try expectSockets(snapshot.sockets, match: fixture)
    }

    @Test("the listening socket of podman-web-tcp matches checkpointctl's")
    func webSockets() throws {
        let fixture = try CheckpointFixture("podman-web-tcp")
        let snapshot = try fixture.imageSet().assemble()
        #expect(snapshot.sockets.map(\.pid) == [6])
        try expectSockets(snapshot.sockets, match: fixture)
    }

    /// Compares with checkpointctl's `sockets`, whose INET `data` carries go-criu's address text.
    private func expectSockets(_ sockets: [ProcessSockets], match fixture: CheckpointFixture) throws {
        let json = try #require(fixture.inspect()["sockets"] as? [[String: Any]])
        #expect(sockets.map(\.pid) == json.map { UInt32($0["pid"] as? Int ?? -1) })
        for (process, processJSON) in zip(sockets, json) {
            let open = processJSON["open_sockets"] as? [[String: Any]] ?? []
            #expect(process.sockets.count == open.count)
            for (socket, socketJSON) in zip(process.sockets, open) {
                let data = socketJSON["data"] as? [String: Any] ?? [:]
                #expect(socket.kind == .inet)
                #expect(socketJSON["protocol"] as? String == socket.protocolName)
                #expect(data["type"] as? String == socket.protocolName)
                #expect(data["state"] as? String == socket.state)
                #expect(data["src"] as? String
                    == InetAddressText.checkpointctlString(fromWords: socket.sourceAddressWords))
                #expect(data["dst"] as? String
                    == InetAddressText.checkpointctlString(fromWords: socket.destinationAddressWords))
                #expect(data["src_port"] as? Int ?? 0 == Int(socket.sourcePort))
                #expect(data["dst_port"] as? Int ?? 0 == Int(socket.destinationPort))
                #expect(data["send_buf"] as? String == socket.sendBufferText)
                #expect(data["recv_buf"] as? String == socket.receiveBufferText)
            }
        }
    }

    @Test("addresses are written as dotted quads and RFC 5952 text")
    func addressText() {
        #expect(InetAddressText.string(fromWords: [0x0100_007F]) == "127.0.0.1")
        #expect(InetAddressText.string(fromWords: [0, 0, 0, 0]) == "::")
        #expect(InetAddressText.string(fromWords: [0, 0, 0xFFFF_0000, 0x0100_007F]) == "::ffff:127.0.0.1")
        #expect(InetAddressText.string(fromWords: [0x0000_0120, 0x0000_0000, 0, 0x0100_0000]) == "2001::1")
        #expect(InetAddressText.string(fromWords: [0xB80D_0120, 0x0100_0000, 0, 0x0100_0000]) == "2001:db8:0:1::1")
        #expect(InetAddressText.string(fromWords: [0, 0]) == "")
        #expect(InetAddressText.checkpointctlString(fromWords: [0, 0, 0xFFFF_0000, 0x0100_007F]) == "7f00:1::")
    }

    @Test("buffer sizes read as go-criu prints them")
    func bufferSizes() {
        #expect(OpenSocket.bufferSizeText(1023) == "1023 B")
        #expect(OpenSocket.bufferSizeText(16384) == "16.0 KB")
        #expect(OpenSocket.bufferSizeText(131_072) == "128.0 KB")
        #expect(OpenSocket.bufferSizeText(3_939_840) == "3.8 MB")
        #expect(OpenSocket.bufferSizeText(1_048_575) == "1024.0 KB")
        #expect(OpenSocket.bufferSizeText(1024 + 51) == "1.0 KB")
        #expect(OpenSocket.bufferSizeText(1024 + 52) == "1.1 KB")
    }

    // MARK: Memory

    @Test("memory sizes match checkpointctl memparse", arguments: plainArchives)
    func memorySizes(archive: String) throws {
        let fixture = try CheckpointFixture(archive)
        let snapshot = try fixture.imageSet().assemble()
        let rows = try fixture.memparseRows()
        #expect(Set(snapshot.memory.map(\.pid)) == Set(rows.keys))
        for memory in snapshot.memory {
            let row = try #require(rows[memory.pid])
            #expect(memory.command == row.0)
            #expect(memory.memorySize == row.1, "pid \(memory.pid)")
            #expect(memory.sharedMemorySize == row.2, "pid \(memory.pid)")
        }
    }

    @Test("pid 1 of podman-counter-none has 72 KiB of memory, all of it in pages-1.img")
    func counterMemoryLayout() throws {
        let fixture = try CheckpointFixture("podman-counter-none")
        let snapshot = try fixture.imageSet().assemble()
        let memory = try snapshot.memory(pid: 1)
        #expect(memory.memorySize == 73728)
        #expect(memory.pagesImageName == "pages-1.img")
        #expect(memory.layout.pagesFileSize == UInt64(try fixture.image("pages-1.img").count))
        for segment in memory.layout.segments {
            let offset = try #require(segment.fileOffset)
            #expect(memory.layout.fileOffset(ofVirtualAddress: segment.virtualRange.lowerBound) == offset)
            #expect(memory.layout.virtualAddress(ofFileOffset: offset + 5) == segment.virtualRange.lowerBound + 5)
        }
        #expect(memory.layout.fileOffset(ofVirtualAddress: 0x1000) == nil)
        #expect(memory.layout.virtualAddress(ofFileOffset: 73728) == nil)
        #expect(throws: CheckpointError.self) { try snapshot.memory(pid: 999) }
    }

    @Test("the layout maps a hit in pages-1.img back into pid 1's environment and forth again")
    func layoutMapsSearchHit() throws {
        // memparse --search reports the virtual address of each hit in the pages file; this is that mapping.
        let fixture = try CheckpointFixture("podman-counter-none")
        let layout = try PagemapLayout(pagemapImage: fixture.image("pagemap-1.img"), name: "checkpoint/pagemap-1.img")
        let mm = try CRIUImageFile(bytes: fixture.image("mm-1.img"), name: "checkpoint/mm-1.img", expecting: .mm)
        let environment = try MMEntry(protobuf: try #require(mm.entries.first)).environmentRange
        let pages = try fixture.image("pages-\(layout.pagesID).img")
        let needle = Array("SECRET_TOKEN=hunter2".utf8)
        let hit = try #require(pages.indices.first { pages[$0...].starts(with: needle) })
        let address = try #require(layout.virtualAddress(ofFileOffset: UInt64(hit)))
        #expect(environment.contains(address))
        #expect(layout.fileOffset(ofVirtualAddress: address) == UInt64(hit))
        #expect(layout.mappings(covering: address..<address + 20).map(\.fileRange) == [UInt64(hit)..<UInt64(hit) + 20])
    }

    // MARK: Statistics and inventory

    @Test("dump statistics match checkpointctl's", arguments: ["podman-counter-none", "podman-tcp-established"])
    func dumpStatistics(archive: String) throws {
        let fixture = try CheckpointFixture(archive)
        let statistics = try DumpStatistics(statsDump: fixture.rootFile("stats-dump"))
        let json = try #require(fixture.inspect()["statistics"] as? [String: Int])
        #expect(Int(statistics.freezingTime) == json["freezing_time"])
        #expect(Int(statistics.frozenTime) == json["frozen_time"])
        #expect(Int(statistics.memdumpTime) == json["memdump_time"])
        #expect(Int(statistics.memwriteTime) == json["memwrite_time"])
        #expect(Int(statistics.pagesScanned) == json["pages_scanned"])
        #expect(Int(statistics.pagesWritten) == json["pages_written"])
    }

    @Test("the inventory says image format 2 with descriptors per id")
    func inventory() throws {
        let fixture = try CheckpointFixture("podman-counter-none")
        let inventory = try #require(try fixture.imageSet().assemble().inventory)
        #expect(inventory.imageVersion == 2)
        #expect(inventory.fdinfoPerID == true)
        #expect(inventory.lsmName == "NO_LSM")
        #expect(inventory.plugins == [])
        #expect(inventory.rootIDs?.filesID == 1)
        #expect(inventory.dumpRunID?.isEmpty == false)
    }

    // MARK: Malformed input

    /// A tiny protobuf writer for hostile fixtures.
    private struct ProtobufWriter {
        var bytes: [UInt8] = []

        mutating func varint(_ value: UInt64) {
            var value = value
            while value >= 0x80 {
                bytes.append(UInt8(value & 0x7F) | 0x80)
                value >>= 7
            }
            bytes.append(UInt8(value))
        }

        mutating func field(_ number: UInt64, _ value: UInt64) {
            varint(number << 3)
            varint(value)
        }

        mutating func field(_ number: UInt64, bytes body: [UInt8]) {
            varint(number << 3 | 2)
            varint(UInt64(body.count))
            bytes += body
        }
    }

    private func u32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    /// An image file: common magic, type magic, then each entry with its length.
    private func image(_ magic: UInt32, entries: [[UInt8]]) -> [UInt8] {
        u32(0x5456_4319) + u32(magic) + entries.flatMap { u32(UInt32($0.count)) + $0 }
    }

    private func pstreeEntry(pid: UInt64, ppid: UInt64) -> [UInt8] {
        var writer = ProtobufWriter()
        writer.field(1, pid)
        writer.field(2, ppid)
        return writer.bytes
    }

    private func expectError(_ code: CheckpointErrorCode, entry: String?, _ body: () throws -> Void) {
        let error = #expect(throws: CheckpointError.self) { try body() }
        #expect(error?.code == code)
        #expect(error?.entry == entry)
    }

    @Test("an image with another image's magic is refused as CRIU_BAD_MAGIC naming both")
    func wrongMagic() {
        var set = CRIUImageSet()
        let coreAsPstree = image(CRIUMagic.pstree.rawValue, entries: [pstreeEntry(pid: 1, ppid: 0)])
        expectError(.criuBadMagic, entry: "checkpoint/core-1.img") {
            try set.add(imageNamed: "core-1.img", bytes: coreAsPstree)
        }
        let error = #expect(throws: CheckpointError.self) {
            try set.add(imageNamed: "core-1.img", bytes: coreAsPstree)
        }
        #expect(error?.message.contains("CORE (0x55053847)") == true)
        #expect(error?.message.contains("PSTREE (0x50273030)") == true)
        expectError(.criuBadMagic, entry: "checkpoint/pstree.img") {
            try set.add(imageNamed: "pstree.img", bytes: u32(0xDEAD_BEEF) + u32(CRIUMagic.pstree.rawValue))
        }
        expectError(.criuBadMagic, entry: "checkpoint/inventory.img") {
            try set.add(imageNamed: "inventory.img", bytes: image(CRIUMagic.inventory.rawValue, entries: []))
        }
        expectError(.criuBadMagic, entry: "stats-dump") {
            _ = try DumpStatistics(statsDump: image(CRIUMagic.stats.rawValue, entries: []))
        }
    }

    @Test("an image that ends inside a length prefix is CRIU_IMAGE_TRUNCATED")
    func truncatedLength() {
        var set = CRIUImageSet()
        let whole = image(CRIUMagic.pstree.rawValue, entries: [pstreeEntry(pid: 1, ppid: 0)])
        expectError(.criuImageTruncated, entry: "checkpoint/pstree.img") {
            try set.add(imageNamed: "pstree.img", bytes: whole + [0x02, 0x00])
        }
        expectError(.criuImageTruncated, entry: "checkpoint/pstree.img") {
            let cut = u32(0x5456_4319) + u32(CRIUMagic.pstree.rawValue).prefix(2)
            try set.add(imageNamed: "pstree.img", bytes: cut)
        }
        expectError(.criuImageTruncated, entry: "checkpoint/pstree.img") {
            try set.add(imageNamed: "pstree.img", bytes: [])
        }
    }

    @Test("an image that ends inside an entry body is CRIU_IMAGE_TRUNCATED")
    func truncatedBody() {
        var set = CRIUImageSet()
        let whole = image(CRIUMagic.pstree.rawValue, entries: [pstreeEntry(pid: 1, ppid: 0)])
        expectError(.criuImageTruncated, entry: "checkpoint/pstree.img") {
            try set.add(imageNamed: "pstree.img", bytes: Array(whole.dropLast()))
        }
        expectError(.criuImageTruncated, entry: "checkpoint/pstree.img") {
            try set.add(imageNamed: "pstree.img", bytes: whole + u32(UInt32.max))
        }
    }

    @Test("a varint longer than ten bytes or past the end is CRIU_IMAGE_INVALID")
    func badVarint() {
        var set = CRIUImageSet()
        let tooLong: [UInt8] = [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01]
        expectError(.criuImageInvalid, entry: "checkpoint/pstree.img") {
            try set.add(imageNamed: "pstree.img", bytes: image(CRIUMagic.pstree.rawValue, entries: [tooLong]))
        }
        let unfinished: [UInt8] = [0x08, 0x80, 0x80]
        expectError(.criuImageInvalid, entry: "checkpoint/pstree.img") {
            try set.add(imageNamed: "pstree.img", bytes: image(CRIUMagic.pstree.rawValue, entries: [unfinished]))
        }
        let tenthByteOverflow: [UInt8] = [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x02]
        expectError(.criuImageInvalid, entry: nil) { _ = try PstreeEntry(protobuf: tenthByteOverflow[...]) }
    }

    @Test("other malformed protobuf is CRIU_IMAGE_INVALID, never a trap")
    func malformedProtobuf() {
        var writer = ProtobufWriter()
        writer.field(1, UInt64(UInt32.max) + 1)  // pid does not fit a uint32
        expectError(.criuImageInvalid, entry: nil) { _ = try PstreeEntry(protobuf: writer.bytes[...]) }
        expectError(.criuImageInvalid, entry: nil) { _ = try PstreeEntry(protobuf: [0x0B][...]) }  // wire type 3
        expectError(.criuImageInvalid, entry: nil) { _ = try PstreeEntry(protobuf: [0x00, 0x01][...]) }  // field 0
        expectError(.criuImageInvalid, entry: nil) { _ = try PstreeEntry(protobuf: [0x0A, 0x05, 0x01][...]) }
        expectError(.criuImageInvalid, entry: nil) { _ = try PstreeEntry(protobuf: [0x10, 0x00][...]) }  // no pid
        var wrongType = ProtobufWriter()
        wrongType.field(1, bytes: [1, 2])  // pid as bytes
        expectError(.criuImageInvalid, entry: nil) { _ = try PstreeEntry(protobuf: wrongType.bytes[...]) }
        var overflowing = ProtobufWriter()
        overflowing.field(1, UInt64.max / 2)
        overflowing.field(5, 1 << 60)
        overflowing.field(4, 4)
        var head = ProtobufWriter()
        head.field(1, 1)
        var set = CRIUImageSet()
        expectError(.criuImageInvalid, entry: "checkpoint/pagemap-1.img") {
            try set.add(
                imageNamed: "pagemap-1.img",
                bytes: image(CRIUMagic.pagemap.rawValue, entries: [head.bytes, overflowing.bytes]))
        }
    }

    @Test("the wire reader takes the largest varint, fixed-width values and packed fixed32 runs")
    func wireReader() throws {
        var reader = ProtobufReader([UInt8](repeating: 0xFF, count: 9)[...] + [0x01])
        #expect(try reader.readVarint() == UInt64.max)
        #expect(reader.isAtEnd)

        var writer = ProtobufWriter()
        writer.field(3, bytes: u32(7) + u32(0xDEAD_BEEF))  // packed repeated fixed32
        writer.bytes += [0x1D] + u32(9)  // the same field, unpacked
        var values: [UInt32] = []
        var fields = ProtobufReader(writer.bytes[...])
        while let field = try fields.nextField() { try fields.appendFixed32s(field, to: &values) }
        #expect(values == [7, 0xDEAD_BEEF, 9])

        var short = ProtobufReader([0x01, 0x02, 0x03][...])
        #expect(throws: CheckpointError.self) { _ = try short.readFixed64() }
        var ragged = ProtobufReader([0x1A, 0x03, 0x01, 0x02, 0x03][...])  // packed fixed32 of 3 bytes
        let field = try #require(try ragged.nextField())
        var none: [UInt32] = []
        let error = #expect(throws: CheckpointError.self) { try ragged.appendFixed32s(field, to: &none) }
        #expect(error?.code == .criuImageInvalid)
        #expect(CRIUImageFile.expectedMagic(forImageNamed: "core-1.img") == .core)
        #expect(CRIUImageFile.expectedMagic(forImageNamed: "pages-3.img") == .raw)
        #expect(CRIUImageFile.expectedMagic(forImageNamed: "cgroup.img") == nil)
    }

    @Test("src_addr decodes the same packed or not, and unknown fields are skipped")
    func packedAddresses() throws {
        let words: [UInt64] = [0, 0, 0xFFFF_0000, 0x0100_007F]
        var unpacked = ProtobufWriter()
        var packedBody = ProtobufWriter()
        for word in words {
            unpacked.field(11, word)
            packedBody.varint(word)
        }
        var packed = ProtobufWriter()
        packed.field(11, bytes: packedBody.bytes)
        packed.bytes += [0x9D, 0x01, 1, 2, 3, 4]  // field 19 as fixed32: unknown, skipped
        packed.bytes += [0xA1, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]  // field 20 as fixed64: unknown, skipped
        let a = try InetSocketEntry(protobuf: unpacked.bytes[...])
        let b = try InetSocketEntry(protobuf: packed.bytes[...])
        #expect(a.sourceAddress == words.map { UInt32($0) })
        #expect(b.sourceAddress == a.sourceAddress)
    }

    @Test("old pagemap entries count their pages in compat_nr_pages")
    func compatPageCount() throws {
        var old = ProtobufWriter()
        old.field(1, 0x40_0000)
        old.field(2, 3)
        var new = ProtobufWriter()
        new.field(1, 0x40_0000)
        new.field(2, 0)
        new.field(4, UInt64(PagemapEntry.flagPresent))
        new.field(5, 5)
        var parent = ProtobufWriter()
        parent.field(1, 0x50_0000)
        parent.field(4, UInt64(PagemapEntry.flagParent))
        parent.field(5, 2)
        #expect(try PagemapEntry(protobuf: old.bytes[...]).pageCount == 3)
        #expect(try PagemapEntry(protobuf: new.bytes[...]).pageCount == 5)
        let layout = try PagemapLayout(
            head: PagemapHead(pagesID: 1),
            entries: [
                try PagemapEntry(protobuf: parent.bytes[...]), try PagemapEntry(protobuf: new.bytes[...]),
            ])
        #expect(layout.memorySize == 7 * 4096)
        #expect(layout.pagesFileSize == 5 * 4096)
        #expect(layout.fileOffset(ofVirtualAddress: 0x40_0010) == 0x10, "parent pages take no room in the file")
        #expect(layout.fileOffset(ofVirtualAddress: 0x50_0000) == nil)
    }

    @Test("assembling without pstree.img is METADATA_MISSING, an unknown pid PROCESS_NOT_FOUND")
    func missingPstreeAndUnknownPID() throws {
        expectError(.metadataMissing, entry: "checkpoint/pstree.img") { _ = try CRIUImageSet().assemble() }
        var set = CRIUImageSet()
        try set.add(
            imageNamed: "pstree.img",
            bytes: image(
                CRIUMagic.pstree.rawValue, entries: [pstreeEntry(pid: 1, ppid: 0), pstreeEntry(pid: 5, ppid: 1)]))
        let snapshot = try set.assemble()
        #expect(snapshot.root?.children.map(\.pid) == [5])
        #expect(snapshot.root?.command == "", "core-1.img was never added")
        expectError(.processNotFound, entry: nil) { _ = try snapshot.process(pid: 42) }
    }

    @Test("a process tree that loops or runs too deep does not hang or trap")
    func hostileTree() throws {
        var set = CRIUImageSet()
        // 2 and 3 are each other's parent: unreachable from the root, so they stay leaves.
        try set.add(
            imageNamed: "pstree.img",
            bytes: image(CRIUMagic.pstree.rawValue, entries: [
                pstreeEntry(pid: 1, ppid: 0), pstreeEntry(pid: 2, ppid: 3), pstreeEntry(pid: 3, ppid: 2),
            ]))
        let snapshot = try set.assemble()
        #expect(snapshot.root?.children.isEmpty == true)
        #expect(snapshot.processes.map(\.pid) == [1, 2, 3])

        let chain = (1...UInt64(CRIUImageSet.maximumTreeDepth + 2)).map { pstreeEntry(pid: $0, ppid: $0 - 1) }
        try set.add(imageNamed: "pstree.img", bytes: image(CRIUMagic.pstree.rawValue, entries: chain))
        expectError(.criuImageInvalid, entry: "checkpoint/pstree.img") { _ = try set.assemble() }
    }

    @Test("a zombie keeps its name and state but has no command line, files or memory")
    func zombieTask() throws {
        func core(state: UInt64, comm: String) -> [UInt8] {
            var task = ProtobufWriter()
            task.field(1, state)
            task.field(2, 0)
            task.field(6, bytes: Array(comm.utf8))
            var core = ProtobufWriter()
            core.field(1, 1)
            core.field(3, bytes: task.bytes)
            return core.bytes
        }
        var fs = ProtobufWriter()
        fs.field(1, 1)
        fs.field(2, 1)
        var set = CRIUImageSet()
        let tree = [pstreeEntry(pid: 1, ppid: 0), pstreeEntry(pid: 2, ppid: 1)]
        try set.add(imageNamed: "pstree.img", bytes: image(CRIUMagic.pstree.rawValue, entries: tree))
        try set.add(
            imageNamed: "core-1.img", bytes: image(CRIUMagic.core.rawValue, entries: [core(state: 1, comm: "sh")]))
        try set.add(
            imageNamed: "core-2.img", bytes: image(CRIUMagic.core.rawValue, entries: [core(state: 6, comm: "defunct")]))
        try set.add(imageNamed: "fs-1.img", bytes: image(CRIUMagic.fs.rawValue, entries: [fs.bytes]))
        try set.add(imageNamed: "fs-2.img", bytes: image(CRIUMagic.fs.rawValue, entries: [fs.bytes]))
        let snapshot = try set.assemble()
        let zombie = try snapshot.process(pid: 2)
        #expect(zombie.command == "defunct")
        #expect(zombie.taskState == .zombie)
        #expect(zombie.taskState?.name == "Zombie")
        #expect(zombie.cmdline == nil)
        #expect(snapshot.openFiles.map(\.pid) == [1])
        #expect(snapshot.openFiles.first?.files.map(\.path) == ["unknown", "unknown"], "files.img was never added")
        #expect(TaskState(rawValue: 9).name == "Unknown")
    }

    @Test("page bytes kept stay under the set's bound however many processes ask")
    func pageBytesBound() throws {
        let processes: UInt64 = 40
        let region = CRIUImageSet.memoryRegionLimit
        var set = CRIUImageSet()
        for pid in 1...processes {
            let base = pid << 32
            var head = ProtobufWriter()
            head.field(1, pid)
            var run = ProtobufWriter()
            run.field(1, base)
            run.field(4, UInt64(PagemapEntry.flagPresent))
            run.field(5, 2 * region / 4096)
            var mm = ProtobufWriter()
            for (number, value) in [(8, base), (9, base + region), (10, base + region), (11, base + 2 * region)] {
                mm.field(UInt64(number), value)
            }
            try set.add(
                imageNamed: "pagemap-\(pid).img",
                bytes: image(CRIUMagic.pagemap.rawValue, entries: [head.bytes, run.bytes]))
            try set.add(imageNamed: "mm-\(pid).img", bytes: image(CRIUMagic.mm.rawValue, entries: [mm.bytes]))
        }
        let page = [UInt8](repeating: UInt8(ascii: "A"), count: Int(2 * region))
        for pid in 1...processes {
            #expect(set.wantedRanges(inPagesImage: "pages-\(pid).img") == [0..<2 * region])
            page.withUnsafeBytes { set.addPageBytes(pagesImage: "pages-\(pid).img", offset: 0, bytes: $0) }
        }
        let entries = (1...processes).map { pstreeEntry(pid: $0, ppid: $0 == 1 ? 0 : 1) }
        try set.add(imageNamed: "pstree.img", bytes: image(CRIUMagic.pstree.rawValue, entries: entries))
        let snapshot = try set.assemble()
        let read = snapshot.processes.filter { $0.cmdline != nil }
        #expect(UInt64(read.count) == CRIUImageSet.pageBytesLimit / (2 * region))
        #expect(read.first?.cmdline == String(repeating: "A", count: Int(region)))
        #expect(read.first?.environment == [String(repeating: "A", count: Int(region))])
    }

    @Test("image names are told apart: only metadata images are read whole")
    func readsWhole() {
        for name in ["inventory.img", "pstree.img", "files.img", "core-1.img", "ids-12.img", "mm-7.img",
                     "pagemap-16.img", "fdinfo-2.img", "fs-1.img"] {
            #expect(CRIUImageSet.readsWhole(name), "\(name)")
        }
        for name in ["pages-1.img", "cgroup.img", "tmpfs-dev-44.tar.gz.img", "core-+1.img", "core-.img",
                     "amdgpu-pages-1.img", "descriptors.json", "seccomp.img"] {
            #expect(!CRIUImageSet.readsWhole(name), "\(name)")
        }
    }
}
