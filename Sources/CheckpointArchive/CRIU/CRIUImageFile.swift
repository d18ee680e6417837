/// One protobuf CRIU image read whole: its magic checked, its entries split out.
///
/// Framing (CRIU `criu/image.c`): a u32 `IMG_COMMON` (or `IMG_SERVICE`) magic, then the per-type magic, then
/// entries until end of file, each a little-endian u32 length followed by that many bytes of protobuf.
/// `inventory.img` has only its own magic. Images of format V1 (`inventory.img_version` 1) lack the common magic;
/// they are accepted too, as go-criu does. Layouts that put raw payload after an entry (`ghost-file-*`,
/// `pipes-data`, …) are not read here.
public struct CRIUImageFile: Sendable {
    /// The per-type magic found in the file.
    public let magic: CRIUMagic
    /// The protobuf body of each entry, in file order, as slices of the file's bytes.
    public let entries: [ArraySlice<UInt8>]

    /// Checks the magic(s) and splits `bytes` into entries.
    ///
    /// - Parameters:
    ///   - bytes: The whole image.
    ///   - name: The archive entry, e.g. `checkpoint/core-1.img`; it is put on every error.
    ///   - expected: The per-type magic the file must carry.
    ///   - service: Whether the file is a service file (`IMG_SERVICE` prefix) rather than an image.
    /// - Throws: `CRIU_BAD_MAGIC` naming what was expected and found; `CRIU_IMAGE_TRUNCATED` when the file ends
    ///   inside a magic, a length prefix or an entry body.
    public init(bytes: [UInt8], name: String, expecting expected: CRIUMagic, service: Bool = false) throws {
        var offset = 0
        func readU32() throws -> UInt32? {
            guard offset < bytes.count else { return nil }
            guard bytes.count - offset >= 4 else {
                throw CheckpointError(
                    .criuImageTruncated, "the image ends inside a 4-byte field at offset \(offset)", entry: name)
            }
            defer { offset += 4 }
            return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24
        }

        guard let first = try readU32() else {
            throw CheckpointError(.criuImageTruncated, "the image is empty; expected magic \(expected)", entry: name)
        }
        let prefix: CRIUMagic = service ? .imgService : .imgCommon
        if expected == .inventory || first == expected.rawValue {
            // inventory.img, or a V1 image without the common prefix.
            guard first == expected.rawValue else {
                throw Self.badMagic(expected: expected, found: CRIUMagic(rawValue: first), name: name)
            }
        } else {
            guard first == prefix.rawValue else {
                throw Self.badMagic(expected: prefix, found: CRIUMagic(rawValue: first), name: name)
            }
            guard let second = try readU32() else {
                throw CheckpointError(
                    .criuImageTruncated, "the image ends after \(prefix); expected magic \(expected)", entry: name)
            }
            guard second == expected.rawValue else {
                throw Self.badMagic(expected: expected, found: CRIUMagic(rawValue: second), name: name)
            }
        }
        magic = expected

        var entries: [ArraySlice<UInt8>] = []
        while let length = try readU32() {
            guard UInt64(length) <= UInt64(bytes.count - offset) else {
                throw CheckpointError(
                    .criuImageTruncated,
                    "entry \(entries.count) claims \(length) bytes but only \(bytes.count - offset) remain",
                    entry: name)
            }
            entries.append(bytes[offset..<offset + Int(length)])
            offset += Int(length)
        }
        self.entries = entries
    }

    /// The per-type magic an image's name calls for (`core-1.img` → `CORE`, `pages-1.img` → `RAW`); nil for
    /// names Ferry does not decode.
    public static func expectedMagic(forImageNamed name: String) -> CRIUMagic? {
        CRIUImageKind(imageName: name)?.magic
    }

    private static func badMagic(expected: CRIUMagic, found: CRIUMagic, name: String) -> CheckpointError {
        CheckpointError(.criuBadMagic, "expected magic \(expected), found \(found)", entry: name)
    }

    /// Decodes every entry as `T`, naming `name` on errors.
    func decodeAll<T: ProtobufDecodable>(_ type: T.Type, name: String) throws -> [T] {
        do {
            return try entries.map { try T(protobuf: $0) }
        } catch let error as CheckpointError {
            throw error.inEntry(name)
        }
    }

    /// Decodes the single entry of a one-entry image (`core-*`, `ids-*`, `mm-*`, `fs-*`, `inventory.img`).
    func decodeOne<T: ProtobufDecodable>(_ type: T.Type, name: String) throws -> T {
        guard let first = entries.first else {
            throw CheckpointError(.criuImageInvalid, "the image holds no entry", entry: name)
        }
        do {
            return try T(protobuf: first)
        } catch let error as CheckpointError {
            throw error.inEntry(name)
        }
    }
}
