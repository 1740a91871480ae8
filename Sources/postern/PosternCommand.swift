import ArgumentParser
import Postern
import PosternApps
import PosternCGI
import PosternCGIHost
import PosternCore

/// Starts `postern`: a CGI request (GATEWAY_INTERFACE set, fd 0 not listening) is served by the
/// demo app named by `POSTERN_APP` (default `environ`) before any argv parsing.
@main
enum PosternMain {
    static func main() {
        Gateway.main(PosternCommand.self, configurationKeys: Serve.configurationKeys) {
            DemoApps.all[ProcessEnvironment.current["POSTERN_APP"] ?? "environ"] ?? EnvironDump()
        }
    }
}

/// `postern`: the gateway's command line.
struct PosternCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postern",
        abstract: "A Swift gateway server for legacy front-ends: FastCGI, SCGI, uwsgi, HTTP/1.1 and CGI.",
        version: PosternVersion.current,
        subcommands: [Serve.self, EmperorCommand.self, RequestCommand.self, BenchCommand.self, TopCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// `postern serve`: serve a demo app on the given listeners.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve an application on HTTP, FastCGI, SCGI or uwsgi listeners.",
        discussion: """
            With no listener flag: FastCGI on fd 0 if it is a listening socket (mod_fcgid, lighttpd \
            bin-path; the app is POSTERN_APP), else HTTP on 127.0.0.1:8080. With GATEWAY_INTERFACE set and fd 0 not listening, \
            postern serves one CGI request (app from POSTERN_APP, default environ) and exits.
            """
    )

    @Option(
        help: ArgumentHelp(
            "The demo application: \(DemoApps.all.keys.sorted().joined(separator: ", ")). Default: POSTERN_APP, else environ (a process manager that spawns postern passes no arguments, only environment).",
            valueName: "NAME"))
    var app: String = ProcessEnvironment.current["POSTERN_APP"] ?? "environ"

    @OptionGroup var options: ServeOptions

    /// `postern serve`'s own options, declared once (see ``ServeOptions/declarations``).
    static let declarations: [OptionDeclaration<Serve>] =
        [.string("app") { $0.app }] + CGIHostOptions.declarations.map { $0.within { $0.cgi } }

    /// What a file or `POSTERN_*` variables may set beside ``ServeOptions``.
    static var configurationKeys: [ServeConfiguration.Key] { declarations.map(\.key) }

    /// Their values as parsed, for `--print-config`.
    var commandValues: [String: String] { Dictionary(uniqueKeysWithValues: Self.declarations.map { ($0.name, $0.show(self)) }) }

    @OptionGroup(title: "CGI script host") var cgi: CGIHostOptions

    func validate() throws {
        guard DemoApps.all[app] != nil else {
            throw ValidationError("unknown --app \(app); choose one of \(DemoApps.all.keys.sorted().joined(separator: ", "))")
        }
    }

    func run() async throws {
        if var configuration = cgi.configuration {
            configuration.mountPrefix = options.mount
            let host: CGIScriptHost
            do {
                host = try CGIScriptHost(configuration: configuration, gatewayEnvironment: ProcessEnvironment.current)
            } catch {
                throw ValidationError("--cgi-root: \(error)")
            }
            try await Gateway.run(host, options: options, configurationKeys: Self.configurationKeys, commandValues: commandValues)
        } else {
            try await Gateway.run(DemoApps.all[app]!, options: options, configurationKeys: Self.configurationKeys, commandValues: commandValues)
        }
    }
}
