import ArgumentParser
import Foundation
import PosternCGI
import PosternCore

/// The one entry point of every Postern binary: CGI program mode is decided before argv parsing.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Gateway {
    /// Starts a Postern binary: if a front-end started it as a CGI program (RFC 3875; see
    /// ``CGILaunchDecision``), serves that one request with `cgiApplication` and exits, without
    /// parsing argv (an ISINDEX query's words are argv, §4.4), starting an event loop or touching
    /// Foundation; otherwise runs `command` as usual.
    ///
    /// The serving command (`command` itself, or its default subcommand) also takes its options
    /// from a file and from `POSTERN_*` variables (``ServeConfiguration``): ``ServeOptions``'s
    /// and `configurationKeys`, the command's own.
    @MainActor
    public static func main<Command: AsyncParsableCommand>(
        _ command: Command.Type,
        configurationKeys: [ServeConfiguration.Key] = [],
        cgiApplication: @Sendable () -> any Application
    ) async {
        if let status = await runCGIProgramIfRequested(cgiApplication) {
            exit(status)
        }
        // Not a CGI request: the event loops become the global executor before any task runs.
        ConcurrencyExecutor.install()
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let position = servingOptionsPosition(command, arguments) {
            do {
                let added = try await ServeConfiguration.resolve(
                    arguments: arguments, keys: ServeConfiguration.serveKeys + configurationKeys, environment: ProcessEnvironment.current)
                arguments.insert(contentsOf: added, at: position)
            } catch {
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                exit(64)  // EX_USAGE, as the argument parser's own errors
            }
        }
        await command.main(arguments)
    }

    /// Starts an app binary with no command of its own: `await Gateway.main(MyApp())` in an
    /// `@main` type is the whole `main`. The binary takes every ``ServeOptions`` flag and
    /// `--version` (``AppCommand``), finds its socket on fd 0 under a process manager, and
    /// serves one request as a CGI program when a front-end runs it as one.
    ///
    /// - Parameters:
    ///   - application: Makes the app; called once per process (once per CGI request).
    ///   - name: The command's name in `--help`; by default the executable's file name.
    ///   - version: The app's own version, printed by `--version` with Postern's.
    @MainActor
    public static func main(
        _ application: @autoclosure @escaping @Sendable () -> any Application,
        name: String? = nil,
        version: String? = nil
    ) async {
        AppCommand.application = application
        AppCommand.name = name ?? CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "app") } ?? "app"
        AppCommand.version = version
        await main(AppCommand.self, cgiApplication: application)
    }

    /// Where options for the serving command go in `arguments`: at the front for a command with
    /// no subcommands or when its default subcommand is implied, after the default subcommand's
    /// name when it is given; `nil` for another subcommand (`postern request`, `postern bench`).
    static func servingOptionsPosition<Command: ParsableCommand>(_ command: Command.Type, _ arguments: [String]) -> Int? {
        let subcommands = command.configuration.subcommands
        guard !subcommands.isEmpty else { return 0 }
        guard let serving = command.configuration.defaultSubcommand else { return nil }
        guard let first = arguments.first, let named = subcommands.first(where: { $0._commandName == first }) else { return 0 }
        return ObjectIdentifier(named) == ObjectIdentifier(serving) ? 1 : nil
    }

    /// Serves the CGI request and returns the exit status, or `nil` when this is no CGI launch.
    @MainActor
    public static func runCGIProgramIfRequested(_ application: @Sendable () -> any Application) async -> Int32? {
        guard getenv("GATEWAY_INTERFACE") != nil else { return nil }
        let decided = CGILaunchDecision.isCGIRequest(
            arguments: CommandLine.arguments,
            gatewayInterface: getenv("GATEWAY_INTERFACE").map { String(cString: $0) },
            queryString: getenv("QUERY_STRING").map { String(cString: $0) },
            fd0IsListening: isListeningSocket(0)
        )
        guard decided else { return nil }
        return await CGIProgram.run(application(), environment: ProcessEnvironment.current)
    }
}
