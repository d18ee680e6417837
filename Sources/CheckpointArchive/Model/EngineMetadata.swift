internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// A field of an engine's metadata that Ferry could not use: of another type than engines write. Recorded, and
/// reported as a warning finding (`METADATA_FIELD_INVALID`), instead of refusing the archive: Ferry only shows
/// these fields. What a restore depends on (the container ID) is judged by its own rules.
public struct MetadataIssue: Sendable, Equatable {
    /// The file, e.g. `status.dump`.
    public var file: String
    /// The field's path in it, e.g. `created_at`, `metadata.name`.
    public var field: String
    public var problem: String

    public init(file: String, field: String, problem: String) {
        self.file = file
        self.field = field
        self.problem = problem
    }
}

/// One JSON object of a metadata file, read field by field. A field of an unexpected type is noted in `issues` and
/// read as absent.
final class LenientObject {
    let file: String
    let path: String
    let values: [String: Any]
    private let issues: IssueList

    final class IssueList {
        var items: [MetadataIssue] = []
    }

    /// Parses a metadata file that must be a JSON object (anything else is `METADATA_INVALID`).
    init(bytes: [UInt8], file: String, issues: IssueList) throws {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw CheckpointError(.metadataInvalid, "is not valid JSON", entry: file)
        }
        guard let object = value as? [String: Any] else {
            throw CheckpointError(.metadataInvalid, "is not a JSON object", entry: file)
        }
        self.file = file
        self.path = ""
        self.values = object
        self.issues = issues
    }

    private init(file: String, path: String, values: [String: Any], issues: IssueList) {
        self.file = file
        self.path = path
        self.values = values
        self.issues = issues
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    private func note(_ key: String, _ expected: String) {
        guard let value = values[key] else { return }
        issues.items.append(MetadataIssue(file: file, field: name(key), problem: "is \(Self.kind(of: value)), not \(expected)"))
    }

    static func kind(of value: Any) -> String {
        switch value {
        case is NSNull: "null"
        case let number as NSNumber: isBoolean(number) ? "a boolean" : "a number"
        case is String: "a string"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: "something else"
        }
    }

    /// JSON's true and false come out of JSONSerialization as NSNumber too (`is Bool` holds for 0 and 1 as well).
    static func isBoolean(_ number: NSNumber) -> Bool {
        String(describing: type(of: number)).contains("Boolean")
    }

    /// A string field; null and absent are nil without an issue.
    func string(_ key: String) -> String? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        if let text = value as? String { return text }
        note(key, "a string")
        return nil
    }

    /// A time: an RFC 3339 string (Go's `time.Time`), or a number of nanoseconds since the epoch (containerd's
    /// CRI status, Go `encoding/json` of an int64). As RFC 3339, whole seconds; nil for zero.
    func time(_ key: String) -> String? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        if let text = value as? String {
            if let nanoseconds = Int64(text) { return Self.rfc3339(nanoseconds: nanoseconds) }  // a proto int64 as text
            return EngineMetadata.isZeroTime(text) ? nil : EngineMetadata.rfc3339Seconds(text)
        }
        if let number = value as? NSNumber, !Self.isBoolean(number) {
            return Self.rfc3339(nanoseconds: number.int64Value)
        }
        note(key, "a time")
        return nil
    }

    /// An integer field (a number, or a string of digits as protobuf's JSON writes 64-bit ones).
    func integer(_ key: String) -> Int64? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        if let number = value as? NSNumber, !Self.isBoolean(number) { return number.int64Value }
        if let text = value as? String, let number = Int64(text) { return number }
        note(key, "a number")
        return nil
    }

    /// A nested object.
    func object(_ key: String) -> LenientObject? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        if let nested = value as? [String: Any] { return LenientObject(file: file, path: name(key), values: nested, issues: issues) }
        note(key, "an object")
        return nil
    }

    static func rfc3339(nanoseconds: Int64) -> String? {
        guard nanoseconds > 0 else { return nil }
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}

/// `config.dump` in either shape: Podman's full libpod config, or the reduced checkpointctl `ContainerConfig`
/// that CRI-O and containerd write. Only the keys Ferry uses; the rest is ignored.
struct ConfigDump {
    var id: String?
    var name: String?
    var rootfsImage: String?
    var rootfsImageRef: String?
    var rootfsImageName: String?
    var rootfsImageID: String?
    var rawImageName: String?
    var runtime: String?
    var createdTime: String?
    var checkpointedTime: String?

    init(_ object: LenientObject) {
        id = object.string("id")
        name = object.string("name")
        rootfsImage = object.string("rootfsImage")
        rootfsImageRef = object.string("rootfsImageRef")
        rootfsImageName = object.string("rootfsImageName")
        rootfsImageID = object.string("rootfsImageID")
        rawImageName = object.string("RawImageName")
        runtime = object.string("runtime")
        createdTime = object.time("createdTime")
        checkpointedTime = object.string("checkpointedTime")
        if checkpointedTime == nil { checkpointedTime = object.time("checkpointedTime") }
    }
}

/// The parts of the OCI runtime spec (`spec.dump`) Ferry reads.
struct SpecDump: Decodable {
    var annotations: [String: String]?
    var mounts: [MountPoint]?
}

/// containerd's CRI `ContainerStatus` (`status.dump`), as containerd's `CheckpointContainer` writes it: Go's
/// `encoding/json` of the CRI message, so the proto field names as keys (`image_ref`, `created_at`,
/// `metadata.attempt`, `mounts[].container_path`), times as numbers of nanoseconds since the epoch, `state` as a
/// number (0 created, 1 running, 2 exited, 3 unknown), and zero values left out.
struct StatusDump {
    var id: String?
    var name: String?
    var attempt: Int64?
    var state: String?
    var image: String?
    var imageRef: String?
    var createdAt: String?
    var startedAt: String?
    var finishedAt: String?

