// swift-tools-version:6.1
// Postern's hot-path micro-benchmarks (ordo-one/benchmark), a package of its own so that the
// benchmark dependency never slows `swift build --build-tests` of Postern: run with
//   cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "PosternBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Postern", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PosternCore", package: "Postern"),
                .product(name: "PosternEngine", package: "Postern"),
                .product(name: "PosternFastCGI", package: "Postern"),
                .product(name: "PosternSCGI", package: "Postern"),
                .product(name: "PosternUWSGI", package: "Postern"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
