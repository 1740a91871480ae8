/// The `postern serve` options of the CGI script host (`--cgi-root` and its limits).
import ArgumentParser
import PosternCGI
import PosternCGIHost

/// Options that turn `postern serve` into a host for legacy CGI scripts (as fcgiwrap).
public struct CGIHostOptions: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp("Run the CGI scripts under DIR for every request (instead of --app).", valueName: "DIR"))
    public var cgiRoot: String?

    @Option(help: ArgumentHelp("Stop a script running longer (SIGTERM, then SIGKILL); 504 if no head was sent.", valueName: "SECONDS"))
    public var cgiTimeout: Double = 60

    @Option(help: ArgumentHelp("Most scripts running at once; excess requests wait up to 10 s, then 503.", valueName: "N"))
    public var cgiMaxConcurrency: Int = 16

    @Option(
        help: ArgumentHelp(
            "Most bytes a script may write (head and body; 0: no limit). Past it the script is stopped: 502 if its response has not started, else the response is cut off.",
            valueName: "BYTES"))
    public var cgiMaxOutput: Int = 0

    @Option(help: ArgumentHelp("Pass this variable of the gateway's environment to scripts (repeatable). Nothing else is passed.", valueName: "NAME"))
    public var passEnv: [String] = []

    public init() {}

    /// The options above, declared once (see ``ServeOptions/declarations``).
    public static let declarations: [OptionDeclaration<CGIHostOptions>] = [
        .optional("cgi-root") { $0.cgiRoot },
        .double("cgi-timeout") { $0.cgiTimeout },
        .int("cgi-max-concurrency") { $0.cgiMaxConcurrency },
        .int("cgi-max-output") { $0.cgiMaxOutput },
        .list("pass-env") { $0.passEnv },
    ]

    public func validate() throws {
        guard cgiTimeout > 0, cgiTimeout.isFinite else { throw ValidationError("--cgi-timeout must be a positive number of seconds") }
        guard cgiMaxConcurrency >= 1 else { throw ValidationError("--cgi-max-concurrency must be at least 1") }
        guard cgiMaxOutput >= 0 else { throw ValidationError("--cgi-max-output must be 0 (no limit) or a number of bytes") }
        if passEnv.contains("HTTP_PROXY") { throw ValidationError("--pass-env HTTP_PROXY is refused (httpoxy, CVE-2016-5385)") }
    }

    /// The host configuration, or nil without --cgi-root.
    public var configuration: CGIScriptHostConfiguration? {
        guard let cgiRoot else { return nil }
        var configuration = CGIScriptHostConfiguration(root: cgiRoot)
        configuration.timeoutSeconds = cgiTimeout
        configuration.maxConcurrency = cgiMaxConcurrency
        configuration.maxOutputBytes = cgiMaxOutput
        configuration.passEnvironment = passEnv
        return configuration
    }
}
