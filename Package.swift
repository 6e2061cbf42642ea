// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "paddock",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "paddock", targets: ["PaddockCLI"]),
        .executable(name: "paddock-bench", targets: ["PaddockBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Already under postgres-nio: SHA-256 of submissions (idempotency keys).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        // Already built for swift-nio-ssl: `--tls-self-signed` makes its CA and certificate with it.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        .target(
            name: "PaddockProtocol",
            path: "Sources/Protocol",
            resources: [.embedInCode("openapi.yaml")],
            swiftSettings: strict
        ),
        .target(
            name: "PaddockMaster",
            dependencies: [
                "PaddockProtocol", "PaddockOpenJD",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "GRDB", package: "GRDB.swift"),
                // The SQLite C API GRDB is built on: the store binds and steps its statements itself.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Master",
            resources: [
                .embedInCode("HTTP/install-agent.sh"),
                // The web dashboard (issue 17), served at / (Dashboard/DashboardRoutes.swift).
                .embedInCode("Dashboard/index.html"),
                .embedInCode("Dashboard/app.js"),
                .embedInCode("Dashboard/app.css"),
                .embedInCode("Dashboard/icon.svg"),
            ],
            swiftSettings: strict
        ),
        // Open Job Description templates (jobtemplate-2023-09) read, checked, expanded and turned
        // into a JobSubmission: pure, shared by the CLI and the master (docs/OPENJD.md).
        .target(
            name: "PaddockOpenJD",
            dependencies: ["PaddockProtocol", .product(name: "Yams", package: "Yams")],
            path: "Sources/OpenJD",
            swiftSettings: strict
        ),
        // The one HTTP client of API v1 (agent, CLI, bench), on AsyncHTTPClient.
        .target(
            name: "PaddockClient",
            dependencies: [
                "PaddockProtocol",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Client",
            swiftSettings: strict
        ),
        // The glibc calls Swift's Glibc module does not expose (behind _GNU_SOURCE, or in malloc.h), and the task launch.
        .target(name: "CSpawn", path: "Sources/CSpawn"),
        // A process's clean code pages dropped from its resident set (the idle agent, the master).
        .target(
            name: "PaddockFootprint",
            dependencies: [
                "CSpawn",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Footprint",
            swiftSettings: strict
        ),
        .target(
            name: "PaddockAgent",
            dependencies: [
                "PaddockProtocol", "PaddockClient", "CSpawn", "PaddockFootprint",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Agent",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "PaddockCLI",
            dependencies: [
                "PaddockProtocol", "PaddockClient", "PaddockMaster", "PaddockAgent", "PaddockOpenJD", "PaddockFootprint",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/CLI",
            swiftSettings: strict
        ),
        // The benchmark harness (issue: benchmarks): drives real masters and agents on loopback.
        .executableTarget(
            name: "PaddockBench",
            dependencies: [
                "PaddockProtocol", "PaddockClient", "PaddockTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "bench/Sources",
            swiftSettings: strict
        ),
        .target(name: "PaddockTestSupport", dependencies: [], path: "Tests/Support", swiftSettings: strict),
        .testTarget(
            name: "ProtocolTests",
            dependencies: ["PaddockProtocol", "PaddockTestSupport", .product(name: "Yams", package: "Yams")],
            path: "Tests/ProtocolTests"
        ),
        .testTarget(
            name: "OpenJDTests",
            dependencies: ["PaddockOpenJD", "PaddockProtocol", "PaddockTestSupport", .product(name: "Yams", package: "Yams")],
            path: "Tests/OpenJDTests",
            // The specification's sample templates and their license, and the reference script: read from the source tree.
            exclude: ["Fixtures", "Templates", "openjd_reference.py"]
        ),
        .testTarget(
            name: "MasterTests",
            dependencies: [
                "PaddockMaster", "PaddockProtocol", "PaddockTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                // `SQLiteUpgradeTests` writes a store under an earlier schema with GRDB's migrator.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/MasterTests"
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "PaddockAgent", "PaddockProtocol", "PaddockClient", "PaddockTestSupport", "PaddockFootprint",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `testGracefulShutdown`: the exchange loop's tests stop it as SIGTERM would.
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            path: "Tests/AgentTests"
        ),
        .testTarget(
            name: "ClientTests",
            dependencies: [
                "PaddockClient", "PaddockProtocol", "PaddockTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ClientTests",
            // A test CA and a server certificate for 127.0.0.1 signed by it (read from the source tree).
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["PaddockProtocol", "PaddockClient", "PaddockAgent", "PaddockCLI", "PaddockMaster", "PaddockTestSupport"],
            path: "Tests/EndToEndTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
