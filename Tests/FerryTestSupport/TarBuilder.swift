import Foundation

/// Writes ustar archives byte by byte, so tests can build exactly the broken and hostile archives they need
/// (absolute paths, `..`, device nodes, escaping links, truncation, corrupt headers) without any tar tool's
/// sanitising.
public struct TarBuilder {
    /// Type flags of the ustar header.
    public enum EntryType: UInt8 {
        case regular = 0x30      // '0'
        case hardlink = 0x31     // '1'
        case symlink = 0x32      // '2'
        case characterDevice = 0x33
        case blockDevice = 0x34
        case directory = 0x35
        case fifo = 0x36
    }

    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Adds a regular file.
    public mutating func file(_ path: String, _ contents: [UInt8], mode: UInt32 = 0o644) {
        header(path: path, type: .regular, size: contents.count, mode: mode)
        bytes += contents
        pad()
    }

    public mutating func file(_ path: String, _ text: String, mode: UInt32 = 0o644) {
        file(path, Array(text.utf8), mode: mode)
    }

    /// The 512-byte header of a regular file of `size` bytes, for tests that stream a big entry to a file
    /// themselves (its data must be followed by zeros up to a multiple of 512).
    public static func regularFileHeader(_ path: String, size: Int) -> [UInt8] {
        var builder = TarBuilder()
        builder.header(path: path, type: .regular, size: size, mode: 0o644)
        return builder.bytes
    }

    public mutating func directory(_ path: String, mode: UInt32 = 0o755) {
        header(path: path.hasSuffix("/") ? path : path + "/", type: .directory, size: 0, mode: mode)
    }

    public mutating func symlink(_ path: String, to target: String) {
        header(path: path, type: .symlink, size: 0, mode: 0o777, link: target)
    }

    public mutating func hardlink(_ path: String, to target: String) {
        header(path: path, type: .hardlink, size: 0, mode: 0o644, link: target)
    }

    public mutating func device(_ path: String, type: EntryType = .characterDevice) {
        header(path: path, type: type, size: 0, mode: 0o666)
    }

    /// Copies every entry of another tar (uncompressed) into this one, except those `skip` returns true for.
    public mutating func copyEntries(of archive: [UInt8], skip: (String) -> Bool = { _ in false }) {
        var offset = 0
        while offset + 512 <= archive.count {
            let block = Array(archive[offset..<offset + 512])
            if block.allSatisfy({ $0 == 0 }) { break }
            let name = Self.string(block[0..<100])
            let prefix = Self.string(block[345..<500])
            let path = prefix.isEmpty ? name : prefix + "/" + name
            let size = Int(Self.string(block[124..<136]).trimmingCharacters(in: .whitespaces), radix: 8) ?? 0
            let total = 512 + (size + 511) / 512 * 512
            if !skip(path) { bytes += archive[offset..<min(offset + total, archive.count)] }
            offset += total
        }
    }

    /// The data of one entry of an uncompressed ustar archive (empty if absent).
    public static func extract(_ name: String, from archive: [UInt8]) -> [UInt8] {
        var offset = 0
        while offset + 512 <= archive.count {
            let header = Array(archive[offset..<offset + 512])
            if header.allSatisfy({ $0 == 0 }) { break }
            let size = Int(string(header[124..<136]).trimmingCharacters(in: .whitespaces), radix: 8) ?? 0
            if string(header[0..<100]) == name { return Array(archive[offset + 512..<min(archive.count, offset + 512 + size)]) }
            offset += 512 + (size + 511) / 512 * 512
        }
        return []
    }

    /// The finished archive: entries plus the two zero blocks that end a tar.
    public func finished() -> [UInt8] {
        bytes + [UInt8](repeating: 0, count: 1024)
    }

    private mutating func header(path: String, type: EntryType, size: Int, mode: UInt32, link: String = "") {
        var block = [UInt8](repeating: 0, count: 512)
        var name = path
        var prefix = ""
        if name.utf8.count > 100, let slash = name.lastIndex(of: "/") {
            prefix = String(name[..<slash])
            name = String(name[name.index(after: slash)...])
        }
        Self.put(name, into: &block, at: 0, length: 100)
        Self.put(Self.octal(Int(mode), width: 7), into: &block, at: 100, length: 8)
        Self.put(Self.octal(0, width: 7), into: &block, at: 108, length: 8)
        Self.put(Self.octal(0, width: 7), into: &block, at: 116, length: 8)
        Self.put(Self.octal(size, width: 11), into: &block, at: 124, length: 12)
        Self.put(Self.octal(1_764_046_984, width: 11), into: &block, at: 136, length: 12)
        block[156] = type.rawValue
        Self.put(link, into: &block, at: 157, length: 100)
        Self.put("ustar", into: &block, at: 257, length: 6)
        Self.put("00", into: &block, at: 263, length: 2)
        Self.put("root", into: &block, at: 265, length: 32)
        Self.put("root", into: &block, at: 297, length: 32)
        Self.put(prefix, into: &block, at: 345, length: 155)
        for index in 148..<156 { block[index] = 0x20 }
        let checksum = block.reduce(0) { $0 + Int($1) }
        Self.put(Self.octal(checksum, width: 6) + "\0 ", into: &block, at: 148, length: 8)
        bytes += block
    }

    private mutating func pad() {
        let remainder = bytes.count % 512
        if remainder != 0 { bytes += [UInt8](repeating: 0, count: 512 - remainder) }
    }

    static func octal(_ value: Int, width: Int) -> String {
        let digits = String(value, radix: 8)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    static func put(_ text: String, into block: inout [UInt8], at offset: Int, length: Int) {
        for (index, byte) in text.utf8.prefix(length).enumerated() { block[offset + index] = byte }
    }

    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
