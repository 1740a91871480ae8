import ArgumentParser
import CPosternSocket
import Dispatch
import PosternCGI
import PosternCore
import PosternSupervision

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one entry point of every Postern binary: CGI program mode is decided before argv parsing.
extension Gateway {
    /// Starts a Postern binary from a synchronous `main`, the shape that starts fastest as a
    /// CGI program: `static func main() { Gateway.main(MyApp()) }`.
    ///
    /// If a front-end started the binary as a CGI program (RFC 3875; see
    /// ``CGILaunchDecision``), serves that one request on the main thread with `cgiApplication`
    /// and exits, without parsing argv (an ISINDEX query's words are argv, §4.4), creating a
    /// thread, starting an event loop or the concurrency runtime's main queue. Otherwise runs
    /// `command` (with options from a file and `POSTERN_*` variables: ``ServeConfiguration``)
    /// in a task on the main actor and never returns.
    ///
    /// An `async` `main` has already started Dispatch's main queue and moved the program to a
    /// second thread before its first line runs (`dispatch_main` ends the main thread), which
    /// a CGI request pays for on every start.
    public static func main<Command: AsyncParsableCommand>(
        _ command: Command.Type,
        configurationKeys: [ServeConfiguration.Key] = [],
        cgiApplication: @Sendable () -> any Application
    ) -> Never {
        if let status = runCGIProgramOnThisThreadIfRequested(cgiApplication) {
            exit(status)
        }
        // Not a CGI request: the event loops become the global executor before any task runs.
        _ = ConcurrencyExecutor.install()
        Task { @MainActor in
            await runCommand(command, configurationKeys: configurationKeys)
            exit(0)
        }
        dispatchMain()
    }

    /// The same from an `async` `main` (`await Gateway.main(MyCommand.self) { MyApp() }`):
    /// works alike, but a CGI request pays for the async entry point (see the synchronous
    /// `main`).
    @MainActor
    public static func main<Command: AsyncParsableCommand>(
        _ command: Command.Type,
        configurationKeys: [ServeConfiguration.Key] = [],
        cgiApplication: @Sendable () -> any Application
    ) async {
        if let status = await runCGIProgramIfRequested(cgiApplication) {
            exit(status)
        }
        _ = ConcurrencyExecutor.install()
        await runCommand(command, configurationKeys: configurationKeys)
    }

    /// Starts an app binary with no command of its own: `Gateway.main(MyApp())` in an `@main`
    /// type's synchronous `main` is the whole program. The binary takes every ``ServeOptions``
    /// flag and `--version` (``AppCommand``), finds its socket on fd 0 under a process manager,
    /// and serves one request as a CGI program when a front-end runs it as one.
    ///
    /// - Parameters:
    ///   - application: Makes the app; called once per process (once per CGI request).
    ///   - name: The command's name in `--help`; by default the executable's file name.
    ///   - version: The app's own version, printed by `--version` with Postern's.
    public static func main(
        _ application: @autoclosure @escaping @Sendable () -> any Application,
        name: String? = nil,
        version: String? = nil
    ) -> Never {
        if let status = runCGIProgramOnThisThreadIfRequested(application) {
            exit(status)
        }
        AppCommand.configure(application: application, name: name, version: version)
        main(AppCommand.self, cgiApplication: application)
    }

    /// The same from an `async` `main` (`await Gateway.main(MyApp())`).
    @MainActor
    public static func main(
        _ application: @autoclosure @escaping @Sendable () -> any Application,
        name: String? = nil,
        version: String? = nil
    ) async {
        AppCommand.configure(application: application, name: name, version: version)
        await main(AppCommand.self, cgiApplication: application)
    }

    /// Runs `command` with the options that the file and the environment add; an error in
    /// either ends the process with status 64 (EX_USAGE, as the argument parser's own errors).
    /// Another subcommand that declares its own keys (``ConfigurableCommand``, as `postern
    /// emperor`) gets its options from them the same way.
    @MainActor
    private static func runCommand<Command: AsyncParsableCommand>(_ command: Command.Type, configurationKeys: [ServeConfiguration.Key]) async {
        // Every command may look up users, groups and host names; a CGI request, which never
        // gets here, looks up none (the call reads /etc/nsswitch.conf in a static executable).
        postern_nss_static_services()
        var arguments = Array(CommandLine.arguments.dropFirst())
        var target: (position: Int, keys: [ServeConfiguration.Key])?
        if let position = servingOptionsPosition(command, arguments) {
            target = (position, ServeOptions.configurationKeys + configurationKeys)
        } else if let first = arguments.first,
            let named = command.configuration.subcommands.first(where: { $0._commandName == first }) as? any ConfigurableCommand.Type
        {
            target = (1, named.configurationKeys)
        }
        if let (position, keys) = target {
            do {
                let sources = ServeConfiguration.Sources(arguments: arguments, keys: keys, environment: ProcessEnvironment.current)
                arguments.insert(contentsOf: try sources.resolve().added, at: position)
            } catch {
                StandardError.write("Error: \(error)\n")
                exit(64)
            }
        }
        await command.main(arguments)
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
        guard isCGILaunch() else { return nil }
        return await CGIProgram.run(application(), environment: ProcessEnvironment.current)
    }

    /// The same on the calling thread, with the request's variables read from `environ`.
    static func runCGIProgramOnThisThreadIfRequested(_ application: @Sendable () -> any Application) -> Int32? {
        guard isCGILaunch() else { return nil }
        return CGIProgram.runOnThisThread(application())
    }

    /// Whether a front-end started this process as a CGI program (``CGILaunchDecision``).
    private static func isCGILaunch() -> Bool {
        guard let gatewayInterface = getenv("GATEWAY_INTERFACE") else { return false }
        return CGILaunchDecision.isCGIRequest(
            arguments: CommandLine.arguments,
            gatewayInterface: String(cString: gatewayInterface),
            queryString: getenv("QUERY_STRING").map { String(cString: $0) },
            fd0IsListening: isListeningSocket(0)
        )
    }
}

/// A subcommand beside the serving one whose options a file (`--config FILE`, `POSTERN_CONFIG`)
/// and `POSTERN_*` variables may set as well, through its own keys (``ServeConfiguration``):
/// the command line over the environment over the file. It declares a `--config` option.
public protocol ConfigurableCommand: ParsableCommand {
    static var configurationKeys: [ServeConfiguration.Key] { get }
}
