/// The dump's table of contents (`inventory.img`, `inventory_entry`): image format, LSM, TCP and
/// network-locking choices and plugins — what a restoring host must match.
public struct InventoryEntry: ProtobufDecodable, Hashable {
    /// 1 for V1 images (no `IMG_COMMON` magic), 2 for V1.1, the current format.
    public var imageVersion: UInt32
    /// CRIU refuses images without it ("Too old image").
    public var fdinfoPerID: Bool?
    /// The ids of the root task's kernel objects.
    public var rootIDs: TaskKobjIDs?
    public var namespacePerID: Bool?
    public var rootCgroupSet: UInt32?
    /// `NO_LSM` 0, `SELINUX` 1, `APPARMOR` 2.
    public var lsmType: UInt32?
    /// Host uptime at dump time, in microseconds (`dump_uptime`).
    public var dumpUptime: UInt64?
    public var preDumpMode: UInt32?
    /// Whether established TCP connections were closed at dump (`--tcp-close`).
    public var tcpClose: Bool?
    /// `IPTABLES` 1, `NFTABLES` 2, `SKIP` 3 (CRIU `rpc.proto`).
    public var networkLockMethod: UInt32?
    /// Plugins the restore needs (e.g. GPU plugins); nil when the image predates the field, empty when none.
    public var plugins: [String]?
    public var dumpRunID: String?
    public var allowUprobes: Bool?

    public init(imageVersion: UInt32) { self.imageVersion = imageVersion }

    /// `lsmtype` by name: `NO_LSM`, `SELINUX`, `APPARMOR`, or the number.
    public var lsmName: String? {
        lsmType.map {
            switch $0 {
            case 0: "NO_LSM"
            case 1: "SELINUX"
            case 2: "APPARMOR"
            default: String($0)
            }
        }
    }

    /// `network_lock_method` by name: `IPTABLES`, `NFTABLES`, `SKIP`, or the number.
    public var networkLockMethodName: String? {
        networkLockMethod.map {
            switch $0 {
            case 1: "IPTABLES"
            case 2: "NFTABLES"
            case 3: "SKIP"
            default: String($0)
            }
        }
    }

    /// Reads `inventory.img` whole.
    public init(inventoryImage bytes: [UInt8]) throws {
        let name = "checkpoint/inventory.img"
        self = try CRIUImageFile(bytes: bytes, name: name, expecting: .inventory).decodeOne(Self.self, name: name)
    }

    public init(protobuf bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var version: UInt32?
        var entry = InventoryEntry(imageVersion: 0)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: version = try reader.uint32(field)
            case 2: entry.fdinfoPerID = try reader.bool(field)
            case 3: entry.rootIDs = try reader.message(field)
            case 4: entry.namespacePerID = try reader.bool(field)
            case 5: entry.rootCgroupSet = try reader.uint32(field)
            case 6: entry.lsmType = try reader.uint32(field)
            case 8: entry.dumpUptime = try reader.uint64(field)
            case 9: entry.preDumpMode = try reader.uint32(field)
            case 10: entry.tcpClose = try reader.bool(field)
            case 11: entry.networkLockMethod = try reader.uint32(field)
            case 12: entry.plugins = try reader.message(field, as: Plugins.self).names
            case 13: entry.dumpRunID = try reader.string(field)
            case 14: entry.allowUprobes = try reader.bool(field)
            default: try reader.skip(field)
            }
        }
        guard let version else { throw ProtobufReader.missing("img_version", in: "inventory_entry") }
        entry.imageVersion = version
        self = entry
    }

    /// `plugins_entry`: repeated string `plugins` = 12. A wrapper message so an empty list differs from none.
    private struct Plugins: ProtobufDecodable {
        var names: [String] = []

        init(protobuf bytes: ArraySlice<UInt8>) throws {
            var reader = ProtobufReader(bytes)
            while let field = try reader.nextField() {
                if field.number == 12 { names.append(try reader.string(field)) } else { try reader.skip(field) }
            }
        }
    }
}
