public import Foundation

/// An invalid regular expression given to `memparse --search-regex`.
public struct MemorySearchError: Error, CustomStringConvertible {
    public var pattern: String
    public var description: String { "not a valid regular expression: \(pattern)" }
}

/// 16 lowercase hex digits, as checkpointctl prints addresses.
public func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

/// checkpointctl's hexdump: 16 bytes a row, `ADDRESS  HEX |ASCII|`, rows equal to the one before folded into `*`
/// when compact. Rows restart at each new run of pages, as in checkpointctl.
public struct Hexdump {
    let compact: Bool
    private var row: [UInt8] = []
    private var rowAddress: UInt64 = 0
    private var previousASCII: String?
    private var folded = false

    public init(compact: Bool) { self.compact = compact }

    public mutating func append(address: UInt64, bytes: UnsafeRawBufferPointer, into out: inout Data) {
        if !row.isEmpty && rowAddress + UInt64(row.count) != address { flushRow(into: &out) }
        if row.isEmpty { rowAddress = address }
        for byte in bytes {
            row.append(byte)
            if row.count == 16 { flushRow(into: &out) }
        }
    }

    public mutating func finish(into out: inout Data) {
        if !row.isEmpty { flushRow(into: &out) }
    }

    private mutating func flushRow(into out: inout Data) {
        let hex = row.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) + " " }.joined()
        let ascii = String(decoding: row.map { $0 < 32 || $0 >= 127 ? UInt8(ascii: ".") : $0 }, as: UTF8.self)
        if compact && ascii == previousASCII {
            if !folded { out.append(Data("*\n".utf8)) }
            folded = true
        } else {
            out.append(Data("\(hex16(rowAddress))  \(hex) |\(ascii)|\n".utf8))
            folded = false
        }
        previousASCII = ascii
        rowAddress += UInt64(row.count)
        row.removeAll(keepingCapacity: true)
    }
}

/// Searches a process's memory as it streams past, as checkpointctl does: every byte outside printable ASCII is
/// read as `?`, matches do not overlap, and each is shown with `context` bytes on either side. Runs of pages are
/// searched separately; a window of the last bytes is carried across chunks so no match is lost at a boundary.
///
/// A literal is searched for in the raw bytes (memchr and memcmp: no copy, no decoding): a
/// printable pattern without `?` matches exactly where it would in the `?`-mapped text, since mapping leaves
/// printable bytes alone. A literal with `?` is searched in the mapped bytes; one with a byte that is not
/// printable ASCII matches nothing (no mapped byte is one). Only `--search-regex` runs a regular expression
/// (Foundation's, on the mapped text).
public struct MemorySearch {
    public struct Match: Sendable, Equatable {
        public var address: UInt64
        public var text: String
        public init(address: UInt64, text: String) {
            self.address = address
            self.text = text
        }
    }

    private enum Matcher {
        /// memmem over the raw window (`mapped`: over the `?`-mapped window).
        case bytes([UInt8], mapped: Bool)
        /// A pattern that cannot match.
        case nothing
        case expression(NSRegularExpression)
    }

    public private(set) var matches: [Match] = []
    private let matcher: Matcher
    private let context: Int
    /// Raw bytes of the current run not yet searched past, starting at `windowAddress`.
    private var window: [UInt8] = []
    private var windowAddress: UInt64 = 0
    /// The end of the last match, as an address, so that carried-over bytes are not matched twice.
    private var searchedTo: UInt64 = 0
    private let chunk: Int
    private let carry: Int

    public init(pattern: String, literal: Bool, context: Int, chunkSize: Int = 1 << 20) throws {
        if literal {
            let bytes = Array(pattern.utf8)
            if bytes.isEmpty || !bytes.allSatisfy(Self.isPrintable) {
                matcher = .nothing
            } else {
                matcher = .bytes(bytes, mapped: bytes.contains(UInt8(ascii: "?")))
            }
        } else {
            do {
                matcher = .expression(try NSRegularExpression(pattern: pattern))
            } catch {
                throw MemorySearchError(pattern: pattern)
            }
        }
        self.context = context
        self.chunk = chunkSize
        self.carry = min(64 << 10, chunkSize / 4)
    }

    static func isPrintable(_ byte: UInt8) -> Bool { byte >= 32 && byte < 127 }

    static func mapped(_ byte: UInt8) -> UInt8 { isPrintable(byte) ? byte : UInt8(ascii: "?") }

    public mutating func feed(address: UInt64, bytes: UnsafeRawBufferPointer) {
        if case .nothing = matcher { return }
        if !window.isEmpty && windowAddress + UInt64(window.count) != address { flush(final: true) }
        if window.isEmpty { windowAddress = address }
        window.append(contentsOf: bytes)
        if window.count >= chunk + carry { flush(final: false) }
    }

    public mutating func finish() {
        if !window.isEmpty { flush(final: true) }
    }

    /// Match ranges (start, end) in the window, left to right, not overlapping.
    private func ranges() -> [(start: Int, end: Int)] {
        switch matcher {
        case .nothing:
            return []
        case .bytes(let needle, let mapped):
            let haystack = mapped ? window.map(Self.mapped) : window
            var found: [(start: Int, end: Int)] = []
            haystack.withUnsafeBytes { hay in
                needle.withUnsafeBytes { pin in
                    guard let base = hay.baseAddress else { return }
                    // memchr (glibc's vectorised scan) for the first byte, memcmp for the rest: memmem's job,
                    // which Swift's Glibc module does not export.
                    let first = Int32(needle[0])
                    var offset = 0
                    while offset + pin.count <= hay.count,
                          let hit = memchr(base + offset, first, hay.count - offset - pin.count + 1) {
                        let start = base.distance(to: UnsafeRawPointer(hit))
                        if let pattern = pin.baseAddress, memcmp(hit, pattern, pin.count) == 0 {
                            found.append((start, start + pin.count))
                            offset = start + pin.count
                        } else {
                            offset = start + 1
                        }
                    }
                }
            }
            return found
        case .expression(let expression):
            // All ASCII after mapping: one UTF-16 unit per byte, so NSRange offsets are byte offsets.
            let text = String(decoding: window.map(Self.mapped), as: UTF8.self)
            return expression.matches(in: text, range: NSRange(location: 0, length: window.count))
                .map { ($0.range.location, $0.range.location + $0.range.length) }
        }
    }

    /// Searches the window; unless `final`, keeps its last `carry` bytes for the next chunk.
    private mutating func flush(final: Bool) {
        let limit = final ? window.count : window.count - carry
        // Where the next chunk starts: at `limit`, or earlier to keep a match (and its context) that crosses it.
        var keepFrom = limit
        for (start, end) in ranges() {
            let address = windowAddress + UInt64(start)
            guard address >= searchedTo, end > start else { continue }
            // A match that reaches into the carried tail is found again, whole, with the next chunk.
            guard final || end <= limit else {
                keepFrom = max(chunk / 2, min(keepFrom, start - context))
                continue
            }
            let from = max(0, start - context)
            let to = min(window.count, end + context)
            matches.append(Match(address: address, text: String(decoding: window[from..<to].map(Self.mapped), as: UTF8.self)))
            searchedTo = windowAddress + UInt64(end)
        }
        if final {
            window.removeAll(keepingCapacity: true)
            searchedTo = 0
        } else {
            window.removeFirst(keepFrom)
            windowAddress += UInt64(keepFrom)
        }
    }
}
