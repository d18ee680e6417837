/// Streams one process's dumped memory out of a checkpoint archive, in pagemap order, labelled by virtual address,
/// without extracting or holding the pages file (`ferry memparse --pid`).
public enum ProcessMemoryReader {
    /// Calls `body` with consecutive pieces of the memory of process `pid`: each piece's virtual address and bytes.
    /// Pieces arrive in pages-file order, which is pagemap order. Throws `PROCESS_NOT_FOUND` if the checkpoint has
    /// no such process or no memory images for it.
    public static func stream(
        archiveAt path: String,
        pid: UInt32,
        _ body: (_ address: UInt64, _ bytes: UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var images = CRIUImageSet()
        var streamed = false
        // First pass: the page map usually comes before the pages file (alphabetical order).
        let reader = try ArchiveReader(path: path)
        while let entry = try reader.nextEntry() {
            let name = imageName(entry)
            guard let name else { continue }
            if name == "pstree.img" || name == "pagemap-\(pid).img" || name.hasPrefix("core-") {
                try images.add(imageNamed: name, bytes: reader.readWhole(limit: 64 << 20))
            } else if let layout = images.pagemapLayout(pid: pid), name == "pages-\(layout.pagesID).img" {
                try copy(reader: reader, layout: layout, body)
                streamed = true
            }
        }
        let snapshot = try images.assemble()
        _ = try snapshot.process(pid: pid)
        guard let layout = images.pagemapLayout(pid: pid) else {
            throw CheckpointError(.processNotFound, "process \(pid) has no memory images in the checkpoint")
        }
        if streamed { return }
        // Second pass: the pages file came before its page map.
        let second = try ArchiveReader(path: path)
        while let entry = try second.nextEntry() {
            if imageName(entry) == "pages-\(layout.pagesID).img" {
                try copy(reader: second, layout: layout, body)
                return
            }
        }
    }

    private static func imageName(_ entry: ArchiveEntry) -> String? {
        let prefix = CheckpointLayout.checkpointDirectory + "/"
        guard entry.kind == .regular, entry.path.hasPrefix(prefix) else { return nil }
        return String(entry.path.dropFirst(prefix.count))
    }

    /// Hands each block of the pages file to `body`, split where it crosses from one pagemap run to the next.
    private static func copy(
        reader: ArchiveReader,
        layout: PagemapLayout,
        _ body: (UInt64, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try reader.readData { block, offset in
            var position = 0
            while position < block.count {
                let fileOffset = UInt64(offset) + UInt64(position)
                guard let address = layout.virtualAddress(ofFileOffset: fileOffset),
                      let segment = layout.segment(containing: address),
                      let range = segment.fileRange
                else { return false }  // past this process's data
                let length = min(block.count - position, Int(range.upperBound - fileOffset))
                try body(address, UnsafeRawBufferPointer(rebasing: block[position..<position + length]))
                position += length
            }
            return true
        }
    }
}
