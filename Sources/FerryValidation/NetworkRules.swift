internal import CheckpointArchive

/// The network rules: every address, gateway and MAC a restore would re-request must be one an interface can own.
/// Podman's `network.status` carries CIDR addresses, gateways and MACs; CRI-O's `io.kubernetes.cri-o.IP.N`
/// annotations carry bare pod IPs.
enum NetworkRules {
    static func findings(for manifest: CheckpointManifest) -> [Finding] {
        var findings: [Finding] = []
        // Where each address was first seen, to spot one address on two interfaces.
        var firstSeen: [IPAddress: String] = [:]

        func noteDuplicate(_ address: IPAddress, text: String, at location: String) {
            let key = address.unmapped
            if let earlier = firstSeen[key] {
                findings.append(Finding(
                    .ipAddressDuplicate, .warning, path: location, "address \(text) is also on \(earlier)"))
            } else {
                firstSeen[key] = location
            }
        }

        for network in manifest.networks {
            for interface in network.interfaces {
                let location = "\(CheckpointLayout.networkStatus):\(network.name)/\(interface.name)"
                var subnets: [IPSubnet] = []
                for text in interface.addresses {
                    guard let subnet = IPSubnet(cidr: text) else {
                        findings.append(Finding(
                            .ipAddressInvalid, .error, path: location,
                            "address \"\(text)\" is not an IP address with a prefix length (CIDR)"))
                        continue
                    }
                    subnets.append(subnet)
                    if let kind = subnet.address.reservedKind ?? subnet.specialHostKind {
                        findings.append(Finding(.ipAddressReserved, .error, path: location, "address \(text) is \(kind)"))
                    }
                    noteDuplicate(subnet.address, text: text, at: location)
                }
                for text in interface.gateways {
                    if let problem = gatewayProblem(text, subnets: subnets) {
                        findings.append(Finding(problem.code, .error, path: location, problem.message))
                    }
                }
                if let mac = interface.mac, !mac.isEmpty, let problem = macProblem(mac) {
                    findings.append(Finding(.macAddressInvalid, .error, path: location, "MAC address \"\(mac)\" \(problem)"))
                }
            }
        }

        for (key, text) in podIPAnnotations(manifest.annotations) {
            let location = "\(CheckpointLayout.specDump):\(key)"
            guard let address = IPAddress(text) else {
                findings.append(Finding(.ipAddressInvalid, .error, path: location, "pod IP \"\(text)\" is not an IP address"))
                continue
            }
            if let kind = address.reservedKind {
                findings.append(Finding(.ipAddressReserved, .error, path: location, "pod IP \(text) is \(kind)"))
            }
            noteDuplicate(address, text: text, at: location)
        }
        return findings
    }

    /// `io.kubernetes.cri-o.IP.N` annotations in index order, with their keys (the path of a finding).
    static func podIPAnnotations(_ annotations: [String: String]) -> [(key: String, value: String)] {
        annotations.compactMap { key, value -> (Int, String, String)? in
            guard key.hasPrefix(AnnotationKey.crioIPPrefix),
                  let index = Int(key.dropFirst(AnnotationKey.crioIPPrefix.count))
            else { return nil }
            return (index, key, value)
        }
        .sorted { $0.0 < $1.0 }
        .map { (key: $0.1, value: $0.2) }
    }

    private static func gatewayProblem(_ text: String, subnets: [IPSubnet]) -> (code: FindingCode, message: String)? {
        guard let gateway = IPAddress(text) else {
            return (.gatewayInvalid, "gateway \"\(text)\" is not an IP address")
        }
        if gateway.isUnspecified || gateway.isLoopback || gateway.isMulticast || gateway.isLimitedBroadcast {
            return (.gatewayInvalid, "gateway \(text) is \(gateway.reservedKind ?? "reserved")")
        }
        if subnets.contains(where: { $0.address.unmapped == gateway.unmapped }) {
            return (.gatewayInvalid, "gateway \(text) is the interface's own address")
        }
        // No subnet parsed: the addresses are reported already, and there is nothing to compare with.
        guard !subnets.isEmpty else { return nil }
        if let containing = subnets.first(where: { $0.contains(gateway) }) {
            let candidate = containing.address.isIPv4 ? gateway.unmapped : gateway
            if let kind = IPSubnet(address: candidate, prefixLength: containing.prefixLength).specialHostKind {
                return (.gatewayInvalid, "gateway \(text) is \(kind)")
            }
            return nil
        }
        // IPv6 routers are usually reached at their link-local address, which no interface subnet contains.
        if !gateway.unmapped.isIPv4 && gateway.isLinkLocal { return nil }
        let prefixes = subnets.map { "\($0.address.bytes.count == 4 ? "IPv4" : "IPv6") /\($0.prefixLength)" }
        return (.gatewayOutsideSubnet,
                "gateway \(text) is outside the interface's subnets (\(prefixes.joined(separator: ", ")))")
    }

    /// Why `text` cannot be an interface's MAC address, or nil when it can.
    static func macProblem(_ text: String) -> String? {
        guard let mac = MACAddress(text) else { return "is not six hex octets" }
        if mac.isZero { return "is all zeros" }
        if mac.isMulticast { return "is a multicast address" }
        return nil
    }
}
