// swift-tools-version:6.0
import PackageDescription

// libFuzzer target for ActAs's HTTP/1.1 codec. Built separately (see run) because it needs
// -sanitize=fuzzer, which the main package's tests must not.
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
    ]
)
