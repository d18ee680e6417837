import FerryTestSupport
import Foundation
import Testing

/// The diff page and a container's history chart, served by a real service: the page in a real headless Chromium,
/// the chart's points counted in the served HTML after a pin and a delete, and hostile names escaped.
@Suite("diff page and history chart")
struct DiffPageTests {
    static func id(_ response: TestServer.Response) throws -> String {
        try #require((response.json["checkpoint"] as? [String: Any])?["id"] as? String, "\(response.text)")
    }

    /// `<g class="checkpoint-point" …>` elements of a page, with their attributes.
    static func points(_ html: String) -> [String] {
        html.components(separatedBy: "<g class=\"checkpoint-point\" ").dropFirst().map { String($0.prefix { $0 != ">" }) }
    }

    @Test("the diff page shows checkpointctl's changes, in a real browser")
    func diffPageInBrowser() throws {
        let server = try TestServer()
        let a = try Self.id(try server.upload(Fixtures.archive("podman-series-1.tar")))
        let b = try Self.id(try server.upload(Fixtures.archive("podman-series-2.tar")))
        let page = try Browser.run(["--dump-dom", server.base + "/checkpoints/\(a)/diff/\(b)"])
        #expect(page.status == 0, "\(page.stderr.suffix(500))")
        let html = page.stdout
        #expect(html.contains("<pre id=\"diff-summary\">Checkpoint comparison for container cd-series\nProcesses: +3 -1 ~0\nFiles: +16 -5\nSockets: +1 -0\nMemory: +0.12 MB</pre>"))
        #expect(html.contains("id=\"diff-memory\">Increased by 0.12 MB (+122880 bytes)"))
        let processes = html.components(separatedBy: "id=\"diff-processes\"")[1].components(separatedBy: "</table>")[0]
        #expect(processes.components(separatedBy: "data-change=\"added\"").count - 1 == 3)
        #expect(processes.components(separatedBy: "data-change=\"removed\"").count - 1 == 1)
        #expect(processes.contains("nc -l -p 7000"))
        let files = html.components(separatedBy: "id=\"diff-files\"")[1].components(separatedBy: "</table>")[0]
        #expect(files.components(separatedBy: "data-change=\"added\"").count - 1 == 16)
        #expect(files.components(separatedBy: "data-change=\"removed\"").count - 1 == 5)
        #expect(html.contains("id=\"diff-files-unchanged\""))
        #expect(html.contains("LISTEN") && html.contains(":::7000"))
        #expect(html.contains("/api/v1/checkpoints/\(a)/diff/\(b)?files=true&amp;sockets=true&amp;ps_tree_cmd=true"))

        let shot = Browser.artifacts.appendingPathComponent("diff.png").path
        try? FileManager.default.removeItem(atPath: shot)
        _ = try Browser.run(["--screenshot=\(shot)", server.base + "/checkpoints/\(a)/diff/\(b)"])
        #expect(((try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0) > 10_000)

        // Different containers: a page saying so; an unknown ID: 404.
        let other = try Self.id(try server.upload(Fixtures.archive("podman-counter-none.tar")))
        let refused = try server.request("GET", "/checkpoints/\(a)/diff/\(other)")
        #expect(refused.status == 200 && refused.text.contains("id=\"diff-error\">checkpoints are from different containers"))
        #expect(try server.request("GET", "/checkpoints/\(a)/diff/0000000000000000").status == 404)
    }

    @Test("a checkpoint's page links the diffs and charts every checkpoint of its container, pinned and deleted marked")
    func historyChart() throws {
        let server = try TestServer()
        let first = try Self.id(try server.upload(Fixtures.archive("podman-series-1.tar")))
        let second = try Self.id(try server.upload(Fixtures.archive("podman-series-2.tar")))
        let third = try Self.id(try server.upload(try RetentionTests.variant("podman-series-2.tar", container: "cd-series", serial: 3)))
        _ = try server.upload(Fixtures.archive("podman-counter-none.tar"))      // another container: not charted

        let before = try server.request("GET", "/checkpoints/\(second)")
        #expect(before.status == 200)
        #expect(Self.points(before.text).count == 3, "\(Self.points(before.text))")
        #expect(before.text.contains("<g class=\"checkpoint-point\" data-id=\"\(second)\" data-pinned=\"false\" data-deleted=\"false\" data-current=\"true\">"))
        // The earlier upload is A.
        #expect(before.text.contains("href=\"/checkpoints/\(first)/diff/\(second)\">Compare</a>"))
        #expect(before.text.contains("href=\"/checkpoints/\(second)/diff/\(third)\">Compare</a>"))
        #expect(before.text.contains("class=\"series-size\"") && before.text.contains("class=\"series-memory\""))

        let pin = try Fixtures.write(Array(#"{"reason": "baseline"}"#.utf8), name: "pin.json")
        #expect(try server.request("PUT", "/api/v1/checkpoints/\(first)/pin", upload: pin, headers: ["Content-Type: application/json"]).status == 200)
        #expect(try server.request("DELETE", "/api/v1/checkpoints/\(second)?reason=superseded").status == 204)

        let after = try server.request("GET", "/checkpoints/\(third)")
        let points = Self.points(after.text)
        #expect(points.count == 3, "the deleted checkpoint stays on the chart: \(points)")
        #expect(points.filter { $0.contains("data-pinned=\"true\"") }.map { $0.contains(first) } == [true])
        #expect(points.filter { $0.contains("data-deleted=\"true\"") }.map { $0.contains(second) } == [true])
        #expect(after.text.components(separatedBy: "class=\"pin-marker\"").count - 1 == 1)
        #expect(after.text.components(separatedBy: "class=\"deleted-marker\"").count - 1 == 1)
        #expect(!after.text.contains("/diff/\(second)") && !after.text.contains("/checkpoints/\(second)/diff"), "no diff with a deleted one")
        #expect(after.text.contains("href=\"/checkpoints/\(first)/diff/\(third)\">Compare</a>"))
        #expect(after.text.contains("2 checkpoints catalogued, 1 deleted."))

        // The browser renders the chart (an inline SVG, no script).
        let rendered = try Browser.run(["--dump-dom", server.base + "/checkpoints/\(third)"])
        #expect(rendered.stdout.contains("id=\"history-chart\""))
        let shot = Browser.artifacts.appendingPathComponent("history.png").path
        try? FileManager.default.removeItem(atPath: shot)
        _ = try Browser.run(["--screenshot=\(shot)", server.base + "/checkpoints/\(third)"])
    }

    @Test("names from archives are escaped on the diff page and in the chart")
    func escaping() throws {
        let server = try TestServer()
        let hostile = "<img src=x onerror=alert(1)>&\"'"
        let a = try Self.id(try server.upload(try RetentionTests.variant("podman-series-1.tar", container: hostile, serial: 1)))
        let b = try Self.id(try server.upload(try RetentionTests.variant("podman-series-2.tar", container: hostile, serial: 2)))
        let escaped = "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;"
        for path in ["/checkpoints/\(a)/diff/\(b)", "/checkpoints/\(b)"] {
            let page = try server.request("GET", path)
            #expect(page.status == 200)
            #expect(!page.text.contains("<img"), "\(path)")
            #expect(page.text.contains(escaped), "\(path)")
        }
        #expect(Self.points(try server.request("GET", "/checkpoints/\(b)").text).count == 2)
    }
}
