// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "greeter",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Postern by its git URL and a release tag (`postern --version` prints the version):
        //     .package(url: "https://…/postern.git", from: "0.2.0"),
        // or a checkout beside your package:
        .package(path: "../postern")
    ],
    targets: [
        .executableTarget(name: "greeter", dependencies: [.product(name: "Postern", package: "postern")])
    ]
)
