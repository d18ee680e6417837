import FerryTestSupport
import FerryValidation
import Foundation
import Testing

/// The README's validation section is the table of rules: it must list every code, once, with a severity.
@Suite("Validation rules documentation")
struct DocumentationTests {
    static func rows() throws -> [(code: String, severity: String)] {
        let url = Fixtures.repositoryRoot.appendingPathComponent("README.md")
        let readme = try String(contentsOf: url, encoding: .utf8)
        guard let start = readme.range(of: "\n## Validation") else { return [] }
        let rest = readme[start.upperBound...]
        let text = rest.range(of: "\n## ").map { rest[..<$0.lowerBound] } ?? rest
        return text.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count > 3, cells[1].hasPrefix("`"), cells[1].hasSuffix("`") else { return nil }
            return (String(cells[1].dropFirst().dropLast()), cells[2])
        }
    }

    @Test("every finding code is documented exactly once, and nothing else is")
    func everyCodeIsDocumentedOnce() throws {
        let documented = try Self.rows().map(\.code)
        #expect(documented == FindingCode.all.map(\.rawValue))
        #expect(Set(FindingCode.all).count == FindingCode.all.count)
    }

    @Test("every documented rule has a severity")
    func everyRuleHasASeverity() throws {
        for row in try Self.rows() {
            #expect(["error", "warning", "info", "warning (none with --allow-setuid)", "error (warning for zeros)"].contains(row.severity), "\(row.code)")
        }
    }
}
