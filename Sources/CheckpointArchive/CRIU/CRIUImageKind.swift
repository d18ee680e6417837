/// Which CRIU image a file under `checkpoint/` is, told from its name (CRIU `criu/image-desc.c`: `core-%u`,
/// `pagemap-%lu`, `pages-%u`, …). Only the images Ferry decodes are named; anything else is `nil`.
enum CRIUImageKind: Hashable, Sendable {
    case inventory
    case pstree
    case files
    case core(UInt32)
    case ids(UInt32)
    case mm(UInt32)
    case pagemap(UInt32)
    case pages(UInt32)
    case fdinfo(UInt32)
    case fs(UInt32)

    /// Parses `core-12.img` and friends; a leading `checkpoint/` is tolerated.
    init?(imageName: String) {
        var name = Substring(imageName)
        if name.hasPrefix("checkpoint/") { name = name.dropFirst("checkpoint/".count) }
        switch name {
        case "inventory.img": self = .inventory
        case "pstree.img": self = .pstree
        case "files.img": self = .files
        default:
            guard name.hasSuffix(".img"), let dash = name.lastIndex(of: "-") else { return nil }
            let prefix = name[..<dash]
            let number = name[name.index(after: dash)..<name.index(name.endIndex, offsetBy: -4)]
            // Decimal digits only: `UInt32("+1")` would accept a sign CRIU never writes.
            guard !number.isEmpty, number.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let id = UInt32(number)
            else { return nil }
            switch prefix {
            case "core": self = .core(id)
            case "ids": self = .ids(id)
            case "mm": self = .mm(id)
            case "pagemap": self = .pagemap(id)
            case "pages": self = .pages(id)
            case "fdinfo": self = .fdinfo(id)
            case "fs": self = .fs(id)
            default: return nil
            }
        }
    }

    /// The per-type magic that follows `IMG_COMMON`, or `RAW` for page data.
    var magic: CRIUMagic {
        switch self {
        case .inventory: .inventory
        case .pstree: .pstree
        case .files: .files
        case .core: .core
        case .ids: .ids
        case .mm: .mm
        case .pagemap: .pagemap
        case .pages: .raw
        case .fdinfo: .fdinfo
        case .fs: .fs
        }
    }
}
