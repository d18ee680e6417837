import Glibc

/// Serves the files below one directory for GET and HEAD — the web page of the service, typically as the
/// router's fallback: `router.setFallback { request, _ in files.response(for: request) }`.
///
/// Paths are decoded, split into segments and refused (404) when a segment is empty after decoding, is `.`/`..`,
/// starts with a dot, or holds a NUL or backslash; a resolved path that leaves the root through a symbolic link is
/// refused too. `/` and directory paths serve `indexFile`. Responses go through `HTTPResponse.file`, so ranges and
/// conditional requests work, with a weak ETag made of size and modification time.
public struct StaticFiles: Sendable {
    /// The directory served, resolved (symbolic links followed) at init.
    public let root: String
    public let indexFile: String

    public init(root: String, indexFile: String = "index.html") {
        self.root = Self.resolve(root) ?? root
        self.indexFile = indexFile
    }

    public func response(for request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse.error(.methodNotAllowed(request.method)).adding(header: "Allow", "GET, HEAD")
        }
        var segments: [String] = []
        for raw in request.rawPath.split(separator: "/", omittingEmptySubsequences: true) {
            let segment = PercentDecoding.decode(raw, plusIsSpace: false)
            guard !segment.isEmpty, !segment.hasPrefix("."), !segment.contains("\0"), !segment.contains("\\"),
                  !segment.contains("/") else { return .error(.notFound()) }
            segments.append(segment)
        }
        var path = ([root] + segments).joined(separator: "/")
        if FileStatus(path: path)?.isDirectory == true {
            path += "/" + indexFile
        }
        guard let resolved = Self.resolve(path), resolved == root || resolved.hasPrefix(root + "/"),
              let status = FileStatus(path: resolved), status.isRegularFile else {
            return .error(.notFound())
        }
        let etag = "W/\"\(String(status.size, radix: 16))-\(String(status.modified, radix: 16))\""
        return .file(path: resolved, request: request, etag: etag, contentType: Self.contentType(of: resolved))
    }

    /// The media type for a file name's extension; `application/octet-stream` when unknown.
    public static func contentType(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        switch name[name.index(after: dot)...].lowercased() {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json", "map": return "application/json"
        case "txt": return "text/plain; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "ico": return "image/x-icon"
        case "woff2": return "font/woff2"
        case "woff": return "font/woff"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }

    /// realpath(3): absolute, symbolic links followed; nil when the path does not exist.
    private static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        // realpath allocated the string with malloc; freed once here.
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
