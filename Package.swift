// swift-tools-version: 6.1
import PackageDescription

/// One settings array for every target: Swift 6 mode plus the upcoming features the house style asks for.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Ferry",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
        .library(name: "CheckpointArchive", targets: ["CheckpointArchive"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // kubeconfig files are YAML.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries, wrapped once each by a Swift type in the target that imports them.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        // libcurl's easy interface for every HTTP request Ferry sends (already loaded by FoundationNetworking).
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // libpq, PostgreSQL's own client: the catalog's scale-out engine (blocking, like Ferry's other threads).
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        // Reading checkpoint archives and CRIU images into a model. No I/O policy, no presentation.
        .target(
            name: "CheckpointArchive",
            dependencies: ["CArchive"],
            swiftSettings: swiftSettings
        ),
        // Findings: archive rules (IDs, IPs, rootfs diff, shape) and target-node preflight.
        .target(
            name: "FerryValidation",
            dependencies: ["CheckpointArchive"],
            swiftSettings: swiftSettings
        ),
        // The Codable messages between service, agents and clients, defined once.
        .target(
            name: "FerryAPI",
            dependencies: ["FerryValidation"],
            swiftSettings: swiftSettings
        ),
        // Signed provenance: Ed25519 statements over checkpoints (DSSE envelopes), their chains, and verification.
        .target(
            name: "FerryProvenance",
            dependencies: ["FerryAPI", "FerryClient", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // checkpointctl-compatible reports (JSON and tree text) built from the model.
        .target(
            name: "FerryInspect",
            dependencies: ["CheckpointArchive"],
            swiftSettings: swiftSettings
        ),
        // libmicrohttpd wrapped once: daemon lifecycle, router, streaming request bodies, file responses, JSON errors.
        .target(
            name: "FerryHTTP",
            dependencies: ["CMicroHTTPD"],
            swiftSettings: swiftSettings
        ),
        // The catalog (SQLite through GRDB over the system libsqlite3, or PostgreSQL through libpq) and the
        // content-addressed blob store (a local directory, or S3-compatible object storage).
        .target(
            name: "FerryCatalog",
            dependencies: [
                "FerryAPI", "CPostgres", "FerryObjectStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("../../migrations")],
            swiftSettings: swiftSettings
        ),
        // A blocking client of the REST API for the CLI and node agents (streamed uploads, resumable downloads).
        .target(
            name: "FerryClient",
            dependencies: ["CCurl", "FerryAPI", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // S3-compatible object storage: SigV4 signing and the S3 calls the blob store needs, over FerryClient's libcurl transfer.
        .target(
            name: "FerryObjectStore",
            dependencies: ["FerryClient", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The service: ingest, catalog API, downloads, web page, tokens.
        .target(
            name: "FerryServer",
            dependencies: [
                "CheckpointArchive", "FerryInspect", "FerryCatalog", "FerryHTTP", "FerryValidation", "FerryClient", "FerryAPI",
                "FerryProvenance",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.copy("../../web")],
            swiftSettings: swiftSettings
        ),
        // The node agent: registration and heartbeats, node facts, restore/checkpoint jobs, runtime drivers.
        .target(
            name: "FerryAgent",
            dependencies: ["CheckpointArchive", "FerryHTTP", "FerryClient", "FerryValidation", "FerryAPI", "FerryProvenance",
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The command line: argument parsing only.
        .executableTarget(
            name: "ferry",
            dependencies: [
                "CheckpointArchive",
                "FerryInspect",
                "FerryClient",
                "FerryValidation",
                "FerryServer",
                "FerryAgent",
                "FerryAPI",
                "FerryProvenance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "FerryTestSupport",
            dependencies: ["CheckpointArchive"],
            path: "Tests/FerryTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CheckpointArchiveTests",
            dependencies: ["CheckpointArchive", "FerryTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryInspectTests",
            dependencies: ["FerryInspect"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryValidationTests",
            dependencies: ["FerryValidation", "CheckpointArchive", "FerryTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryCatalogTests",
            // GRDB is internal to FerryCatalog, but non-resilient modules still load their dependencies.
            dependencies: ["FerryCatalog", "FerryTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryHTTPTests",
            dependencies: ["FerryHTTP", "FerryTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryServerTests",
            dependencies: ["FerryServer", "FerryAPI", "FerryClient", "CheckpointArchive", "FerryCatalog", "FerryTestSupport",
                           "FerryProvenance", "FerryObjectStore",
                           .product(name: "GRDB", package: "GRDB.swift")],
            // The kubelet and API server doubles are Python scripts the tests run, not resources.
            exclude: ["Doubles"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryAgentTests",
            dependencies: ["FerryAgent", "FerryAPI", "FerryProvenance", "FerryTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryClientTests",
            dependencies: ["FerryClient", "FerryHTTP", "FerryTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryObjectStoreTests",
            dependencies: ["FerryObjectStore", "FerryClient", "FerryTestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryCLITests",
            dependencies: ["FerryTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "FerryLabTests", dependencies: ["FerryTestSupport"], swiftSettings: swiftSettings),
    ]
)
