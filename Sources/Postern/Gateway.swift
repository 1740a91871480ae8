
import Logging
import NIOCore
import NIOPosix
import PosternCGI
import PosternCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ServiceLifecycle

/// The entry point every Postern binary shares: parse the options, pick the launch mode, serve.
public enum Gateway {
    /// Runs `application` as the process's gateway, as `options` and the launch mode say.
    public static func run(_ application: any Application, options: ServeOptions) async throws {
        let environment = ProcessEnvironment.current
        let level = LogLevelParsing.parse(options.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "postern")
        logger.logLevel = level

        var app: any Application = options.validateContract ? Validator(application) : application
        if let mount = options.mount {
            // Outside the validator: the validator checks the environ the app will see.
            app = try MountPrefix(mount, wrapping: app)
        }
        var configuration = GatewayConfiguration(application: app, limits: options.limits, debug: options.debug, logger: logger)

        let specs: [ListenerSpec]
        switch LaunchMode.detect(listeners: try options.listenerSpecs(environment: environment), environment: environment) {
        case .listeners(let given):
            specs = given
        case .fastCGIOnStandardInput:
            specs = [ListenerSpec(.fastcgi, .fd(0), allow: try options.listenerSpecs(environment: environment).first?.allow ?? AllowList(parsing: environment["FCGI_WEB_SERVER_ADDRS"] ?? ""))]
        case .cgi:
            // Binaries that start through ``Gateway/main(_:cgiApplication:)`` never get here;
            // a caller of `run` started by a front-end still serves its one request.
            exit(await CGIProgram.run(application, environment: environment, limits: options.limits))
        case .developmentHTTP:
            specs = [ListenerSpec(.http, LaunchMode.defaultHTTPAddress)]
        }
        configuration.flags = GatewayFlags(multithread: true, multiprocess: false, runOnce: false)
        try await serve(listeners: specs, configuration: configuration)
    }

    /// Serves until SIGINT or SIGTERM, which stop it gracefully.
    public static func serve(listeners: [ListenerSpec], configuration: GatewayConfiguration) async throws {
        let server = GatewayServer(listeners: listeners, configuration: configuration)
        let group = ServiceGroup(
            services: [server],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: configuration.logger
        )
        try await group.run()
    }
}

enum LogLevelParsing {
    static func parse(_ text: String) -> Logger.Level? {
        Logger.Level(rawValue: text.lowercased())
    }
}