    static let states = [0: "created", 1: "running", 2: "exited", 3: "unknown"]

    init(_ object: LenientObject) {
        id = object.string("id")
        let metadata = object.object("metadata")
        name = metadata?.string("name")
        attempt = metadata?.integer("attempt")
        if let number = object.values["state"] as? NSNumber, let known = Self.states[number.intValue] {
            state = known
        } else {
            // protobuf's JSON mapping writes the enum's name; fold it to the same words.
            state = object.string("state").map { $0.lowercased().replacingOccurrences(of: "container_", with: "") }
        }
        image = object.object("image")?.string("image")
        imageRef = object.string("image_ref")
        createdAt = object.time("created_at")
        startedAt = object.time("started_at")
        finishedAt = object.time("finished_at")
    }
}

/// containerd's own container status (the `status` file): Go's `encoding/json` of containerstore's `Status`, field
/// names as in Go, times as nanoseconds.
struct ContainerdStatus {
    var createdAt: String?
    var startedAt: String?

    init(_ object: LenientObject) {
        createdAt = object.time("CreatedAt")
        startedAt = object.time("StartedAt")
    }
}

/// Parses the JSON metadata files of a checkpoint. Every failure names the file and becomes `METADATA_INVALID`.
enum EngineMetadata {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], file: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw CheckpointError(.metadataInvalid, "is not valid \(file) JSON: \(describe(error))", entry: file)
        } catch {
            throw CheckpointError(.metadataInvalid, "is not valid JSON", entry: file)
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context): return context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// `network.status` in both shapes: Podman ≥ 4 writes an object keyed by network name; Podman 3 wrote an
    /// array of CNI results; a container in a pod has the literal `null`.
    static func networks(from bytes: [UInt8]) throws -> [NetworkAttachment] {
        let file = CheckpointLayout.networkStatus
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw CheckpointError(.metadataInvalid, "is not valid JSON", entry: file)
        }
        if value is NSNull { return [] }
        if let object = value as? [String: Any] {
            return try object.keys.sorted().map { networkName in
                guard let block = object[networkName] as? [String: Any] else {
                    throw CheckpointError(.metadataInvalid, "network \(networkName) is not an object", entry: file)
                }
                let interfaces = (block["interfaces"] as? [String: Any]) ?? [:]
                return NetworkAttachment(
                    name: networkName,
                    interfaces: interfaces.keys.sorted().map { interfaceName in
                        let interface = interfaces[interfaceName] as? [String: Any] ?? [:]
                        let subnets = interface["subnets"] as? [[String: Any]] ?? []
                        return NetworkInterface(
                            name: interfaceName,
                            addresses: subnets.compactMap { $0["ipnet"] as? String },
                            gateways: subnets.compactMap { $0["gateway"] as? String },
                            mac: interface["mac_address"] as? String
                        )
                    }
                )
            }
        }
        if let results = value as? [Any] {
            // CNI 0.4.0 results: `ips[].interface` indexes `interfaces[]`.
            return try results.enumerated().map { index, element in
                guard let result = element as? [String: Any] else {
                    throw CheckpointError(.metadataInvalid, "CNI result \(index) is not an object", entry: file)
                }
                let cniInterfaces = result["interfaces"] as? [[String: Any]] ?? []
                let ips = result["ips"] as? [[String: Any]] ?? []
                var interfaces: [NetworkInterface] = []
                for ip in ips {
                    let position = ip["interface"] as? Int
                    let cniInterface = position.flatMap { $0 < cniInterfaces.count ? cniInterfaces[$0] : nil }
                    let name = cniInterface?["name"] as? String ?? "eth\(interfaces.count)"
                    let address = ip["address"] as? String
                    let gateway = ip["gateway"] as? String
                    if let existing = interfaces.firstIndex(where: { $0.name == name }) {
                        if let address { interfaces[existing].addresses.append(address) }
                        if let gateway { interfaces[existing].gateways.append(gateway) }
                    } else {
                        interfaces.append(NetworkInterface(
                            name: name,
                            addresses: address.map { [$0] } ?? [],
                            gateways: gateway.map { [$0] } ?? [],
                            mac: cniInterface?["mac"] as? String
                        ))
                    }
                }
                return NetworkAttachment(name: results.count == 1 ? "cni" : "cni-\(index)", interfaces: interfaces)
            }
        }
        throw CheckpointError(.metadataInvalid, "is neither an object of networks nor an array of CNI results", entry: file)
    }

    /// Formats an RFC 3339 time as Go's `time.RFC3339` does: whole seconds, `Z` for a zero offset, other offsets
    /// kept. Returns the input unchanged if it is not RFC 3339.
    static func rfc3339Seconds(_ text: String) -> String {
        guard let tIndex = text.firstIndex(of: "T") else { return text }
        let timePart = text[text.index(after: tIndex)...]
        guard let zoneStart = timePart.firstIndex(where: { $0 == "Z" || $0 == "z" || $0 == "+" || $0 == "-" }) else {
            return text
        }
        var clock = String(timePart[..<zoneStart])
        if let dot = clock.firstIndex(of: ".") { clock = String(clock[..<dot]) }
        var zone = String(timePart[zoneStart...])
        if zone == "z" || zone == "+00:00" { zone = "Z" }
        return String(text[...tIndex]) + clock + zone
    }

    /// True for Go's zero time, which the reduced config writes for "never".
    static func isZeroTime(_ text: String) -> Bool {
        text.hasPrefix("0001-01-01T00:00:00")
    }
}
