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
public struct MemorySearch {
    public struct Match: Sendable, Equatable {
        public var address: UInt64
        public var text: String
        public init(address: UInt64, text: String) {
            self.address = address
            self.text = text
        }
    }

    public private(set) var matches: [Match] = []
    private let expression: NSRegularExpression
    private let context: Int
    /// Bytes of the current run not yet searched past, starting at `windowAddress`.
    private var window: [UInt8] = []
    private var windowAddress: UInt64 = 0
    /// The end of the last match, as an address, so that carried-over bytes are not matched twice.
    private var searchedTo: UInt64 = 0
    private let chunk: Int
    private let carry: Int

    public init(pattern: String, literal: Bool, context: Int, chunkSize: Int = 1 << 20) throws {
        let source = literal ? NSRegularExpression.escapedPattern(for: pattern) : pattern
        do {
            expression = try NSRegularExpression(pattern: source)
        } catch {
            throw MemorySearchError(pattern: pattern)
        }
        self.context = context
        self.chunk = chunkSize
        self.carry = min(64 << 10, chunkSize / 4)
    }

    public mutating func feed(address: UInt64, bytes: UnsafeRawBufferPointer) {
        if !window.isEmpty && windowAddress + UInt64(window.count) != address { flush(final: true) }
        if window.isEmpty { windowAddress = address }
        window.append(contentsOf: bytes.lazy.map { $0 < 32 || $0 >= 127 ? UInt8(ascii: "?") : $0 })
        if window.count >= chunk + carry { flush(final: false) }
    }

    public mutating func finish() {
        if !window.isEmpty { flush(final: true) }
    }

    /// Searches the window; unless `final`, keeps its last `carry` bytes for the next chunk.
    private mutating func flush(final: Bool) {
        let text = String(decoding: window, as: UTF8.self)  // all ASCII: one UTF-16 unit per byte
        let limit = final ? window.count : window.count - carry
        // Where the next chunk starts: at `limit`, or earlier to keep a match (and its context) that crosses it.
        var keepFrom = limit
        for result in expression.matches(in: text, range: NSRange(location: 0, length: window.count)) {
            let start = result.range.location
            let end = start + result.range.length
            let address = windowAddress + UInt64(start)
            guard address >= searchedTo, result.range.length > 0 else { continue }
            // A match that reaches into the carried tail is found again, whole, with the next chunk.
            guard final || end <= limit else {
                keepFrom = max(chunk / 2, min(keepFrom, start - context))
                continue
            }
            let from = max(0, start - context)
            let to = min(window.count, end + context)
            matches.append(Match(address: address, text: String(decoding: window[from..<to], as: UTF8.self)))
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
