// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the parsers that read untrusted bytes. Built separately (see run)
// because they need -sanitize=fuzzer, which the main package's tests must not. The audit
// targets use `@testable import` (debug builds are testable) to reach the parsers directly.
let package = Package(
    name: "ActAsFuzz",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "FuzzHTTP",
            dependencies: [
                .product(name: "ActAsHTTP", package: "main"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // libFuzzer's driver entry point and the checks the audit targets share.
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "ActAsAudit", package: "main"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(name: "FuzzRedactor", dependencies: auditTarget, swiftSettings: parseAsLibrary),
        .executableTarget(name: "FuzzJSON", dependencies: auditTarget, swiftSettings: parseAsLibrary),
        .executableTarget(name: "FuzzMultipart", dependencies: auditTarget, swiftSettings: parseAsLibrary),
        .executableTarget(name: "FuzzAuditLine", dependencies: auditTarget, swiftSettings: parseAsLibrary),
        .executableTarget(
            name: "FuzzHTML",
            dependencies: [
                "FuzzSupport",
                .product(name: "ActAsHTTP", package: "main"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: parseAsLibrary
        ),
    ]
)

var auditTarget: [Target.Dependency] {
    [
        "FuzzSupport",
        .product(name: "ActAsAudit", package: "main"),
        .product(name: "NIOCore", package: "swift-nio"),
    ]
}

var parseAsLibrary: [SwiftSetting] { [.unsafeFlags(["-parse-as-library"])] }
