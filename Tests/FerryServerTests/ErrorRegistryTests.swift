@testable import FerryServer
import FerryCatalog
import FerryHTTP
import FerryTestSupport
import Foundation
import Testing

/// One registry of error codes (`ServiceErrorCode`): every code the service answers with has its status there,
/// handlers use it rather than literals, the layers below agree with it, and the README's table equals it.
@Suite("error code registry")
struct ErrorRegistryTests {
    static func source(_ path: String) throws -> String {
        try String(contentsOf: Fixtures.repositoryRoot.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("the README's error table is the registry, row for row")
    func readmeEqualsRegistry() throws {
        let readme = try Self.source("README.md")
        let section = try #require(readme.range(of: "### Errors\n")).upperBound
        let rest = readme[section...]
        let text = rest.range(of: "\n## ").map { rest[..<$0.lowerBound] } ?? rest
        let rows = text.split(separator: "\n").compactMap { line -> String? in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, cells[0].hasPrefix("`") else { return nil }
            return "\(cells[0].dropFirst().dropLast()) \(cells[1])"
        }
        let registry = ServiceErrorCode.all.map { "\($0.rawValue) \($0.status)" } + ServiceErrorCode.archiveCodes.map { "\($0) 422" }
        #expect(rows == registry)
        #expect(Set(registry).count == registry.count, "no code twice")
    }

    @Test("no handler answers with a literal code: every HTTPError of the service goes through the registry")
    func handlersUseTheRegistry() throws {
        let directory = Fixtures.repositoryRoot.appendingPathComponent("Sources/FerryServer")
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".swift") && name != "ServiceErrorCode.swift" {
            let text = try Self.source("Sources/FerryServer/\(name)")
            #expect(!text.contains("HTTPError(status:"), "\(name) builds an HTTPError outside the registry")
        }
    }

    @Test("the HTTP layer's own errors, the catalog's and the archive reader's codes agree with the registry")
    func layersAgree() throws {
        let http: [(HTTPError, ServiceErrorCode)] = [
            (.badRequest("x"), .badRequest), (.notFound(), .notFound), (.methodNotAllowed("GET"), .methodNotAllowed),
            (.payloadTooLarge(), .payloadTooLarge), (.rangeNotSatisfiable(size: 1), .rangeNotSatisfiable),
            (.requestHeadersTooLarge(limit: 1), .requestHeadersTooLarge), (.clientDisconnected, .clientDisconnected),
            (.internalError, .internalError), (.shuttingDown, .serverShuttingDown),
        ]
        for (error, code) in http {
            #expect(error.code == code.rawValue && error.status == code.status, "\(error.code) \(error.status)")
        }
        let catalogCodes = try Self.source("Sources/FerryCatalog/CatalogError.swift")
            .matches(of: /CatalogErrorCode\(rawValue: "([A-Z_]+)"\)/).map { String($0.1) }
        #expect(!catalogCodes.isEmpty)
        for code in catalogCodes {
            #expect(ServiceErrorCode.all.contains { $0.rawValue == code }, "catalog code \(code) is in the registry")
        }
        let readerCodes = try Self.source("Sources/CheckpointArchive/CheckpointError.swift")
            .matches(of: /CheckpointErrorCode\(rawValue: "([A-Z_]+)"\)/).map { String($0.1) }
        #expect(readerCodes == ServiceErrorCode.archiveCodes)
        #expect(try Self.source("Sources/FerryHTTP/RequestContext.swift").contains("\"BAD_FRAMING\""))
    }
}
