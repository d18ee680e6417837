internal import Foundation

/// `config.dump` in either shape: Podman's full libpod config, or the reduced checkpointctl `ContainerConfig`
/// that CRI-O and containerd write. Only the keys Ferry uses; the rest is ignored.
struct ConfigDump: Decodable {
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
    var pod: String?
    var namespace: String?

    enum CodingKeys: String, CodingKey {
        case id, name, rootfsImage, rootfsImageRef, rootfsImageName, rootfsImageID, runtime, createdTime
        case checkpointedTime, pod, namespace
        case rawImageName = "RawImageName"
    }
}

/// The parts of the OCI runtime spec (`spec.dump`) Ferry reads.
struct SpecDump: Decodable {
    var annotations: [String: String]?
    var mounts: [MountPoint]?
}

/// containerd's CRI `ContainerStatus` (`status.dump`).
struct StatusDump: Decodable {
    struct Metadata: Decodable { var name: String? }
    struct Image: Decodable { var image: String? }
    var id: String?
    var metadata: Metadata?
    var image: Image?
    var imageRef: String?
    var createdAt: String?

    enum CodingKeys: String, CodingKey {
        case id, metadata, image
        case imageRef = "image_ref"
        case createdAt = "created_at"
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
