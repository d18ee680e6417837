import CheckpointArchive
import FerryTestSupport
@testable import FerryValidation
import Testing

/// Addresses, gateways and MACs in `network.status` and CRI-O's pod IP annotations.
@Suite("Network rules")
struct NetworkRuleTests {
    /// The Podman archive with `network.status` holding one interface per (address, gateway, MAC) triple, each on
    /// its own network `netN`.
    static func findings(_ interfaces: [(address: String, gateway: String, mac: String)]) throws -> [Finding] {
        var status: [String: Any] = [:]
        for (index, interface) in interfaces.enumerated() {
            status["net\(index)"] = ["interfaces": ["eth\(index)": [
                "subnets": [["ipnet": interface.address, "gateway": interface.gateway]],
                "mac_address": interface.mac,
            ]]]
        }
        let bytes = HostileArchive.bytes(
            from: HostileArchive.podman, replacing: ["network.status": try HostileArchive.json(status)])
        return try HostileArchive.findings(bytes)
    }

    struct AddressCase: CustomTestStringConvertible, Sendable {
        var address: String
        var gateway: String
        var mac: String
        var codes: [FindingCode]
        var testDescription: String { "\(address) via \(gateway), MAC \(mac)" }
    }

    static let cases: [AddressCase] = [
        .init(address: "10.88.0.6/16", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:dc", codes: []),
        .init(address: "fd00:88::6/64", gateway: "fd00:88::1", mac: "42:aa:5b:c0:e4:dc", codes: []),
        .init(address: "fd00:88::6/64", gateway: "fe80::1", mac: "42:aa:5b:c0:e4:dc", codes: []),
        .init(address: "10.88.0.300/16", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressInvalid]),
        .init(address: "10.88.0.6", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressInvalid]),
        .init(address: "10.88.0.6/33", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressInvalid]),
        .init(address: "010.88.0.6/16", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressInvalid]),
        .init(address: "fd00::88::6/64", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressInvalid]),
        .init(address: "10.88.0.0/16", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressReserved]),
        .init(address: "10.88.255.255/16", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressReserved]),
        .init(address: "127.0.0.5/8", gateway: "127.0.0.1", mac: "42:aa:5b:c0:e4:dc",
              codes: [.ipAddressReserved, .gatewayInvalid]),
        .init(address: "169.254.3.4/16", gateway: "169.254.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressReserved]),
        .init(address: "224.0.0.9/24", gateway: "224.0.0.1", mac: "42:aa:5b:c0:e4:dc",
              codes: [.ipAddressReserved, .gatewayInvalid]),
        .init(address: "0.0.0.0/8", gateway: "0.0.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressReserved]),
        .init(address: "::1/128", gateway: "fd00::1", mac: "42:aa:5b:c0:e4:dc",
              codes: [.ipAddressReserved, .gatewayOutsideSubnet]),
        .init(address: "fe80::5/64", gateway: "fe80::1", mac: "42:aa:5b:c0:e4:dc", codes: [.ipAddressReserved]),
        .init(address: "10.88.0.6/16", gateway: "10.99.0.1", mac: "42:aa:5b:c0:e4:dc", codes: [.gatewayOutsideSubnet]),
        .init(address: "10.88.0.6/16", gateway: "gateway", mac: "42:aa:5b:c0:e4:dc", codes: [.gatewayInvalid]),
        .init(address: "10.88.0.6/16", gateway: "10.88.0.6", mac: "42:aa:5b:c0:e4:dc", codes: [.gatewayInvalid]),
        .init(address: "10.88.0.6/16", gateway: "10.88.0.0", mac: "42:aa:5b:c0:e4:dc", codes: [.gatewayInvalid]),
        .init(address: "10.88.0.6/16", gateway: "10.88.0.1", mac: "01:00:5e:00:00:01", codes: [.macAddressInvalid]),
        .init(address: "10.88.0.6/16", gateway: "10.88.0.1", mac: "00:00:00:00:00:00", codes: [.macAddressInvalid]),
        .init(address: "10.88.0.6/16", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4", codes: [.macAddressInvalid]),
        .init(address: "10.88.0.6/16", gateway: "10.88.0.1", mac: "42:aa:5b:c0:e4:zz", codes: [.macAddressInvalid]),
    ]

    @Test("each address, gateway and MAC gives exactly its codes", arguments: cases)
    func eachAddressGivesExactlyItsCodes(_ testCase: AddressCase) throws {
        let findings = try Self.findings([(testCase.address, testCase.gateway, testCase.mac)])
        #expect(findings.codes == testCase.codes)
        #expect(findings.allSatisfy { $0.severity == .error && $0.path == "network.status:net0/eth0" })
    }

    @Test("the same address on two networks is a warning")
    func theSameAddressOnTwoNetworksIsAWarning() throws {
        let findings = try Self.findings([
            ("10.88.0.6/16", "10.88.0.1", "42:aa:5b:c0:e4:dc"), ("10.88.0.6/24", "10.88.0.1", "42:aa:5b:c0:e4:dd"),
        ])
        #expect(findings.codes == [.ipAddressDuplicate])
        #expect(findings.first?.severity == .warning)
        #expect(findings.first?.path == "network.status:net1/eth1")
        #expect(findings.first?.message == "address 10.88.0.6/24 is also on network.status:net0/eth0")
    }

    @Test("CRI-O pod IPs that do not parse or are reserved are errors, and a repeated one a warning")
    func badCRIOPodIPsAreErrors() throws {
        let spec = try HostileArchive.specDump(of: HostileArchive.crio) {
            $0["io.kubernetes.cri-o.IP.1"] = "10.244.1.300"
            $0["io.kubernetes.cri-o.IP.2"] = "::1"
            $0["io.kubernetes.cri-o.IP.10"] = "10.244.1.17"
        }
        let findings = try HostileArchive.findings(HostileArchive.bytes(from: HostileArchive.crio, replacing: ["spec.dump": spec]))
        #expect(findings.codes == [.ipAddressInvalid, .ipAddressReserved, .ipAddressDuplicate])
        #expect(findings.map(\.path) == [
            "spec.dump:io.kubernetes.cri-o.IP.1", "spec.dump:io.kubernetes.cri-o.IP.2", "spec.dump:io.kubernetes.cri-o.IP.10",
        ])
        #expect(findings.map(\.severity) == [.error, .error, .warning])
    }

    @Test("the old CNI array shape of network.status is checked too")
    func theCNIArrayShapeIsCheckedToo() throws {
        let status: [Any] = [[
            "cniVersion": "0.4.0",
            "interfaces": [["name": "eth0", "mac": "ff:ff:ff:ff:ff:ff", "sandbox": "/run/netns/x"]],
            "ips": [["version": "4", "interface": 0, "address": "10.88.0.7/16", "gateway": "10.77.0.1"]],
        ]]
        let bytes = HostileArchive.bytes(from: HostileArchive.podman, replacing: ["network.status": try HostileArchive.json(status)])
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == [.gatewayOutsideSubnet, .macAddressInvalid])
        #expect(findings.first?.path == "network.status:cni/eth0")
    }
}

