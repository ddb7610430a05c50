// swift-tools-version:6.0
import PackageDescription

// The data path modules (ActAsHTTP, ActAsProxy, and ActAsAudit, which encodes every
// request's log line) are built with exclusivity checks off in release: measured
// ~1 µs/request in the architecture spike, and the code there never shares mutable
// state across accesses. Debug builds (and so the tests) keep the checks.
let hotPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "actas",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "actas", targets: ["actas"]),
        .library(name: "ActAsHTTP", targets: ["ActAsHTTP"]),
        // For the fuzz targets in Fuzz/ (a separate package).
        .library(name: "ActAsAudit", targets: ["ActAsAudit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "actas",
            dependencies: [
                "ActAsConfig", "ActAsCore", "ActAsCrypto", "ActAsStore", "ActAsAudit", "ActAsSessions", "ActAsConsole", "ActAsProxy", "ActAsDemo",
                "ActAsStorePostgres", "ActAsNotify", "ActAsLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The swift-log handler for operational messages: text on a terminal, JSON lines otherwise.
        .target(
            name: "ActAsLogging",
            dependencies: ["ActAsCore", .product(name: "Logging", package: "swift-log")]
        ),
        // Strict HTTP/1.1 codec: heads, framing, chunked bodies. NIOCore only.
        .target(
            name: "ActAsHTTP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: hotPathSettings
        ),
        // proxy.conf → typed, validated configuration. No networking.
        .target(
            name: "ActAsConfig",
            dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // Pure domain: users, roles, policy, path rules, refusal codes. No I/O, imports nothing of ours.
        .target(name: "ActAsCore"),
        // Dev certificates, assertion JWTs and the key ring, password hashing, tokens, CSRF.
        .target(
            name: "ActAsCrypto",
            dependencies: [
                "ActAsCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Store protocol, SQLite implementation, migrations, change feed, the in-memory live state.
        .target(
            name: "ActAsStore",
            dependencies: [
                "ActAsCore", "ActAsCrypto",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The PostgreSQL store (SPEC §10.2): same schema and semantics as SQLite, LISTEN/NOTIFY wake-up.
        .target(
            name: "ActAsStorePostgres",
            dependencies: [
                "ActAsStore", "ActAsCore", "ActAsCrypto", "ActAsConfig",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Request log: records, redaction, hash chain, writer, verify/tail/export.
        .target(
            name: "ActAsAudit",
            dependencies: [
                "ActAsCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: hotPathSettings
        ),
        // The impersonation lifecycle (start, extend, end, consent, sweep, policy reload) and the
        // audit sink: shared by the proxy and the console. No networking, no UI.
        .target(
            name: "ActAsSessions",
            dependencies: [
                "ActAsCore", "ActAsConfig", "ActAsCrypto", "ActAsStore", "ActAsAudit",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Sign-in through an identity provider (SPEC §10.3): OIDC discovery, code + PKCE, ID and
        // logout token verification, claim mapping. Talks to the provider; no UI, no store.
        .target(
            name: "ActAsIdentity",
            dependencies: [
                "ActAsConfig", "ActAsCore", "ActAsCrypto",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // What the data path shows and hands over without the console's UI: the banner, refusal
        // page parts, the console hand-off (ConsoleEndpoint, ConsoleRequest/Response), cookie names.
        .target(
            name: "ActAsPages",
            dependencies: ["ActAsCore", "ActAsConfig", "ActAsStore", "ActAsSessions"]
        ),
        // /.actas/: pages and JSON API (sign-in, account, users, impersonation), templates.
        .target(
            name: "ActAsConsole",
            dependencies: [
                "ActAsCore", "ActAsConfig", "ActAsCrypto", "ActAsStore", "ActAsAudit", "ActAsSessions", "ActAsPages", "ActAsIdentity",
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        // Notifications (SPEC §10.5): the webhook sender that drains the store's outbox, off the
        // request path.
        .target(
            name: "ActAsNotify",
            dependencies: [
                "ActAsConfig", "ActAsCore", "ActAsStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Listeners, request pipeline, upstream pool, admin endpoints, lifecycle.
        .target(
            name: "ActAsProxy",
            dependencies: [
                "ActAsHTTP", "ActAsConfig", "ActAsCore", "ActAsCrypto", "ActAsStore", "ActAsAudit", "ActAsSessions", "ActAsPages",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: hotPathSettings
        ),
        // The bundled "legacy app" for a first run. Deliberately built on NIOHTTP1:
        // it stands in for somebody else's server, not for ActAs.
        .target(
            name: "ActAsDemo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        .testTarget(
            name: "ActAsHTTPTests",
            dependencies: [
                "ActAsTestSupport",
                "ActAsHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ActAsConfigTests", dependencies: ["ActAsConfig"]),
        // The proxy's pure parts (page rewriting, the cookie jar) without sockets.
        .testTarget(
            name: "ActAsProxyTests",
            dependencies: [
                "ActAsProxy", "ActAsHTTP", "ActAsPages", "ActAsConfig", "ActAsCore", "ActAsSessions", "ActAsStore", "ActAsAudit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        // Helpers shared by the test targets (a seeded random generator); not in any product.
        .target(name: "ActAsTestSupport", path: "Tests/ActAsTestSupport"),
        .testTarget(name: "ActAsCoreTests", dependencies: ["ActAsCore", "ActAsTestSupport"]),
        .testTarget(name: "ActAsCryptoTests", dependencies: ["ActAsCrypto", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "ActAsStoreTests",
            dependencies: [
                "ActAsStore", "ActAsStorePostgres", "ActAsConfig", "ActAsCore", "ActAsCrypto",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ActAsAuditTests", dependencies: ["ActAsAudit", "ActAsCore", "ActAsTestSupport"]),
        .testTarget(name: "ActAsLoggingTests", dependencies: ["ActAsLogging", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "ActAsNotifyTests",
            dependencies: ["ActAsNotify", "ActAsConfig", "ActAsStore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "ActAsIdentityTests",
            dependencies: ["ActAsIdentity", "ActAsConfig", "ActAsCore", "ActAsCrypto", .product(name: "Crypto", package: "swift-crypto"), .product(name: "_CryptoExtras", package: "swift-crypto")]
        ),
        .testTarget(name: "ActAsConsoleTests", dependencies: ["ActAsConsole", "ActAsSessions", "ActAsPages", "ActAsCore", "ActAsConfig", "ActAsStore", "ActAsCrypto", "ActAsAudit"]),
    ]
)
