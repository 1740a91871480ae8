import ArgumentParser
import PosternCore

/// The command line of an app binary started with ``Gateway/main(_:name:version:)``: every
/// ``ServeOptions`` flag (listeners, limits, workers, logs, …) and `--version`, with no code of
/// the app's own.
///
/// ArgumentParser builds a command from its type, so the app and its name are kept here, set
/// once by `Gateway.main` before the arguments are parsed and only read afterwards.
public struct AppCommand: AsyncParsableCommand {
    nonisolated(unsafe) static var application: (@Sendable () -> any Application)?
    nonisolated(unsafe) static var name = "app"
    nonisolated(unsafe) static var version: String?

    /// Set once by `Gateway.main`, before the arguments are parsed.
    static func configure(application: @escaping @Sendable () -> any Application, name: String?, version: String?) {
        Self.application = application
        Self.name = name ?? CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "app") } ?? "app"
        Self.version = version
    }

    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: name,
            abstract: "Serve \(name) on HTTP, FastCGI, SCGI or uwsgi listeners, or as a CGI program.",
            discussion: """
                With no listener flag: FastCGI on fd 0 if it is a listening socket (mod_fcgid, lighttpd \
                bin-path, spawn-fcgi), else HTTP on 127.0.0.1:8080. With GATEWAY_INTERFACE set and fd 0 \
                not listening: one CGI request, then exit. Every option may also come from a POSTERN_* \
                variable or a --config file.
                """,
            version: (version.map { "\(name) \($0)" } ?? name) + " (\(PosternVersion.serverSoftware))"
        )
    }

    @OptionGroup public var options: ServeOptions

    public init() {}

    public func run() async throws {
        guard let application = Self.application else { throw ValidationError("start this command with Gateway.main(_:)") }
        try await Gateway.run(application(), options: options)
    }
}
