import FerryTestSupport
import Foundation
import Testing

/// Environment values come from an archive's memory pages and hold secrets: a read token sees each variable's
/// name with its value masked, in the API and on the page; an admin sees the value.
@Suite("secret redaction")
struct SecretRedactionTests {
    @Test("SECRET_TOKEN=hunter2 of the shipped counter is masked for read tokens and shown to admins")
    func environmentValuesAreMasked() throws {
        let server = try TestServer(tokens: true)
        let uploaded = try server.upload(Fixtures.archive("podman-counter-none.tar"), token: TestServer.writeToken)
        let id = try #require((uploaded.json["checkpoint"] as? [String: Any])?["id"] as? String)

        let reader = try server.request("GET", "/api/v1/checkpoints/\(id)", token: TestServer.readToken)
        #expect(reader.status == 200)
        #expect(!reader.text.contains("hunter2"), "a read token never sees the value")
        #expect(reader.text.contains("SECRET_TOKEN"), "the variable's name stays")
        #expect(reader.text.contains("[REDACTED]"))

        let admin = try server.request("GET", "/api/v1/checkpoints/\(id)", token: TestServer.adminToken)
        #expect(admin.text.contains("hunter2"))

        let page = try server.request("GET", "/checkpoints/\(id)", headers: [try server.signIn(TestServer.readToken)])
        #expect(page.status == 200)
        #expect(!page.text.contains("hunter2"))
        #expect(page.text.contains("SECRET_TOKEN=[REDACTED]"))
        #expect(page.text.contains("values shown to admins only"))
        let adminPage = try server.request("GET", "/checkpoints/\(id)", headers: [try server.signIn(TestServer.adminToken)])
        #expect(adminPage.text.contains("SECRET_TOKEN=hunter2"))
    }
}
