/// A `HOST:PORT` to listen on, as `--listen` takes it: `127.0.0.1:8080`, `[::1]:8080`, `localhost:0`, or `:8080`
/// (keeping a default host).
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `text`; `defaultHost` is used for `:PORT`. Returns nil with `reason` set when it is not an address.
    public static func parse(_ text: String, defaultHost: String) -> Result<ListenAddress, ListenAddressError> {
        var host = defaultHost
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(ListenAddressError("--listen takes HOST:PORT or [IPV6]:PORT, not \(text)"))
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            if colon != text.startIndex { host = String(text[..<colon]) }
            portText = text[text.index(after: colon)...]
        } else {
            return .failure(ListenAddressError("--listen takes HOST:PORT, not \(text)"))
        }
        guard let port = UInt16(portText) else { return .failure(ListenAddressError("\(portText) is not a port number")) }
        return .success(ListenAddress(host: host, port: port))
    }

    /// Whether the host is a loopback address: the only kind Ferry listens on without tokens.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// Why a `--listen` value is not an address.
public struct ListenAddressError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
