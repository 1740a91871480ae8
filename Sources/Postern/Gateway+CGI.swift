/// The one entry point of every Postern binary: CGI program mode is decided before argv parsing.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import PosternCGI
import PosternCore

extension Gateway {
    /// Starts a Postern binary: if a front-end started it as a CGI program (RFC 3875; see
    /// ``CGILaunchDecision``), serves that one request with `cgiApplication` and exits, without
    /// parsing argv (an ISINDEX query's words are argv, §4.4), starting an event loop or touching
    /// Foundation; otherwise runs `command` as usual.
    @MainActor
    public static func main<Command: AsyncParsableCommand>(
        _ command: Command.Type,
        cgiApplication: @Sendable () -> any Application
    ) async {
        if let status = await runCGIProgramIfRequested(cgiApplication) {
            exit(status)
        }
        // Not a CGI request: the event loops become the global executor before any task runs.
        ConcurrencyExecutor.install()
        await command.main()
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
