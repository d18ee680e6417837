/// Routes requests by method and path pattern to throwing handlers, and turns failures into JSON errors.
///
/// Patterns are paths whose segments are literals, `{name}` (one segment, percent-decoded, in `parameters[name]`)
/// or, last, `{name...}` (the rest of the path, at least one segment, decoded segment by segment and joined with
/// `/`). Matching splits the raw path on `/` before decoding, so `%2F` stays inside a segment; empty segments
/// are ignored (`/a//b/` matches `/a/b`). When several patterns match, the most specific wins: at the first
/// segment where they differ, a literal beats `{name}`, which beats `{name...}`.
///
/// - Unknown path → the fallback handler if set, else 404 NOT_FOUND.
/// - Known path, other method → 405 METHOD_NOT_ALLOWED with an `Allow` header.
/// - HEAD without its own route uses the GET route; the server sends the headers only.
/// - A thrown `HTTPError` becomes its JSON response; any other error a 500 INTERNAL_ERROR whose text is passed to
///   `errorLog` and never sent.
public struct Router: HTTPHandler {
    /// A route's handler: the request, the pattern's parameters, and the body (nil when there is none).
    public typealias Handler = @Sendable (HTTPRequest, _ parameters: [String: String], HTTPRequestBody?) throws -> HTTPResponse
    /// A route's answer from memory: the response when it can be given without blocking (a cache hit), else nil and
    /// the route's handler runs on a thread of its own.
    public typealias MemoryAnswer = @Sendable (HTTPRequest, _ parameters: [String: String]) throws -> HTTPResponse?
    /// The handler for paths no route matches.
    public typealias Fallback = @Sendable (HTTPRequest, HTTPRequestBody?) throws -> HTTPResponse

    private var routes: [Route] = []
    private var fallback: Fallback?
    private var fallbackInline = false
    private let errorLog: (@Sendable (String) -> Void)?

    /// - Parameter errorLog: receives the text of unexpected (non-`HTTPError`) errors thrown by handlers.
    public init(errorLog: (@Sendable (String) -> Void)? = nil) {
        self.errorLog = errorLog
    }

    /// Adds a route. `method` is matched exactly (upper case, e.g. "GET").
    /// - Parameter inline: the handler never blocks (see `HTTPRoute.inline`): it may run on a
    ///   libmicrohttpd worker thread.
    public mutating func add(_ method: String, _ pattern: String, inline: Bool = false, _ handler: @escaping Handler) {
        add(method, pattern, inline: inline, fromMemory: nil, handler)
    }

    /// Adds a route that first tries `fromMemory` on the worker thread that read the request: a response from it is
    /// sent at once (no thread start, no suspend); nil runs `handler` on a thread of its own, as for any route.
    /// `fromMemory` must not block (see `HTTPRoute.inline`); what it throws is answered like a handler's error.
    public mutating func add(_ method: String, _ pattern: String, fromMemory: @escaping MemoryAnswer, _ handler: @escaping Handler) {
        add(method, pattern, inline: false, fromMemory: fromMemory, handler)
    }

    private mutating func add(_ method: String, _ pattern: String, inline: Bool, fromMemory: MemoryAnswer?, _ handler: @escaping Handler) {
        routes.append(Route(method: method.uppercased(), pattern: RoutePattern(pattern), inline: inline, fromMemory: fromMemory, handler: handler))
    }

    /// Adds a route for `prefix` and everything below it; the part below is in `parameters["path"]` ("" for the
    /// prefix itself).
    public mutating func addPrefix(_ method: String, _ prefix: String, inline: Bool = false, _ handler: @escaping Handler) {
        addPrefix(method, prefix, inline: inline, fromMemory: nil, handler)
    }

    /// `addPrefix` with an answer from memory tried first for the paths below the prefix (see `add(_:_:fromMemory:_:)`).
    public mutating func addPrefix(_ method: String, _ prefix: String, fromMemory: @escaping MemoryAnswer, _ handler: @escaping Handler) {
        addPrefix(method, prefix, inline: false, fromMemory: fromMemory, handler)
    }

    private mutating func addPrefix(_ method: String, _ prefix: String, inline: Bool, fromMemory: MemoryAnswer?,
                                    _ handler: @escaping Handler) {
        let base = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        add(method, base.isEmpty ? "/" : base, inline: inline, fromMemory: nil) { request, parameters, body in
            var parameters = parameters
            parameters["path"] = ""
            return try handler(request, parameters, body)
        }
        add(method, base + "/{path...}", inline: inline, fromMemory: fromMemory, handler)
    }

    /// Sets the handler for requests no route matches (e.g. the static files of a web page).
    public mutating func setFallback(inline: Bool = false, _ handler: @escaping Fallback) {
        fallback = handler
        fallbackInline = inline
    }

