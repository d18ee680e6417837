import FerryValidation
import Foundation

/// What the agent tells the service about its node: the ``TargetFacts`` the preflight judges a restore against,
/// plus the runtime's version and the free disk of the work directory.
struct NodeReport: Sendable, Equatable {
    var facts: TargetFacts
    var runtimeVersion: String?
    var freeDiskBytes: Int64?
}

/// Detects the node's facts. Whatever cannot be found is nil (unknown), never an empty list.
///
/// Fixed facts (architecture, kernel, cgroup version, CRIU version, OCI runtimes, the runtime's version) are read
/// once at start-up; the rest (images, containers, addresses, free disk) on every call. Facts declared in a
/// `--facts-file` are merged over the detected ones: a declared single value replaces the detected one, a declared
/// list is added to the detected list (it names what the agent cannot see, such as addresses other hosts use).
final class FactsCollector: Sendable {
    private let driver: any RuntimeDriver
    private let workDirectory: String
    private let declared: TargetFacts?
    private let fixed: TargetFacts
    private let runtimeVersion: String?

    init(driver: any RuntimeDriver, workDirectory: String, declared: TargetFacts?) {
        self.driver = driver
        self.workDirectory = workDirectory
        self.declared = declared
        var fixed = TargetFacts()
        if let names = HostSystem.uname() {
            fixed.architecture = names.machine
            fixed.kernel = names.release
        }
        fixed.cgroupVersion = HostSystem.cgroupVersion()
        fixed.criuVersion = FactCommand.output(["criu", "--version"]).flatMap(CRIUVersion.parse)?.number
        let runtimes = ["runc", "crun"].filter { HostSystem.findExecutable($0) != nil }
        fixed.runtimes = runtimes.isEmpty ? nil : runtimes
        self.fixed = fixed
        runtimeVersion = driver.versionCommand.flatMap { FactCommand.output($0) }.flatMap(driver.version(fromOutput:))
    }

    /// Starts keeping Podman's answers current in the background (the podman driver only).
    func startWatching() {
        guard let podman = driver as? PodmanDriver else { return }
        podman.cache.keepWarm { PodmanInventory.collectNow() }
    }

    func stopWatching() {
        (driver as? PodmanDriver)?.cache.stopWatching()
    }

    /// The facts as of now. With `live` false (heartbeats) Podman's last answers may be a moment old: its inventory
    /// is reused rather than asked for again while a change is being made.
    func current(live: Bool = true) -> NodeReport {
        var facts = fixed
        var ips = HostSystem.interfaceAddresses()
        var macs = HostSystem.interfaceMACs()
        if let podmanDriver = driver as? PodmanDriver {
            let podman = (live ? nil : podmanDriver.cache.latestInventory()) ?? PodmanInventory.collect(cache: podmanDriver.cache)
            facts.images = podman.images
            facts.containerNames = podman.containerNames
            facts.containerIDs = podman.containerIDs
            facts.networks = podman.networks
            ips = Self.union(ips, podman.containerIPs)
            macs = Self.union(macs, podman.containerMACs)
        }
        facts.ipsInUse = ips
        facts.macsInUse = macs
        if let declared { facts = Self.merge(declared, over: facts) }
        return NodeReport(facts: facts, runtimeVersion: runtimeVersion, freeDiskBytes: HostSystem.freeDiskBytes(workDirectory))
    }

    /// `declared` over `detected`: single values replace, lists are joined (detected first, no repeats).
    static func merge(_ declared: TargetFacts, over detected: TargetFacts) -> TargetFacts {
        var facts = detected
        facts.architecture = declared.architecture ?? detected.architecture
        facts.criuVersion = declared.criuVersion ?? detected.criuVersion
        facts.kernel = declared.kernel ?? detected.kernel
        facts.cgroupVersion = declared.cgroupVersion ?? detected.cgroupVersion
        facts.runtimes = union(detected.runtimes, declared.runtimes)
        facts.images = union(detected.images, declared.images)
        facts.ipsInUse = union(detected.ipsInUse, declared.ipsInUse)
        facts.macsInUse = union(detected.macsInUse, declared.macsInUse)
        facts.networks = union(detected.networks, declared.networks)
        facts.containerNames = union(detected.containerNames, declared.containerNames)
        facts.containerIDs = union(detected.containerIDs, declared.containerIDs)
        return facts
    }

    /// Both lists joined without repeats; nil only when both are unknown.
    static func union<T: Equatable>(_ first: [T]?, _ second: [T]?) -> [T]? {
        guard let first else { return second }
        guard let second else { return first }
        var result = first
        for item in second where !result.contains(item) { result.append(item) }
        return result
    }
}
