// swift-tools-version:6.1
// Your own app on Postern, in a package of its own (see ../README.md).
import PackageDescription

let package = Package(
    name: "greeter",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Postern, by its git URL and a release:
        //     .package(url: "https://…/postern.git", from: "0.2.0"),
        // or, as here, a checkout beside this package (../postern):
        .package(path: "../postern"),
    ],
    targets: [
        .executableTarget(
            name: "greeter",
            dependencies: [.product(name: "Postern", package: "postern")]
        ),
    ]
)
