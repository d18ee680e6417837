import Foundation

/// The few system calls the facts need, each wrapped once: `uname`, `getifaddrs`, `statvfs`, and a `PATH` lookup.
enum HostSystem {
    /// `uname -m` and `uname -r`.
    static func uname() -> (machine: String, release: String)? {
        var names = utsname()
        guard Glibc.uname(&names) == 0 else { return nil }
        return (string(from: &names.machine), string(from: &names.release))
    }

    /// The first executable called `name` in `PATH` (or `name` itself when it contains a `/`).
    static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// The IPv4 and IPv6 addresses on this host's interfaces, loopback excluded, in interface order.
    static func interfaceAddresses() -> [String]? {
        var first: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&first) == 0 else { return nil }
        // getifaddrs allocates the list; freeifaddrs is its only release.
        defer { freeifaddrs(first) }
        var addresses: [String] = []
        var cursor = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr,
                  Int32(entry.pointee.ifa_flags) & Int32(IFF_LOOPBACK) == 0 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                    var raw = inet.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
                }
            case AF_INET6:
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet6 in
                    var raw = inet6.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
                }
            default:
                continue
            }
            let string = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !string.isEmpty && !addresses.contains(string) { addresses.append(string) }
        }
        return addresses
    }

    /// The MAC addresses of this host's interfaces (`/sys/class/net/*/address`), all-zero ones (loopback) excluded.
    static func interfaceMACs() -> [String]? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net") else { return nil }
        var macs: [String] = []
        for name in names.sorted() {
            guard let text = try? String(contentsOfFile: "/sys/class/net/\(name)/address", encoding: .utf8) else { continue }
            let mac = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            if mac.count == 17, mac != "00:00:00:00:00:00", !macs.contains(mac) { macs.append(mac) }
        }
        return macs
    }

    /// Bytes available to an unprivileged user on the file system holding `path`.
    static func freeDiskBytes(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// cgroup v2 when the unified hierarchy is mounted at /sys/fs/cgroup, else v1.
    static func cgroupVersion() -> String {
        FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") ? "v2" : "v1"
    }

    private static func string<T>(from tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
