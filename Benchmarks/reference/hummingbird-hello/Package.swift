// swift-tools-version:6.0
// The reference for Postern's HTTP listener in `postern bench` (modes `hummingbird` and
// `hummingbird-tls`): Hummingbird 2's hello, built by the bench into .build-hummingbird-hello at
// the package root.
import PackageDescription

let package = Package(
    name: "hummingbird-hello",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1")
    ],
    targets: [
        .executableTarget(
            name: "hummingbird-hello",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdTLS", package: "hummingbird"),
            ])
    ]
)
