// swift-tools-version:6.1
// Postern: a Swift gateway server for legacy front-ends (FastCGI, SCGI, uwsgi, HTTP/1.1, CGI).
import PackageDescription

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]
let log: Target.Dependency = .product(name: "Logging", package: "swift-log")

let package = Package(
    name: "Postern",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "postern", targets: ["postern"]),
        .library(name: "PosternCore", targets: ["PosternCore"]),
        .library(name: "PosternEngine", targets: ["PosternEngine"]),
        .library(name: "PosternClient", targets: ["PosternClient"]),
        .library(name: "Postern", targets: ["Postern"]),
        // The protocol modules, for the micro-benchmarks (Benchmarks/Package.swift) and embedders.
        .library(name: "PosternFastCGI", targets: ["PosternFastCGI"]),
        .library(name: "PosternSCGI", targets: ["PosternSCGI"]),
        .library(name: "PosternUWSGI", targets: ["PosternUWSGI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // The gateway contract an application imports: Environ, EnvironBuilder (the normalizer),
        // Application, Middleware, Response, RequestBody, Validator, HeaderSafety, MountPrefix.
        .target(name: "PosternCore", dependencies: [.product(name: "NIOCore", package: "swift-nio"), log]),
        // The engine every protocol plugs into: the request cycle's application call
        // (GatewayConfiguration), the one-request response writer, the connection timeouts,
        // admission (busy refusal, concurrency), the hooks a protocol supplies (OneRequestCodec,
        // ResponseFraming, PipelineProtocolServer, ProtocolServer).
        .target(name: "PosternEngine", dependencies: ["PosternCore", log, .product(name: "NIOCore", package: "swift-nio")]),
        // What the protocol clients share (`postern request`, the tests, the soak).
        .target(name: "PosternClient", dependencies: ["PosternCore"] + nio),
        // One module per protocol: a pure codec, its engine hooks, and its client.
        .target(
            name: "PosternHTTP", dependencies: ["PosternCore", "PosternEngine", "PosternClient", log, .product(name: "NIOHTTP1", package: "swift-nio")] + nio),
        .target(name: "PosternFastCGI", dependencies: ["PosternCore", "PosternEngine", "PosternClient", log] + nio),
        .target(name: "PosternSCGI", dependencies: ["PosternCore", "PosternEngine", "PosternClient", log] + nio),
        .target(name: "PosternUWSGI", dependencies: ["PosternCore", "PosternEngine", "PosternClient", log] + nio),
        // The app as a CGI program (RFC 3875): no event loop, no NIOPosix, a small image that
        // starts fast (examples/hello-cgi links this and nothing of the server).
        .target(name: "PosternCGI", dependencies: ["PosternCore", "PosternEngine", log, .product(name: "NIOCore", package: "swift-nio")]),
        // Legacy CGI scripts hosted by the server (`--cgi-root`), as fcgiwrap does.
        .target(name: "PosternCGIHost", dependencies: ["PosternCore", "PosternEngine", "PosternCGI", "PosternRuntime", "CPosternSocket", log] + nio),
        // The server runtime: listeners, the acceptor, the fast path, hand-overs, peer watch,
        // admission, TLS (swift-nio-ssl). It knows protocols only as PosternEngine's ProtocolServer: no protocol module.
        .target(
            name: "PosternRuntime",
            dependencies: [
                "PosternCore", "PosternEngine", "CPosternSocket", "CPosternExecutorHook", "CPosternTLS", log,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOTLS", package: "swift-nio"),
            ] + nio
        ),
        // Operations: the access and error logs, the counters and their snapshots, the slow log,
        // the status application (JSON and Prometheus) and the listen-queue monitor.
        .target(
            name: "PosternOps",
            dependencies: [
                "PosternRuntime", "PosternCore", "PosternEngine", "CPosternSocket", log,
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ] + nio
        ),
        // Process supervision any manager uses: spawning a child with inherited listeners, its
        // exit and output, restart backoff, signals, privileges, systemd notify and socket
        // activation. Policies (the prefork master, an emperor) sit above it.
        .target(
            name: "PosternSupervision",
            dependencies: [
                "PosternRuntime", "PosternCore", "CPosternSocket", log,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ] + nio
        ),
        // Gateway.main and Gateway.run: the process (single, master, worker) and the prefork
        // policy, operations wired in, the options and their configuration; the switch over protocols.
        .target(
            name: "Postern",
            dependencies: [
                "PosternRuntime", "PosternSupervision", "PosternOps", "PosternCore", "PosternEngine", "PosternHTTP", "PosternFastCGI", "PosternSCGI",
                "PosternUWSGI", "PosternCGI",
                "PosternCGIHost", "CPosternSocket",
                "CPosternExecutorHook", log,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ] + nio
        ),
        // `postern emperor`: many apps from a directory of files, a second policy (EmperorPolicy,
        // pure) on the supervisor; above Postern, so an app binary links none of it.
        .target(
            name: "PosternEmperor",
            dependencies: [
                "Postern", "PosternSupervision", "PosternRuntime", "PosternOps", "PosternCore", "PosternEngine", "CPosternSocket", log,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The command line's client side: `postern request` (a URL to the protocol's client) and
        // `postern top` (the status page as a screen). Above the server: the library links none of it.
        .target(
            name: "PosternCLI",
            dependencies: [
                "Postern", "PosternRuntime", "PosternCore", "PosternClient", "PosternHTTP", "PosternFastCGI", "PosternSCGI", "PosternUWSGI",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ] + nio
        ),
        // The demo applications, shared by `postern serve --app NAME` and the example executables.
        .target(name: "PosternApps", dependencies: ["PosternCore"], path: "examples/Apps"),
        // Real front-ends (Apache, lighttpd, nginx) and backends started on loopback: used by
        // `postern bench` and by the live tests.
        .target(name: "PosternFrontEnds", dependencies: ["PosternCore"]),
        // `postern bench`: CGI against the persistent gateways, through real front-ends, with wrk.
        .target(name: "PosternBench", dependencies: ["PosternFrontEnds", "Postern"]),
        // The concurrency runtime's global-enqueue hook, reached by the linker (static stdlib too).
        .target(name: "CPosternExecutorHook"),
        // epoll, eventfd, accept4 and pidfd_open for the accept threads and the CGI host's exit watcher (not in Glibc's module map).
        .target(name: "CPosternSocket"),
        // Session-ticket keys shared by a server's processes, on swift-nio-ssl's BoringSSL (no API for them there).
        .target(name: "CPosternTLS", dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")]),
        .executableTarget(
            name: "postern",
            dependencies: ["Postern", "PosternEmperor", "PosternCLI", "PosternClient", "PosternApps", "PosternCGI", "PosternCGIHost", "PosternBench"] + nio),
        .executableTarget(name: "hello", dependencies: ["Postern", "PosternApps"], path: "examples/hello"),
        // The hello app as a CGI-only binary: PosternCore, PosternCGI and the app, nothing else.
        .executableTarget(name: "hello-cgi", dependencies: ["PosternCGI", "PosternApps"], path: "examples/hello-cgi"),
        .executableTarget(name: "environ", dependencies: ["Postern", "PosternApps"], path: "examples/environ"),
        .executableTarget(name: "echo", dependencies: ["Postern", "PosternApps"], path: "examples/echo"),

        // Fuzzing (scripts/fuzz.sh): the targets as plain functions, and one libFuzzer entry per
        // target; built normally, each entry replays corpus files instead.
        .target(
            name: "PosternFuzz",
            dependencies: [
                "PosternCore", "PosternEngine", "PosternClient", "PosternHTTP", "PosternFastCGI", "PosternSCGI", "PosternUWSGI", "PosternRuntime", log,
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ] + nio,
            path: "Fuzz/PosternFuzz"
        ),
        .executableTarget(name: "fuzz-fastcgi", dependencies: ["PosternFuzz"], path: "Fuzz/fuzz-fastcgi"),
        .executableTarget(name: "fuzz-scgi", dependencies: ["PosternFuzz"], path: "Fuzz/fuzz-scgi"),
        .executableTarget(name: "fuzz-uwsgi", dependencies: ["PosternFuzz"], path: "Fuzz/fuzz-uwsgi"),
        .executableTarget(name: "fuzz-http", dependencies: ["PosternFuzz"], path: "Fuzz/fuzz-http"),
        .executableTarget(name: "fuzz-cgi-head", dependencies: ["PosternFuzz"], path: "Fuzz/fuzz-cgi-head"),
        .executableTarget(name: "fuzz-fastcgi-mux", dependencies: ["PosternFuzz"], path: "Fuzz/fuzz-fastcgi-mux"),
        .executableTarget(name: "fuzz-timeouts", dependencies: ["PosternFuzz"], path: "Fuzz/fuzz-timeouts"),
        .executableTarget(name: "fuzz-tls", dependencies: ["PosternFuzz"], path: "Fuzz/fuzz-tls"),
        // The soak driver (scripts/soak.sh): requests over every protocol, RSS drift, errors.
        .executableTarget(
            name: "postern-soak",
            dependencies: ["PosternCore", "PosternEngine", "PosternClient", "PosternFastCGI", "PosternSCGI", "PosternUWSGI"] + nio,
            path: "Soak/postern-soak"
        ),

        // Live-test helpers: a gateway on port 0, raw and HTTP clients, a recording logger, the
        // cross-protocol environ comparison, front-end and backend launchers.
        .target(
            name: "PosternTestSupport",
            dependencies: [
                "Postern", "PosternCLI", "PosternCore", "PosternEngine", "PosternClient", "PosternApps", "PosternFrontEnds", "PosternFastCGI", "PosternSCGI",
                "PosternUWSGI", "PosternRuntime", log,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ] + nio,
            path: "Tests/PosternTestSupport"
        ),
        .testTarget(name: "PosternCoreTests", dependencies: ["PosternCore", "PosternEngine", "PosternApps"]),
        .testTarget(
            name: "PosternHTTPTests",
            dependencies: ["PosternHTTP", "Postern", "PosternCLI", "PosternEngine", "PosternClient", "PosternApps", "PosternTestSupport"] + nio
        ),
        // The deployment kit, proven: real Apache, lighttpd and nginx started on loopback.
        .testTarget(name: "FrontEndTests", dependencies: ["PosternTestSupport"]),
        .testTarget(name: "PosternBenchTests", dependencies: ["PosternBench", "PosternFrontEnds"]),
        .testTarget(
            name: "PosternCGITests",
            dependencies: [
                "PosternCGI", "PosternCGIHost", "PosternHTTP", "PosternFastCGI", "Postern", "PosternEngine", "PosternClient", "PosternApps", "PosternCore",
                "PosternRuntime",
                "PosternTestSupport", log,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ] + nio
        ),
        .testTarget(
            name: "PosternSCGITests",
            dependencies: ["PosternSCGI", "Postern", "PosternCLI", "PosternEngine", "PosternClient", "PosternApps", "PosternTestSupport", log] + nio
        ),
        .testTarget(
            name: "PosternUWSGITests",
            dependencies: ["PosternUWSGI", "PosternSCGI", "Postern", "PosternCLI", "PosternEngine", "PosternClient", "PosternApps", "PosternTestSupport", log]
                + nio
        ),
        // Process management and operations, live: workers, signals, recycling, timeouts, limits,
        // access log, status and metrics, against real `postern` processes.
        .testTarget(
            name: "PosternOpsTests",
            dependencies: [
                "Postern", "PosternCore", "PosternEngine", "PosternClient", "PosternApps", "PosternTestSupport", "PosternFastCGI", "PosternSCGI",
                "PosternUWSGI", "PosternOps", "PosternSupervision", "PosternRuntime", "PosternCLI", "PosternEmperor", log,
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ] + nio
        ),
        .testTarget(
            name: "PosternFastCGITests",
            dependencies: ["PosternFastCGI", "Postern", "PosternCLI", "PosternEngine", "PosternClient", "PosternApps"] + nio,
            // The C fixture is compiled by the interop test itself (cc ... -lfcgi).
            exclude: ["Fixtures"]
        ),
        // The connection engine: the fast path's codecs and executor, and live runs of each path.
        .testTarget(
            name: "PosternEngineTests",
            dependencies: [
                "Postern", "PosternRuntime", "PosternCore", "PosternFastCGI", "PosternSCGI", "PosternUWSGI", "PosternEngine", "PosternClient", "PosternApps",
                "PosternTestSupport", log,
            ] + nio
        ),
        // Issue 9: round trips, fuzz corpus replay, hostile clients, response and socket safety.
        .testTarget(
            name: "PosternHardeningTests",
            dependencies: [
                "PosternFuzz", "PosternTestSupport", "Postern", "PosternCore", "PosternEngine", "PosternClient", "PosternFastCGI", "PosternSCGI",
                "PosternUWSGI", "PosternApps", "PosternRuntime", log,
            ] + nio,
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
