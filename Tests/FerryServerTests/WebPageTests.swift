import FerryTestSupport
import Foundation
import Testing

/// The web page in a real headless Chromium (Debian's `chromium`): the listing and a detail page render the
/// catalogue, and screenshots are saved under `test-artifacts/`.
@Suite("web page")
struct WebPageTests {
    static func browser(_ arguments: [String]) throws -> ProcessResult {
        try Browser.run(arguments)
    }

    static var artifacts: URL { Browser.artifacts }

    @Test("the listing shows every checkpoint and the detail page shows the process tree")
    func listingAndDetail() throws {
        let server = try TestServer()
        var ids: [String: String] = [:]
        for name in Fixtures.checkpointArchives {
            let response = try server.upload(Fixtures.archive(name), query: "?node=node-a")
            ids[name] = (response.json["checkpoint"] as? [String: Any])?["id"] as? String
        }

        let listing = try Self.browser(["--dump-dom", server.base + "/?limit=100"])
        #expect(listing.status == 0, "\(listing.stderr.suffix(500))")
        let rows = listing.stdout.components(separatedBy: "<tr data-id=\"").count - 1
        #expect(rows == Fixtures.checkpointArchives.count)
        #expect(listing.stdout.contains("counter-7d9f8b6c5-x2kqz / shop"))
        #expect(listing.stdout.contains("cd-multinet"))

        let filtered = try Self.browser(["--dump-dom", server.base + "/?engine=CRI-O"])
        #expect(filtered.stdout.components(separatedBy: "<tr data-id=\"").count - 1 == 1)

        let paged = try Self.browser(["--dump-dom", server.base + "/?limit=5&sort=size&order=asc"])
        #expect(paged.stdout.components(separatedBy: "<tr data-id=\"").count - 1 == 5)
        #expect(paged.stdout.contains("rel=\"next\""))

        let id = try #require(ids["podman-tcp-established.tar"])
        let detail = try Self.browser(["--dump-dom", server.base + "/checkpoints/\(id)"])
        #expect(detail.status == 0)
        #expect(detail.stdout.contains("id=\"process-tree\""))
        for pid in [1, 7, 8, 9, 11, 12, 16] { #expect(detail.stdout.contains("data-pid=\"\(pid)\""), "pid \(pid)") }
        #expect(detail.stdout.contains("nc -l -p 9000"))
        #expect(detail.stdout.contains("ESTABLISHED"))
        #expect(detail.stdout.contains("/api/v1/checkpoints/\(id)/archive"))
        // The registry view's reference and the pull command, with the port the service really listens on.
        let reference = "\(server.base.dropFirst("http://".count))/checkpoints/tcp-established:\(id.prefix(12))"
        let api = try server.request("GET", "/api/v1/checkpoints/\(id)")
        let apiReference = (api.json["checkpoint"] as? [String: Any])?["oci_reference"] as? String
        #expect(apiReference?.hasSuffix(":\(id.prefix(12))") == true && apiReference?.hasPrefix(String(server.base.dropFirst(7))) == true, "\(apiReference ?? "none")")
        #expect(detail.stdout.contains("id=\"oci-reference\">\(apiReference ?? "?")<"), "\(reference)")
        #expect(detail.stdout.contains("podman container restore \(apiReference ?? "?")"))

        let listingShot = Self.artifacts.appendingPathComponent("listing.png").path
        let detailShot = Self.artifacts.appendingPathComponent("detail.png").path
        try? FileManager.default.removeItem(atPath: listingShot)
        try? FileManager.default.removeItem(atPath: detailShot)
        _ = try Self.browser(["--screenshot=\(listingShot)", server.base + "/"])
        _ = try Self.browser(["--screenshot=\(detailShot)", server.base + "/checkpoints/\(id)"])
        for shot in [listingShot, detailShot] {
            let size = (try FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
            #expect(size > 10_000, "\(shot) is a real screenshot")
        }
    }

    @Test("the listing works without JavaScript and escapes what archives say")
    func noScriptAndEscaping() throws {
        let server = try TestServer()
        _ = try server.upload(Fixtures.archive("podman-counter-none.tar"), query: "?labels=note=%3Cscript%3Ealert(1)%3C/script%3E")
        let page = try server.request("GET", "/?q=%3Cscript%3E")
        #expect(page.status == 200)
        #expect(!page.text.contains("<script>alert"))
        #expect(!page.text.contains("<script"), "the page itself needs no script")
        #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
    }

    @Test("with tokens, the page asks to sign in and then shows the catalogue")
    func signIn() throws {
        let server = try TestServer(tokens: true)
        _ = try server.upload(Fixtures.archive("podman-counter-none.tar"), token: TestServer.writeToken)
        let redirect = try server.request("GET", "/")
        #expect(redirect.status == 303)
        #expect(redirect.headers["location"] == "/login")
        let bad = try server.request("POST", "/login", extra: ["--data", "token=nope"])
        #expect(bad.status == 401)
        let login = try server.request("POST", "/login", extra: ["--data", "token=\(TestServer.readToken)"])
        #expect(login.status == 303)
        let cookie = try #require(login.headers["set-cookie"])
        #expect(cookie.contains("HttpOnly"))
        #expect(cookie.hasPrefix("ferry_session="))
        #expect(!cookie.contains(TestServer.readToken), "the cookie is a session, never the token")
        let page = try server.request("GET", "/", headers: ["Cookie: \(cookie.split(separator: ";")[0])"])
        #expect(page.status == 200)
        #expect(page.text.contains("counter"))
        // A token put in the cookie by hand is not a sign-in; nor is a made-up session.
        let forged = try server.request("GET", "/", headers: ["Cookie: ferry_token=\(TestServer.adminToken)"])
        #expect(forged.status == 303)
        let guessed = try server.request("GET", "/api/v1/checkpoints", headers: ["Cookie: ferry_session=\(String(repeating: "0", count: 64))"])
        #expect(guessed.status == 401)
    }
}
