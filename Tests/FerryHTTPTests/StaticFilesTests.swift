import Foundation
import FerryTestSupport
import Testing
@testable import FerryHTTP

@Suite("Static files")
final class StaticFilesTests {
    let root: URL
    let outside: URL

    init() throws {
        let base = try Fixtures.temporaryDirectory()
        root = base.appendingPathComponent("web")
        outside = base.appendingPathComponent("private")
        let manager = FileManager.default
        try manager.createDirectory(at: root.appendingPathComponent("css"), withIntermediateDirectories: true)
        try manager.createDirectory(at: outside, withIntermediateDirectories: true)
        try Data("<h1>ferry</h1>".utf8).write(to: root.appendingPathComponent("index.html"))
        try Data("body{}".utf8).write(to: root.appendingPathComponent("css/site.css"))
        try Data("hidden".utf8).write(to: root.appendingPathComponent(".env"))
        try Data("secret".utf8).write(to: outside.appendingPathComponent("key"))
        try manager.createSymbolicLink(at: root.appendingPathComponent("escape"), withDestinationURL: outside)
    }

    deinit {
        try? FileManager.default.removeItem(at: root.deletingLastPathComponent())
    }

    private func get(_ target: String, method: String = "GET") -> HTTPResponse {
        StaticFiles(root: root.path).response(for: HTTPRequest(method: method, target: target))
    }

    @Test("The root and a directory serve index.html; other files get their media type")
    func serves() {
        let index = get("/")
        #expect(index.status == 200)
        #expect(index.header("content-type") == "text/html; charset=utf-8")
        #expect(index.body.count == 14)
        #expect(index.header("etag")?.hasPrefix("W/\"") == true)
        let css = get("/css/site.css")
        #expect(css.status == 200)
        #expect(css.header("content-type") == "text/css; charset=utf-8")
    }

    @Test("Dot segments, hidden files, encoded slashes and symbolic links out of the root are not found", arguments: [
        "/../private/key", "/%2e%2e/private/key", "/css/..%2f..%2fprivate/key", "/.env", "/escape/key", "/nothing.html",
    ])
    func refuses(target: String) {
        #expect(get(target).status == 404)
    }

    @Test("Methods other than GET and HEAD are refused with 405")
    func methods() {
        let response = get("/", method: "POST")
        #expect(response.status == 405)
        #expect(response.header("allow") == "GET, HEAD")
        #expect(get("/", method: "HEAD").status == 200)
    }
}
