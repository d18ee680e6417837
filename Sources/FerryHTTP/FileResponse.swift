// CMicroHTTPD's shim includes the system headers too, so Clang may file a libc struct under either module; with
// MemberImportVisibility its fields are then visible only where CMicroHTTPD is imported as well. Hence this import.
internal import CMicroHTTPD
import Glibc

extension HTTPResponse {
    /// Serves a file with the HTTP semantics downloads need.
    ///
    /// - `200` with `Content-Length`, `Content-Type`, `Accept-Ranges: bytes`, the `ETag` (if given) and
    ///   `Last-Modified` (from the file's mtime, unless `lastModified` is false).
    /// - `If-None-Match` (a list, `*`, weak comparison) → `304`; otherwise `If-Modified-Since` → `304`.
    /// - A single `Range: bytes=a-b | a- | -n` on GET/HEAD → `206` with `Content-Range`. An unsatisfiable one → `416`
    ///   with `Content-Range: bytes */size` and a JSON RANGE_NOT_SATISFIABLE body. Several ranges → the full `200`
    ///   (RFC 9110 allows ignoring `Range`), as does a syntactically invalid one.
    /// - `If-Range` with an ETag (strong comparison) or a date (exact match with `Last-Modified`): a mismatch sends the
    ///   full file instead of the range.
    /// - HEAD gets the same headers; the server never sends a body for HEAD.
    /// - A missing file is a JSON `404 NOT_FOUND`; a directory or unreadable file a JSON `500 INTERNAL_ERROR`.
    ///
    /// `etag` may be given with or without quotes (`abc`, `"abc"`, `W/"abc"`). The file is sent with `sendfile(2)`.
    public static func file(path: String, request: HTTPRequest, etag: String?, contentType: String,
                            extraHeaders: [(String, String)] = [], lastModified: Bool = true) -> HTTPResponse {
        guard let status = FileStatus(path: path) else {
            return errno == ENOENT || errno == ENOTDIR ? .error(.notFound()) : .error(.internalError)
        }
        guard status.isRegularFile else { return .error(.internalError) }
        return representation(size: status.size, modified: status.modified, request: request, etag: etag,
                              contentType: contentType, extraHeaders: extraHeaders, lastModified: lastModified) { offset, length in
            .file(path: path, offset: offset, length: length)
        }
    }

    /// As ``file(path:request:etag:contentType:extraHeaders:lastModified:)``, with the same conditional requests and
    /// ranges, for `size` bytes that `reader` produces (an encrypted blob): only the range asked for is read.
    public static func stream(reader: any HTTPBodyReader, size: Int64, modified: Int64, request: HTTPRequest, etag: String?,
                              contentType: String, extraHeaders: [(String, String)] = [], lastModified: Bool = true) -> HTTPResponse {
        representation(size: size, modified: modified, request: request, etag: etag, contentType: contentType,
                       extraHeaders: extraHeaders, lastModified: lastModified) { offset, length in
            .stream(reader: reader, offset: offset, length: length)
        }
    }

    /// The response for a representation of `size` bytes: validators, 304, 206/416 for a `Range`, else 200, with
    /// `body` giving the bytes from an offset.
    private static func representation(size: Int64, modified: Int64, request: HTTPRequest, etag: String?, contentType: String,
                                       extraHeaders: [(String, String)], lastModified: Bool,
                                       body: (Int64, Int64) -> Body) -> HTTPResponse {
        let entityTag = etag.map(EntityTag.normalize)

        var validators: [(String, String)] = []
        if let entityTag { validators.append(("ETag", entityTag)) }
        if lastModified { validators.append(("Last-Modified", HTTPDate.format(modified))) }
        let common = [("Accept-Ranges", "bytes")] + validators + extraHeaders

        if let ifNoneMatch = request.header("if-none-match") {
            if EntityTag.listMatches(ifNoneMatch, entityTag, weak: true) {
                return HTTPResponse(status: 304, headers: common)
            }
        } else if lastModified, let since = request.header("if-modified-since").flatMap(HTTPDate.parse), modified <= since {
            return HTTPResponse(status: 304, headers: common)
        }

        var headers = [("Content-Type", contentType)] + common
        if request.method == "GET" || request.method == "HEAD", let rangeHeader = request.header("range"),
           ifRangeAllows(request.header("if-range"), entityTag: entityTag, modified: lastModified ? modified : nil) {
            switch ByteRange.parse(rangeHeader, size: size) {
            case .ignore:
                break
            case .unsatisfiable:
                var response = HTTPResponse.error(.rangeNotSatisfiable(size: size))
                response.headers += [("Content-Range", "bytes */\(size)")] + common
                return response
            case .range(let first, let last):
                headers.append(("Content-Range", "bytes \(first)-\(last)/\(size)"))
                return HTTPResponse(status: 206, headers: headers, body: body(first, last - first + 1))
            }
        }
        return HTTPResponse(status: 200, headers: headers, body: body(0, size))
    }

