/// The head of an HTTP request as a handler sees it: method, decoded path and query, lowercased headers.
///
/// The body, if any, is not here: it arrives separately as an `HTTPRequestBody` so that uploads stream.
public struct HTTPRequest: Sendable {
    /// The request method as sent, e.g. `GET`, `HEAD`, `POST`, `PUT`, `DELETE`.
    public var method: String
    /// The percent-decoded path without the query, e.g. `/api/v1/checkpoints/a b`.
    public var path: String
    /// The path exactly as sent (still percent-encoded), so a router can split segments before decoding:
    /// an encoded `%2F` inside an identifier stays inside that segment.
    public var rawPath: String
    /// Decoded query parameters; `+` means space; when a name repeats, the last value wins.
    public var query: [String: String]
    /// Request headers with lowercased names; repeated headers are joined with ", " as RFC 9110 allows.
    public var headers: [String: String]
    /// The client's numeric IP address (`127.0.0.1`, `::1`), when known.
    public var remoteAddress: String?

    /// A request from its parts; `rawPath` defaults to `path` (handy in tests that call a router directly).
    public init(method: String, path: String, rawPath: String? = nil, query: [String: String] = [:],
                headers: [String: String] = [:], remoteAddress: String? = nil) {
        self.method = method
        self.path = path
        self.rawPath = rawPath ?? path
        self.query = query
        var lowered: [String: String] = [:]
        for (name, value) in headers { lowered[name.lowercased()] = value }
        self.headers = lowered
        self.remoteAddress = remoteAddress
    }

    /// A request from a request target as it appears on the request line (`/path?query`).
    public init(method: String, target: String, headers: [String: String] = [:], remoteAddress: String? = nil) {
        let parsed = RequestTarget(target)
        self.init(method: method, path: parsed.path, rawPath: parsed.rawPath, query: parsed.query,
                  headers: headers, remoteAddress: remoteAddress)
    }

    /// The value of a header, looked up case-insensitively.
    public func header(_ name: String) -> String? {
        headers[name.lowercased()]
    }
}

/// A request target split into path and query and decoded.
struct RequestTarget {
    var rawPath: String
    var rawQuery: String?
    var path: String
    var query: [String: String]

    init(_ target: String) {
        var bytes = Array(target.utf8)
        // A fragment is never sent by conforming clients; drop it if one is.
        if let hash = bytes.firstIndex(of: UInt8(ascii: "#")) { bytes.removeSubrange(hash...) }
        if let mark = bytes.firstIndex(of: UInt8(ascii: "?")) {
            rawPath = String(decoding: bytes[..<mark], as: UTF8.self)
            rawQuery = String(decoding: bytes[(mark + 1)...], as: UTF8.self)
        } else {
            rawPath = String(decoding: bytes, as: UTF8.self)
            rawQuery = nil
        }
        path = PercentDecoding.decode(rawPath, plusIsSpace: false)
        query = rawQuery.map(PercentDecoding.parseQuery) ?? [:]
    }
}

/// Percent-decoding of paths and `application/x-www-form-urlencoded` queries.
enum PercentDecoding {
    /// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept as it is.
    /// Invalid UTF-8 after decoding becomes U+FFFD rather than failing the request.
    static func decode(_ text: some StringProtocol, plusIsSpace: Bool) -> String {
        let input = Array(text.utf8)
        guard input.contains(UInt8(ascii: "%")) || (plusIsSpace && input.contains(UInt8(ascii: "+"))) else {
            return String(text)
        }
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "%"), index + 2 < input.count,
               let high = hexValue(input[index + 1]), let low = hexValue(input[index + 2]) {
                output.append(high << 4 | low)
                index += 3
            } else if plusIsSpace && byte == UInt8(ascii: "+") {
                output.append(UInt8(ascii: " "))
                index += 1
            } else {
                output.append(byte)
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// `a=1&b=x%20y&flag` → `["a": "1", "b": "x y", "flag": ""]`; the last of repeated names wins.
    static func parseQuery(_ query: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = pair.firstIndex(of: "=") {
                let name = decode(pair[..<equals], plusIsSpace: true)
                result[name] = decode(pair[pair.index(after: equals)...], plusIsSpace: true)
            } else {
                result[decode(pair, plusIsSpace: true)] = ""
            }
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
