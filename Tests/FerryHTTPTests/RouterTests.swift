import Foundation
import Testing
@testable import FerryHTTP

@Suite("Router, called directly")
struct RouterTests {
    private func json(_ response: HTTPResponse) -> [String: String] {
        guard case .bytes(let bytes) = response.body,
              let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: String] else { return [:] }
        return object
    }

    private func errorCode(_ response: HTTPResponse) -> String? {
        guard case .bytes(let bytes) = response.body,
              let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: [String: String]] else { return nil }
        return object["error"]?["code"]
    }

    @Test("A literal segment beats a parameter, which beats a rest parameter")
    func specificity() {
        var router = Router()
        router.add("GET", "/files/{path...}") { _, p, _ in .json(["route": "rest", "path": p["path"] ?? ""]) }
        router.add("GET", "/files/{name}") { _, p, _ in .json(["route": "param", "name": p["name"] ?? ""]) }
        router.add("GET", "/files/latest") { _, _, _ in .json(["route": "literal"]) }
        #expect(json(router.handle(HTTPRequest(method: "GET", target: "/files/latest"), body: nil))["route"] == "literal")
        #expect(json(router.handle(HTTPRequest(method: "GET", target: "/files/x"), body: nil)) == ["route": "param", "name": "x"])
        #expect(json(router.handle(HTTPRequest(method: "GET", target: "/files/a/b%20c"), body: nil)) == ["route": "rest", "path": "a/b c"])
    }

    @Test("An encoded slash stays inside its segment and empty segments are ignored")
    func segments() {
        var router = Router()
        router.add("GET", "/api/v1/checkpoints/{id}/archive") { _, p, _ in .json(["id": p["id"] ?? ""]) }
        let response = router.handle(HTTPRequest(method: "GET", target: "/api/v1//checkpoints/a%2Fb/archive/"), body: nil)
        #expect(json(response) == ["id": "a/b"])
    }

    @Test("A prefix route answers for the prefix and everything below it")
    func prefix() {
        var router = Router()
        router.addPrefix("GET", "/static/") { _, p, _ in .json(["path": p["path"] ?? "-"]) }
        #expect(json(router.handle(HTTPRequest(method: "GET", target: "/static"), body: nil)) == ["path": ""])
        #expect(json(router.handle(HTTPRequest(method: "GET", target: "/static/css/site.css"), body: nil)) == ["path": "css/site.css"])
    }

    @Test("Unmatched paths go to the fallback when there is one, else 404")
    func fallback() {
        var router = Router()
        router.add("GET", "/api/ping") { _, _, _ in .text("pong") }
        #expect(errorCode(router.handle(HTTPRequest(method: "GET", target: "/index.html"), body: nil)) == "NOT_FOUND")
        router.setFallback { request, _ in .json(["fallback": request.path]) }
        #expect(json(router.handle(HTTPRequest(method: "GET", target: "/index.html"), body: nil)) == ["fallback": "/index.html"])
    }

    @Test("A wrong method is a 405 whose Allow header lists HEAD with GET")
    func methodNotAllowed() {
        var router = Router()
        router.add("GET", "/thing") { _, _, _ in .text("x") }
        router.add("POST", "/thing") { _, _, _ in .text("x") }
        let response = router.handle(HTTPRequest(method: "PATCH", target: "/thing"), body: nil)
        #expect(response.status == 405)
        #expect(response.header("allow") == "GET, HEAD, POST")
        #expect(errorCode(response) == "METHOD_NOT_ALLOWED")
    }

    @Test("A handler can read a buffered body")
    func bufferedBody() throws {
        var router = Router()
        router.add("POST", "/echo") { _, _, body in
            HTTPResponse(body: .bytes(try body?.readAll(maximumBytes: 100) ?? []))
        }
        let response = router.handle(HTTPRequest(method: "POST", target: "/echo"), body: .buffered(Array("abc".utf8)))
        #expect(response.body == .bytes(Array("abc".utf8)))
    }

    @Test("Request targets split into decoded path and query, the last repeated parameter winning")
    func targets() {
        let request = HTTPRequest(method: "GET", target: "/a%20b/c?x=1&x=2&y=%E2%9C%93&flag&z=a+b",
                                  headers: ["X-Custom": "v"])
        #expect(request.path == "/a b/c")
        #expect(request.rawPath == "/a%20b/c")
        #expect(request.query == ["x": "2", "y": "✓", "flag": "", "z": "a b"])
        #expect(request.header("x-custom") == "v")
        #expect(request.header("X-CUSTOM") == "v")
        #expect(RequestContext.originForm("http://example.com:8080/p?q=1") == "/p?q=1")
        #expect(RequestContext.originForm("http://example.com") == "/")
    }

    @Test("The access log redacts token-like query values and neutralises control characters")
    func redaction() {
        #expect(AccessLog.redactedTarget("/x?token=abc&a=1&access_token=z&Password=p") ==
                "/x?token=REDACTED&a=1&access_token=REDACTED&Password=REDACTED")
        #expect(AccessLog.redactedTarget("/x y\n") == "/x?y?")
    }
}
