import FerryInspect
import Foundation
import Testing

/// The streaming memory search: chunk boundaries, runs, context and checkpointctl's `?` for unprintable bytes.
@Suite("memory search")
struct MemorySearchTests {
    /// Feeds `memory` in pieces of `piece` bytes from `base`.
    func search(_ memory: [UInt8], pattern: String, literal: Bool = true, context: Int = 0, chunkSize: Int, piece: Int,
                base: UInt64 = 0x1000) throws -> [MemorySearch.Match] {
        var search = try MemorySearch(pattern: pattern, literal: literal, context: context, chunkSize: chunkSize)
        var offset = 0
        while offset < memory.count {
            let end = min(memory.count, offset + piece)
            memory[offset..<end].withUnsafeBytes { search.feed(address: base + UInt64(offset), bytes: $0) }
            offset = end
        }
        search.finish()
        return search.matches
    }

    @Test("matches across every chunk boundary are found once, at the right address")
    func chunkBoundaries() throws {
        let needle = Array("NEEDLE".utf8)
        var memory = [UInt8](repeating: UInt8(ascii: "."), count: 40_000)
        let positions = [0, 1019, 1030, 2040, 4093, 10_000, 39_994]
        for position in positions { memory.replaceSubrange(position..<position + needle.count, with: needle) }
        for chunkSize in [64, 1024, 4096] {
            for piece in [1, 7, 4096] {
                let matches = try search(memory, pattern: "NEEDLE", chunkSize: chunkSize, piece: piece)
                #expect(matches.map(\.address) == positions.map { 0x1000 + UInt64($0) }, "chunk \(chunkSize) piece \(piece)")
                #expect(matches.allSatisfy { $0.text == "NEEDLE" })
            }
        }
    }

    @Test("context is clipped at the ends of a run and unprintable bytes read as ?")
    func context() throws {
        let memory: [UInt8] = [0x00, 0x41, 0x42, 0x0a, 0x43, 0xff]
        let matches = try search(memory, pattern: "B\\?C", literal: false, context: 3, chunkSize: 1024, piece: 2)
        #expect(matches == [MemorySearch.Match(address: 0x1002, text: "?AB?C?")])
    }

    @Test("separate runs of pages are not searched as one")
    func runs() throws {
        var search = try MemorySearch(pattern: "AB", literal: true, context: 0)
        Array("xxA".utf8).withUnsafeBytes { search.feed(address: 0x1000, bytes: $0) }
        Array("Bxx".utf8).withUnsafeBytes { search.feed(address: 0x9000, bytes: $0) }
        Array("AB".utf8).withUnsafeBytes { search.feed(address: 0x9003, bytes: $0) }
        search.finish()
        #expect(search.matches.map(\.address) == [0x9003])
    }

    @Test("literal patterns are not regular expressions")
    func literal() throws {
        let memory = Array("a.c abc".utf8)
        #expect(try search(memory, pattern: "a.c", chunkSize: 1024, piece: 3).map(\.address) == [0x1000])
        #expect(try search(memory, pattern: "a.c", literal: false, chunkSize: 1024, piece: 3).count == 2)
    }

    @Test("the raw-byte literal search finds exactly what the regular expression over the ?-mapped text finds")
    func literalEqualsExpression() throws {
        // Pseudo-random memory (fixed seed): every byte value, with needles planted, some across chunk boundaries,
        // some overlapping, some next to unprintable bytes.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var memory = (0..<50_000).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for (position, text) in [(100, "SECRET"), (1020, "SECRET"), (4090, "aaaa"), (7000, "a?b"), (9000, "SECRET_TOKEN=x"),
                                 (20_000, "aaaaa"), (49_990, "SECRET")] {
            memory.replaceSubrange(position..<position + text.utf8.count, with: Array(text.utf8))
        }
        memory[7001] = 0x07  // "a\u{7}b": the mapped text has "a?b" there too
        for pattern in ["SECRET", "aa", "a?b", "?", "SECRET_TOKEN=x", "é", "", "\u{1}"] {
            for (chunkSize, piece) in [(1024, 7), (4096, 4096), (1 << 20, 1000)] {
                let literal = try search(memory, pattern: pattern, literal: true, context: 5, chunkSize: chunkSize, piece: piece)
                let expression = pattern.isEmpty ? [] : try search(memory, pattern: NSRegularExpression.escapedPattern(for: pattern), literal: false,
                                                                   context: 5, chunkSize: chunkSize, piece: piece)
                #expect(literal == expression, "pattern \(pattern) chunk \(chunkSize) piece \(piece): \(literal.count) vs \(expression.count)")
            }
        }
        #expect(try search(memory, pattern: "SECRET", chunkSize: 1024, piece: 7).count == 4)
        #expect(try search(Array("aaaa".utf8), pattern: "aa", chunkSize: 1024, piece: 1).map(\.address) == [0x1000, 0x1002])
    }

    @Test("an invalid regular expression is refused")
    func invalid() {
        #expect(throws: MemorySearchError.self) { try MemorySearch(pattern: "(", literal: false, context: 0) }
    }
}

/// checkpointctl's hexdump rows.
@Suite("hexdump")
struct HexdumpTests {
    @Test("rows of 16 bytes with ASCII, folding repeats when compact")
    func rows() {
        var dump = Hexdump(compact: true)
        var out = Data()
        let bytes = [UInt8](repeating: 0, count: 48) + Array("Hello, world!\n\u{7f}AB".utf8)
        bytes.withUnsafeBytes { dump.append(address: 0x7ffc0000, bytes: $0, into: &out) }
        dump.finish(into: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text == """
            000000007ffc0000  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  |................|
            *
            000000007ffc0030  48 65 6c 6c 6f 2c 20 77 6f 72 6c 64 21 0a 7f 41  |Hello, world!..A|
            000000007ffc0040  42  |B|

            """)
    }
}
