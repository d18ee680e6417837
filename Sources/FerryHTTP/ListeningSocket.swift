// CMicroHTTPD's shim includes the system headers too, so Clang may file a libc struct under either module; with
// MemberImportVisibility its fields are then visible only where CMicroHTTPD is imported as well. Hence this import.
internal import CMicroHTTPD
import Glibc

/// A bound, listening TCP socket; owns the descriptor and closes it once.
///
/// The server binds the socket itself rather than letting libmicrohttpd do it, so that a bind failure comes back
/// as a precise error (`ADDRESS_IN_USE`, …) instead of MHD's bare NULL, and so that names like `localhost` resolve.
final class ListeningSocket {
    private(set) var descriptor: Int32
    /// The bound port (the kernel's choice when 0 was asked for).
    let port: UInt16
    let isIPv6: Bool

    private init(descriptor: Int32, port: UInt16, isIPv6: Bool) {
        self.descriptor = descriptor
        self.port = port
        self.isIPv6 = isIPv6
    }

    deinit {
        close()
    }

    func close() {
        guard descriptor >= 0 else { return }
        _ = closeDescriptor(descriptor)
        descriptor = -1
    }

    /// Resolves `host` (IPv4 or IPv6 literal, a name such as `localhost`, or "" / `*` for every address) and binds
    /// the first address that accepts the bind.
    static func bind(host: String, port: UInt16, backlog: Int32) throws(HTTPServerError) -> ListeningSocket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let node: String? = (host.isEmpty || host == "*") ? nil : unbracketed(host)
        let status = getaddrinfo(node, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = String(cString: gai_strerror(status))
            throw HTTPServerError(code: .invalidAddress, message: "Cannot resolve host '\(host)': \(reason).")
        }
        // getaddrinfo allocated the list; freed once here whatever happens below.
        defer { freeaddrinfo(first) }

        var lastError: Int32 = 0
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let address = candidate {
            candidate = address.pointee.ai_next
            let fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                lastError = errno
                continue
            }
            var one: Int32 = 1
            // Lets a restarted server bind while old connections sit in TIME_WAIT; it does not allow two listeners.
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.bind(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) != 0 || listen(fd, backlog) != 0 {
                lastError = errno
                _ = closeDescriptor(fd)
                continue
            }
            guard let boundPort = localPort(of: fd) else {
                lastError = errno
                _ = closeDescriptor(fd)
                continue
            }
            return ListeningSocket(descriptor: fd, port: boundPort, isIPv6: address.pointee.ai_family == AF_INET6)
        }
        throw error(for: lastError, host: host, port: port)
    }

    private static func unbracketed(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    private static func localPort(of fd: Int32) -> UInt16? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else { return nil }
        return withUnsafePointer(to: &storage) { pointer in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            default:
                nil
            }
        }
    }

    private static func error(for code: Int32, host: String, port: UInt16) -> HTTPServerError {
        let address = "\(host):\(port)"
        let reason = String(cString: strerror(code))
        switch code {
        case EADDRINUSE:
            return HTTPServerError(code: .addressInUse, message: "\(address) is already in use.", systemError: code)
        case EADDRNOTAVAIL:
            return HTTPServerError(code: .addressNotAvailable, message: "\(address) is not an address of this machine.", systemError: code)
        case EACCES, EPERM:
            return HTTPServerError(code: .permissionDenied, message: "Not permitted to bind \(address).", systemError: code)
        default:
            return HTTPServerError(code: .bindFailed, message: "Cannot listen on \(address): \(reason).", systemError: code)
        }
    }
}

/// `close(2)`, named apart from the methods called `close()`.
@discardableResult
func closeDescriptor(_ fd: Int32) -> Int32 {
    Glibc.close(fd)
}

/// A socket address as a numeric host string (`127.0.0.1`, `::1`).
func numericHost(_ address: UnsafePointer<sockaddr>) -> String? {
    let length: socklen_t
    switch Int32(address.pointee.sa_family) {
    case AF_INET: length = socklen_t(MemoryLayout<sockaddr_in>.size)
    case AF_INET6: length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    default: return nil
    }
    var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
    guard getnameinfo(address, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
    var text = cStringBufferText(host)
    // An IPv4 client of a dual-stack socket shows up as ::ffff:a.b.c.d; log it as the IPv4 address it is.
    if text.hasPrefix("::ffff:") && text.contains(".") { text.removeFirst(7) }
    return text
}

/// The text of a NUL-terminated C string held in an array.
func cStringBufferText(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
