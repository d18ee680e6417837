/// The protobuf wire types proto2 uses. Groups (3, 4) are deprecated and never written by CRIU, so they count as
/// malformed input.
enum ProtobufWireType: UInt8, Sendable {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case fixed32 = 5
}

/// One field key read from the wire: its number and how its value is encoded.
struct ProtobufField: Sendable {
    var number: UInt32
    var wireType: ProtobufWireType
}

/// A minimal proto2 wire reader over one message's bytes. CRIU images need only a few messages and a handful of
/// field numbers, so this decodes by hand instead of generating code; fields it is not asked about are skipped by
/// wire type. Every malformed input throws `CRIU_IMAGE_INVALID` (never traps): CRIU images come from untrusted
/// archives.
struct ProtobufReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    var isAtEnd: Bool { index >= bytes.endIndex }

    /// The next field key, or nil at the end of the message.
    mutating func nextField() throws -> ProtobufField? {
        guard !isAtEnd else { return nil }
        let key = try readVarint()
        let number = key >> 3
        guard number > 0, number <= 0x1FFF_FFFF else {
            throw Self.invalid("field number \(number) is out of range")
        }
        guard let wireType = ProtobufWireType(rawValue: UInt8(key & 7)) else {
            throw Self.invalid("field \(number) has unsupported wire type \(key & 7)")
        }
        return ProtobufField(number: UInt32(number), wireType: wireType)
    }

    /// A base-128 varint of at most ten bytes whose value fits in 64 bits.
    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < bytes.endIndex else { throw Self.invalid("varint runs past the end of the message") }
            let byte = bytes[index]
            index += 1
            // The tenth byte may only carry the 64th bit.
            if shift == 63 && byte > 1 { throw Self.invalid("varint overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func readFixed32() throws -> UInt32 {
        guard bytes.endIndex - index >= 4 else { throw Self.invalid("fixed32 runs past the end of the message") }
        var value: UInt32 = 0
        for offset in 0..<4 { value |= UInt32(bytes[index + offset]) << (8 * UInt32(offset)) }
        index += 4
        return value
    }

    mutating func readFixed64() throws -> UInt64 {
        guard bytes.endIndex - index >= 8 else { throw Self.invalid("fixed64 runs past the end of the message") }
        var value: UInt64 = 0
        for offset in 0..<8 { value |= UInt64(bytes[index + offset]) << (8 * UInt64(offset)) }
        index += 8
        return value
    }

    /// The body of a length-delimited field (bytes, string, sub-message or packed repeated values).
    mutating func readLengthDelimited() throws -> ArraySlice<UInt8> {
        let length = try readVarint()
        guard length <= UInt64(bytes.endIndex - index) else {
            throw Self.invalid("length-delimited field of \(length) bytes runs past the end of the message")
        }
        let end = index + Int(length)
        defer { index = end }
        return bytes[index..<end]
    }

    /// Skips the value of a field nobody asked for.
    mutating func skip(_ field: ProtobufField) throws {
        switch field.wireType {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        }
    }

    // MARK: Typed values, checked against the field's declared wire type

    mutating func uint64(_ field: ProtobufField) throws -> UInt64 {
        try expect(field, .varint)
        return try readVarint()
    }

    mutating func uint32(_ field: ProtobufField) throws -> UInt32 {
        try expect(field, .varint)
        let value = try readVarint()
        guard let narrow = UInt32(exactly: value) else {
            throw Self.invalid("field \(field.number) holds \(value), more than a uint32")
        }
        return narrow
    }

    mutating func bool(_ field: ProtobufField) throws -> Bool {
        try uint64(field) != 0
    }

    /// A `sint32`/`sint64` (zigzag) value.
    mutating func sint64(_ field: ProtobufField) throws -> Int64 {
        let raw = try uint64(field)
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func bytesValue(_ field: ProtobufField) throws -> ArraySlice<UInt8> {
        try expect(field, .lengthDelimited)
        return try readLengthDelimited()
    }

    /// A proto2 `string`. proto2 does not require UTF-8, so invalid sequences become U+FFFD as Go's JSON does.
    mutating func string(_ field: ProtobufField) throws -> String {
        String(decoding: try bytesValue(field), as: UTF8.self)
    }

    /// A nested message, decoded by `T`.
    mutating func message<T: ProtobufDecodable>(_ field: ProtobufField, as type: T.Type = T.self) throws -> T {
        try T(protobuf: try bytesValue(field))
    }

    /// One occurrence of a `repeated uint32`: either a single varint or a packed run of them. Writers may use
    /// either encoding (protobuf-c does not pack unless asked), so both are accepted for the same field.
    mutating func appendUInt32s(_ field: ProtobufField, to values: inout [UInt32]) throws {
        switch field.wireType {
        case .varint:
            values.append(try uint32(field))
        case .lengthDelimited:
            var packed = ProtobufReader(try readLengthDelimited())
            while !packed.isAtEnd {
                let value = try packed.readVarint()
                guard let narrow = UInt32(exactly: value) else {
                    throw Self.invalid("packed field \(field.number) holds \(value), more than a uint32")
                }
                values.append(narrow)
            }
        default:
            throw Self.invalid("field \(field.number) has wire type \(field.wireType.rawValue), expected a varint")
        }
    }

    /// One occurrence of a `repeated fixed32`, packed or not.
    mutating func appendFixed32s(_ field: ProtobufField, to values: inout [UInt32]) throws {
        switch field.wireType {
        case .fixed32:
            values.append(try readFixed32())
        case .lengthDelimited:
            var packed = ProtobufReader(try readLengthDelimited())
            while !packed.isAtEnd { values.append(try packed.readFixed32()) }
        default:
            throw Self.invalid("field \(field.number) has wire type \(field.wireType.rawValue), expected fixed32")
        }
    }

    private func expect(_ field: ProtobufField, _ wireType: ProtobufWireType) throws {
        guard field.wireType == wireType else {
            throw Self.invalid(
                "field \(field.number) has wire type \(field.wireType.rawValue), expected \(wireType.rawValue)")
        }
    }

    static func invalid(_ message: String) -> CheckpointError {
        CheckpointError(.criuImageInvalid, message)
    }

    /// The error for a message that lacks a `required` field.
    static func missing(_ field: String, in message: String) -> CheckpointError {
        CheckpointError(.criuImageInvalid, "\(message) lacks required field \(field)")
    }
}

/// A message type decoded from its protobuf bytes with `ProtobufReader`.
public protocol ProtobufDecodable: Sendable {
    /// Decodes one message body (the bytes of one image entry, or of a nested field). Throws `CRIU_IMAGE_INVALID`.
    init(protobuf bytes: ArraySlice<UInt8>) throws
}

extension CheckpointError {
    /// The same error, naming the archive entry it concerns unless it already names one.
    func inEntry(_ entry: String) -> CheckpointError {
        var copy = self
        if copy.entry == nil { copy.entry = entry }
        return copy
    }
}
