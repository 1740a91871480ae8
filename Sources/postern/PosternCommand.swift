import ArgumentParser
import Postern
import PosternApps
import PosternCore

/// `postern`: the gateway's command line.
@main
struct PosternCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postern",
        abstract: "A Swift gateway server for legacy front-ends: FastCGI, SCGI, uwsgi, HTTP/1.1 and CGI.",
        subcommands: [Serve.self, RequestCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// `postern serve`: serve a demo app on the given listeners.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve an application on HTTP, FastCGI, SCGI or uwsgi listeners.",
        discussion: """
            With no listener flag: FastCGI on fd 0 if it is a listening socket (mod_fcgid, lighttpd \
            bin-path), else HTTP on 127.0.0.1:8080.
            """
    )

    @Option(help: ArgumentHelp("The demo application: \(DemoApps.all.keys.sorted().joined(separator: ", ")).", valueName: "NAME"))
    var app: String = "environ"

    @OptionGroup var options: ServeOptions

    func validate() throws {
        guard DemoApps.all[app] != nil else {
            throw ValidationError("unknown --app \(app); choose one of \(DemoApps.all.keys.sorted().joined(separator: ", "))")
        }
    }

    func run() async throws {
        try await Gateway.run(DemoApps.all[app]!, options: options)
    }
}