    public func handle(_ request: HTTPRequest, body: HTTPRequestBody?) -> HTTPResponse {
        route(request).respond(body)
    }

    /// The route for a request, matched once: the server runs it inline or on a thread of its own.
    public func route(_ request: HTTPRequest) -> HTTPRoute {
        switch resolve(request) {
        case .route(let route, let parameters):
            if let fromMemory = route.fromMemory, let response = answerFromMemory(request, { try fromMemory(request, parameters) }) {
                return HTTPRoute(inline: true) { _ in response }
            }
            return HTTPRoute(inline: route.inline) { body in run(request) { try route.handler(request, parameters, body) } }
        case .fallback(let fallback):
            return HTTPRoute(inline: fallbackInline) { body in run(request) { try fallback(request, body) } }
        case .refused(let response):
            return HTTPRoute(inline: true) { _ in response }
        }
    }

    private enum Resolution {
        case route(Route, [String: String])
        case fallback(Fallback)
        /// 404 or 405, answered without a handler.
        case refused(HTTPResponse)
    }

    private func resolve(_ request: HTTPRequest) -> Resolution {
        let segments = request.rawPath.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var matches: [(route: Route, parameters: [String: String])] = []
        for route in routes {
            if let parameters = route.pattern.match(segments) { matches.append((route, parameters)) }
        }
        guard !matches.isEmpty else {
            guard let fallback else { return .refused(.error(.notFound())) }
            return .fallback(fallback)
        }
        let method = request.method.uppercased()
        var candidates = matches.filter { $0.route.method == method }
        if candidates.isEmpty && method == "HEAD" {
            candidates = matches.filter { $0.route.method == "GET" }
        }
        guard let best = candidates.min(by: { $0.route.pattern.isMoreSpecific(than: $1.route.pattern) }) else {
            var allowed = Set(matches.map(\.route.method))
            if allowed.contains("GET") { allowed.insert("HEAD") }
            var response = HTTPResponse.error(.methodNotAllowed(request.method))
            response.headers.append(("Allow", allowed.sorted().joined(separator: ", ")))
            return .refused(response)
        }
        return .route(best.route, best.parameters)
    }

    private func answerFromMemory(_ request: HTTPRequest, _ answer: () throws -> HTTPResponse?) -> HTTPResponse? {
        do {
            return try answer()
        } catch {
            return run(request) { throw error }
        }
    }

    private func run(_ request: HTTPRequest, _ body: () throws -> HTTPResponse) -> HTTPResponse {
        do {
            return try body()
        } catch let error as HTTPError {
            return .error(error)
        } catch {
            errorLog?("\(request.method) \(AccessLog.redactedTarget(request.rawPath)): unexpected error: \(error)")
            return .error(.internalError)
        }
    }
}

private struct Route: Sendable {
    var method: String
    var pattern: RoutePattern
    var inline: Bool
    var fromMemory: Router.MemoryAnswer?
    var handler: Router.Handler
}

/// A parsed route pattern.
struct RoutePattern: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
        case rest(String)

        /// Lower is more specific.
        var rank: Int {
            switch self {
            case .literal: 0
            case .parameter: 1
            case .rest: 2
            }
        }
    }

    var segments: [Segment]

    init(_ pattern: String) {
        segments = pattern.split(separator: "/", omittingEmptySubsequences: true).map { piece in
            guard piece.hasPrefix("{"), piece.hasSuffix("}") else { return .literal(String(piece)) }
            let name = piece.dropFirst().dropLast()
            if name.hasSuffix("...") { return .rest(String(name.dropLast(3))) }
            return .parameter(String(name))
        }
    }

    /// The parameters when the raw (still percent-encoded) path segments match, else nil.
    func match(_ raw: [String]) -> [String: String]? {
        var parameters: [String: String] = [:]
        var index = 0
        for segment in segments {
            switch segment {
            case .literal(let text):
                guard index < raw.count, PercentDecoding.decode(raw[index], plusIsSpace: false) == text else { return nil }
                index += 1
            case .parameter(let name):
                guard index < raw.count else { return nil }
                parameters[name] = PercentDecoding.decode(raw[index], plusIsSpace: false)
                index += 1
            case .rest(let name):
                guard index < raw.count else { return nil }
                parameters[name] = raw[index...].map { PercentDecoding.decode($0, plusIsSpace: false) }.joined(separator: "/")
                index = raw.count
            }
        }
        return index == raw.count ? parameters : nil
    }

    func isMoreSpecific(than other: RoutePattern) -> Bool {
        for (mine, theirs) in zip(segments, other.segments) where mine.rank != theirs.rank {
            return mine.rank < theirs.rank
        }
        return segments.count > other.segments.count
    }
}
