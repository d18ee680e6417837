import FerryTestSupport
import Foundation
import Testing

/// What one archive's metadata can make the service hold and send is bounded: metadata files over 1 MiB are
/// refused, and catalog columns are cut so a list page stays small whatever the names say.
@Suite("metadata bounds")
struct MetadataBoundsTests {
    /// The shipped counter with its container name replaced.
    static func archive(containerName: String) throws -> String {
        let base = try Fixtures.uncompressedBytes(of: "podman-counter-none.tar")
        var config = try JSONSerialization.jsonObject(with: Data(TarBuilder.extract("config.dump", from: base))) as! [String: Any]
        config["name"] = containerName
        var builder = TarBuilder()
        builder.copyEntries(of: base) { $0 == "config.dump" }
        builder.file("config.dump", Array(try JSONSerialization.data(withJSONObject: config)))
        return try Fixtures.write(builder.finished())
    }

    @Test("a config.dump of 2 MiB (a 2 MiB container name) is refused with ENTRY_TOO_LARGE; nothing is stored")
    func hugeMetadataIsRefused() throws {
        let server = try TestServer()
        let refused = try server.upload(try Self.archive(containerName: String(repeating: "n", count: 2 << 20)))
        #expect(refused.status == 422, "\(refused.text.prefix(300))")
        #expect(refused.errorCode == "ENTRY_TOO_LARGE")
        #expect(refused.text.contains("config.dump"))
        #expect(try server.blobFiles().isEmpty)
    }

    @Test("a 900 KiB container name is catalogued cut to 1024 characters, and 20 of them make a small list page")
    func longNamesAreCut() throws {
        let server = try TestServer()
        for index in 0..<20 {
            let uploaded = try server.upload(try Self.archive(containerName: "\(index)-" + String(repeating: "n", count: 900 << 10)))
            #expect(uploaded.status == 201, "\(uploaded.text.prefix(300))")
        }
        let page = try server.request("GET", "/api/v1/checkpoints?limit=100")
        #expect(page.status == 200)
        #expect(page.body.count < 200_000, "a list page of 20 rows is \(page.body.count) bytes")
        let names = (page.json["items"] as? [[String: Any]] ?? []).compactMap { ($0["container"] as? [String: Any])?["name"] as? String }
        #expect(names.count == 20)
        #expect(names.allSatisfy { $0.count == 1024 && $0.hasSuffix("…") }, "\(names.map(\.count))")
    }
}