/// The hand-written address parsers, on the forms they must accept and refuse.
@Suite("Address parsing")
struct AddressParsingTests {
    @Test("IPv4 and IPv6 texts parse to the right bytes")
    func addressesParseToTheRightBytes() {
        #expect(IPAddress("10.88.0.6")?.bytes == [10, 88, 0, 6])
        #expect(IPAddress("::")?.bytes == [UInt8](repeating: 0, count: 16))
        #expect(IPAddress("::1")?.bytes == [UInt8](repeating: 0, count: 15) + [1])
        #expect(IPAddress("fd00:88::6")?.bytes == [0xfd, 0, 0, 0x88] + [UInt8](repeating: 0, count: 11) + [6])
        #expect(IPAddress("1:2:3:4:5:6:7:8")?.bytes.count == 16)
        #expect(IPAddress("::ffff:10.1.2.3")?.unmapped.bytes == [10, 1, 2, 3])
        #expect(IPAddress("64:ff9b::192.0.2.33")?.bytes.suffix(4) == [192, 0, 2, 33])
    }

    @Test("malformed addresses are refused", arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", " 1.2.3.4", "1.2.3.4 ", "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", ":1::", "1::2:", "12345::", "g::1", "fe80::1%eth0", "1.2.3.4::",
        "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4",
    ])
    func malformedAddressesAreRefused(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test("subnets contain their addresses and know their network and broadcast addresses")
    func subnetsContainTheirAddresses() throws {
        let subnet = try #require(IPSubnet(cidr: "10.88.0.6/16"))
        #expect(subnet.contains(try #require(IPAddress("10.88.255.1"))))
        #expect(!subnet.contains(try #require(IPAddress("10.89.0.1"))))
        #expect(subnet.contains(try #require(IPAddress("::ffff:10.88.1.1"))))
        #expect(subnet.specialHostKind == nil)
        #expect(IPSubnet(cidr: "10.88.0.0/16")?.specialHostKind == "the network address of its subnet")
        #expect(IPSubnet(cidr: "10.88.255.255/16")?.specialHostKind == "the broadcast address of its subnet")
        #expect(IPSubnet(cidr: "10.88.0.0/31")?.specialHostKind == nil)
        #expect(IPSubnet(cidr: "fd00::/64")?.specialHostKind == "the network address of its subnet")
        #expect(IPSubnet(cidr: "10.0.0.1/+8") == nil)
        #expect(IPSubnet(cidr: "10.0.0.1/0") == nil)
        #expect(IPSubnet(cidr: "fd00::1/129") == nil)
    }

    @Test("MAC addresses parse with colons or hyphens and are judged")
    func macAddressesParse() {
        #expect(MACAddress("42:AA:5b:c0:e4:dc")?.bytes == [0x42, 0xaa, 0x5b, 0xc0, 0xe4, 0xdc])
        #expect(MACAddress("42-aa-5b-c0-e4-dc") == MACAddress("42:aa:5b:c0:e4:dc"))
        #expect(MACAddress("42:aa:5b:c0:e4:d") == nil)
        #expect(MACAddress("42:aa:5b:c0:e4:dc:00") == nil)
        #expect(NetworkRules.macProblem("ff:ff:ff:ff:ff:ff") == "is a multicast address")
        #expect(NetworkRules.macProblem("02:00:00:00:00:01") == nil)
    }
}