    /// RFC 9110 §13.1.5: with If-Range, the range applies only if the representation is unchanged.
    private static func ifRangeAllows(_ ifRange: String?, entityTag: String?, modified: Int64?) -> Bool {
        guard let ifRange = ifRange?.trimmingASCIIWhitespace(), !ifRange.isEmpty else { return true }
        if ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/") {
            return EntityTag.listMatches(ifRange, entityTag, weak: false)
        }
        guard let modified, let date = HTTPDate.parse(ifRange) else { return false }
        return date == modified
    }
}

/// Entity-tag comparison (RFC 9110 §8.8.3).
enum EntityTag {
    /// `abc` → `"abc"`; already quoted or weak tags are kept.
    static func normalize(_ tag: String) -> String {
        if tag.hasPrefix("\"") || tag.hasPrefix("W/\"") { return tag }
        return "\"\(tag)\""
    }

    /// Whether a header value (`*` or a comma-separated list of tags) matches `current`.
    /// Weak comparison ignores `W/` on both sides; strong comparison never matches a weak tag.
    static func listMatches(_ header: String, _ current: String?, weak: Bool) -> Bool {
        guard let current else { return false }
        let trimmed = header.trimmingASCIIWhitespace()
        if trimmed == "*" { return true }
        let currentIsWeak = current.hasPrefix("W/")
        let currentOpaque = currentIsWeak ? String(current.dropFirst(2)) : current
        if !weak && currentIsWeak { return false }
        for candidate in trimmed.split(separator: ",") {
            var tag = candidate.trimmingASCIIWhitespace()
            let candidateIsWeak = tag.hasPrefix("W/")
            if candidateIsWeak {
                if !weak { continue }
                tag = String(tag.dropFirst(2))
            }
            if tag == currentOpaque { return true }
        }
        return false
    }
}

/// A parsed `Range` header against a representation of known size.
enum ByteRange: Equatable {
    /// Serve the whole representation (no usable range: invalid syntax, another unit, several ranges).
    case ignore
    /// 416.
    case unsatisfiable
    /// 206 for bytes `first...last` (inclusive).
    case range(first: Int64, last: Int64)

    static func parse(_ header: String, size: Int64) -> ByteRange {
        let value = header.trimmingASCIIWhitespace()
        guard value.lowercased().hasPrefix("bytes=") else { return .ignore }
        let specs = value.dropFirst(6).split(separator: ",").map { $0.trimmingASCIIWhitespace() }.filter { !$0.isEmpty }
        guard specs.count == 1, let spec = specs.first, let dash = spec.firstIndex(of: "-") else { return .ignore }
        let firstText = spec[..<dash].trimmingASCIIWhitespace()
        let lastText = spec[spec.index(after: dash)...].trimmingASCIIWhitespace()
        if firstText.isEmpty {
            // Suffix range: the last n bytes.
            guard let count = number(lastText) else { return .ignore }
            guard count > 0, size > 0 else { return .unsatisfiable }
            return .range(first: max(0, size - count), last: size - 1)
        }
        guard let first = number(firstText) else { return .ignore }
        var last = size - 1
        if !lastText.isEmpty {
            guard let requestedLast = number(lastText) else { return .ignore }
            guard requestedLast >= first else { return .ignore }
            last = min(requestedLast, size - 1)
        }
        guard first < size else { return .unsatisfiable }
        return .range(first: first, last: last)
    }

    /// Decimal digits only; a number too large for Int64 saturates (it is then simply past the end).
    private static func number(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text) ?? Int64.max
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the one date format HTTP senders use.
enum HTTPDate {
    private static let pattern = "%a, %d %b %Y %H:%M:%S GMT"

    static func format(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Seconds since the epoch, or nil for anything that is not an IMF-fixdate.
    static func parse(_ text: String) -> Int64? {
        let fields = text.trimmingASCIIWhitespace().split(separator: " ")
        guard fields.count == 6, fields[0].hasSuffix(","), fields[5] == "GMT",
              let day = Int32(fields[1]), let month = months.firstIndex(of: String(fields[2])), let year = Int32(fields[3])
        else { return nil }
        let clock = fields[4].split(separator: ":")
        guard clock.count == 3, let hour = Int32(clock[0]), let minute = Int32(clock[1]), let second = Int32(clock[2]),
              (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = Int32(month)
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        return Int64(timegm(&parts))
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs (HTTP's optional whitespace).
    func trimmingASCIIWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}
