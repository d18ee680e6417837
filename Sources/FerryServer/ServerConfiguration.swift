public import Foundation

/// How `ferry serve` runs: flags first, then `FERRY_*` environment variables, then the embedded defaults
/// (127.0.0.1:8080, `./ferry-data`, no tokens).
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    public var dataDirectory = "./ferry-data"
    public var tokensFile: String?
    public var maximumUploadSize: Int64 = 64 << 30
    public var migrationsDirectory: String?
    public var webRoot: String?
    /// Seconds without a heartbeat after which a node is down and migrations to it fail.
    public var nodeTimeout: Double = 15

    public init() {}

    /// Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT`.
    public mutating func setListen(_ text: String) throws {
        var host = host
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ServerConfigurationError("--listen takes HOST:PORT or [IPV6]:PORT, not \(text)")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            if colon != text.startIndex { host = String(text[..<colon]) }
            portText = text[text.index(after: colon)...]
        } else {
            throw ServerConfigurationError("--listen takes HOST:PORT, not \(text)")
        }
        guard let port = UInt16(portText) else { throw ServerConfigurationError("\(portText) is not a port number") }
        self.host = host
        self.port = port
    }

    /// Parses sizes like `1048576`, `512M`, `64G`, `2T`.
    public static func parseSize(_ text: String) throws -> Int64 {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text.uppercased())
        var multiplier: Int64 = 1
        if digits.hasSuffix("IB") { digits = digits.dropLast(2) } else if digits.hasSuffix("B") { digits = digits.dropLast() }
        if let last = digits.last, let unit = units[last] {
            multiplier = unit
            digits = digits.dropLast()
        }
        guard let value = Int64(digits), value > 0, value <= Int64.max / multiplier else {
            throw ServerConfigurationError("\(text) is not a size (e.g. 1073741824, 512M, 64G)")
        }
        return value * multiplier
    }

    /// Whether `host` is a loopback address, the only kind Ferry listens on without tokens.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// A configuration `ferry serve` cannot run with.
public struct ServerConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
