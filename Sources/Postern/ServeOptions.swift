import ArgumentParser
import PosternCore
import PosternEngine
import PosternOps

/// The listener and gateway options shared by `postern serve` and every example app binary.
public struct ServeOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("http"), help: ArgumentHelp("Serve HTTP/1.1 on ADDR (HOST:PORT, unix:PATH or fd:N).", valueName: "ADDR"))
    public var http: [String] = []

    @Option(name: .customLong("fastcgi"), help: ArgumentHelp("Serve FastCGI on ADDR.", valueName: "ADDR"))
    public var fastcgi: [String] = []

    @Option(name: .customLong("scgi"), help: ArgumentHelp("Serve SCGI on ADDR.", valueName: "ADDR"))
    public var scgi: [String] = []

    @Option(name: .customLong("uwsgi"), help: ArgumentHelp("Serve uwsgi on ADDR.", valueName: "ADDR"))
    public var uwsgi: [String] = []

    @Option(name: .customLong("https"), help: ArgumentHelp("Serve HTTP/1.1 over TLS on ADDR (needs --tls-certificate and --tls-key).", valueName: "ADDR"))
    public var https: [String] = []

    @Option(
        name: .customLong("suwsgi"),
        help: ArgumentHelp("Serve uwsgi over TLS on ADDR (nginx: uwsgi_pass suwsgi://ADDR; needs --tls-certificate and --tls-key).", valueName: "ADDR"))
    public var suwsgi: [String] = []

    @Option(
        name: .customLong("fastcgi-tls"),
        help: ArgumentHelp("Serve FastCGI over TLS on ADDR (HAProxy: proto fcgi ssl; needs --tls-certificate and --tls-key).", valueName: "ADDR"))
    public var fastcgiTLS: [String] = []

    @Option(
        help: ArgumentHelp(
            "The TLS listeners' certificate: a PEM file, the server's certificate first, then the intermediates. Read at start and by each reload.",
            valueName: "FILE"))
    public var tlsCertificate: String?

    @Option(help: ArgumentHelp("The private key of --tls-certificate: an unencrypted PEM file.", valueName: "FILE"))
    public var tlsKey: String?

    @Option(
        help: ArgumentHelp(
            "Require a client certificate on every TLS listener, signed by a CA in this PEM file (and trust nothing else: never the system's roots).",
            valueName: "FILE"))
    public var tlsClientCa: String?

    @Option(help: ArgumentHelp("The oldest TLS version the TLS listeners accept: 1.2 or 1.3.", valueName: "VERSION"))
    public var tlsMinVersion: String = TLSSettings.MinimumVersion.v1_2.rawValue

    @Flag(name: .customLong("validate"), help: "Check every request and response against the gateway contract (500 on a violation).")
    public var validateContract = false

    @Option(
        help: ArgumentHelp(
            "The URL prefix the front-end maps to this app: SCRIPT_NAME becomes PREFIX and PATH_INFO the rest, whatever split the front-end sent (Apache mod_proxy_* send the whole path in one of them).",
            valueName: "PREFIX"))
    public var mount: String?

    @Option(help: ArgumentHelp("Mode of the unix socket files created, in octal.", valueName: "MODE"))
    public var socketMode: String = "660"

    @Option(help: ArgumentHelp("Allow only these peers (IP or ADDR/PREFIX; repeatable). FCGI_WEB_SERVER_ADDRS adds to it.", valueName: "ADDR"))
    public var allow: [String] = []

    @Option(help: ArgumentHelp("Largest request body in bytes (HTTP answers 413).", valueName: "BYTES"))
    public var maxBodyBytes: Int = GatewayLimits().maxBodyBytes

    @Option(help: ArgumentHelp("Largest request head (headers, params) in bytes.", valueName: "BYTES"))
    public var maxHeaderBytes: Int = GatewayLimits().maxHeaderBytes

    @Option(help: ArgumentHelp("Largest uwsgi vars block in bytes (the 16-bit wire field allows at most 65535).", valueName: "BYTES"))
    public var uwsgiMaxVars: Int = GatewayLimits().maxUWSGIVarsBytes

    @Option(help: ArgumentHelp("Most open connections.", valueName: "N"))
    public var maxConnections: Int = GatewayLimits().maxConnections

    @Option(help: ArgumentHelp("Most FastCGI requests multiplexed on one connection (FCGI_MAX_REQS); more get FCGI_OVERLOADED.", valueName: "N"))
    public var maxMultiplexedRequests: Int = GatewayLimits().maxRequestsPerConnection

    @Option(help: ArgumentHelp("Close a connection idle this long between requests.", valueName: "SECONDS"))
    public var idleTimeout: Double = GatewayLimits().idleTimeoutSeconds

    @Option(
        help: ArgumentHelp(
            "A request head (HTTP headers, FastCGI params, SCGI/uwsgi head) must arrive within this long of the connection opening.", valueName: "SECONDS"))
    public var headerTimeout: Double = GatewayLimits().headerTimeoutSeconds

    @Option(help: ArgumentHelp("Answer 504 and cancel the application when a request runs longer than this (0: no limit).", valueName: "SECONDS"))
    public var timeout: Double = 0

    @Option(
        help: ArgumentHelp(
            "Most requests running the application at once, per worker (0: no bound); excess requests wait for a slot, within --timeout.", valueName: "N"))
    public var maxConcurrency: Int = 0

    @Option(help: ArgumentHelp("Worker processes sharing the listeners (1: serve in this process, no master).", valueName: "N"))
    public var workers: Int = 1

    @Option(help: ArgumentHelp("On SIGTERM/SIGINT (or a reload, or recycling), in-flight requests get this long to finish.", valueName: "SECONDS"))
    public var gracefulTimeout: Double = 30

    @Option(
        help: ArgumentHelp(
            "Answer GET and HEAD of PATH in every protocol with 200 \"pong\", without calling the app (php-fpm's ping.path): the target of a balancer's health check; 503 \"draining\" during --drain-delay.",
            valueName: "PATH"))
    public var pingPath: String?

    @Option(
        help: ArgumentHelp(
            "On SIGTERM/SIGINT/SIGQUIT, first answer --ping-path with 503 for this long while every request is still served, so that a balancer's health check takes this member out; then stop gracefully. A second signal skips the rest of the delay.",
            valueName: "SECONDS"))
    public var drainDelay: Double = 0

    @Option(
        help: ArgumentHelp(
            "Stop gracefully after this long without a request (none in flight): for a manager that starts the server again at the next connection (postern emperor's on-demand apps, systemd socket activation). 0: never.",
            valueName: "SECONDS"))
    public var idleExit: Double = 0

    @Option(
        help: ArgumentHelp(
            "A new worker must be ready (its listeners up, its app made) within this long, or it is killed: at start, three such failures in a row stop the master; in a reload, the old workers serve on and the reload is reported failed.",
            valueName: "SECONDS"))
    public var workerBootTimeout: Double = 30

    @Option(help: ArgumentHelp("Elastic workers: the fewest the master keeps (0: --workers).", valueName: "N"))
    public var workersMin: Int = 0

    @Option(
        help: ArgumentHelp(
            "Elastic workers: the most the master starts when every worker is busy or connections wait for a second (0: --workers).",
            valueName: "N"))
    public var workersMax: Int = 0

    @Option(help: ArgumentHelp("Elastic workers: one retires when a worker has been idle this long, down to --workers-min.", valueName: "SECONDS"))
    public var workerIdleExit: Double = 10

    @Option(help: ArgumentHelp("A worker leaves after serving this many requests (drains, exits, is replaced); 0: never.", valueName: "N"))
    public var maxRequests: Int = 0

    @Option(help: ArgumentHelp("Adds a random 0...J to each worker's --max-requests so that workers do not all leave at once.", valueName: "J"))
    public var maxRequestsJitter: Int = 0

    @Option(
        help: ArgumentHelp(
            "Log a request still running this long (its request line, the pid, the time so far), and its total time when it ends; 0: never.",
            valueName: "SECONDS"))
    public var slowLog: Double = 0

    @Option(
        help: ArgumentHelp(
            "The length of each listening socket's accept queue (listen(2)'s backlog; the kernel caps it at net.core.somaxconn). The status page shows it as listen_queue_len.",
            valueName: "N"))
    public var backlog: Int = Int(ListeningSocket.defaultBacklog)

    @Option(
        help: ArgumentHelp(
            "The master kills (SIGKILL) and replaces a worker whose oldest request has run this long, or whose event loops have not answered for this long (an application that blocks its thread), and logs the request; needs a master: without --workers N, one worker runs under one. 0: never.",
            valueName: "SECONDS"))
    public var harakiri: Double = 0

    @Option(
        help: ArgumentHelp(
            "A worker whose resident memory grows past this many MiB drains and is replaced (checked once a second); 0: never.", valueName: "MIB"))
    public var maxWorkerRss: Int = 0

    @Option(help: ArgumentHelp("A worker that has served this long drains and is replaced; 0: never.", valueName: "SECONDS"))
    public var maxWorkerLifetime: Double = 0

    @Option(
        help: ArgumentHelp(
            "A worker whose application has this many tasks still running past --timeout (they ignored cancellation) is stuck: it drains and is replaced, as --max-requests does. With --max-concurrency C the bound is the smaller of N and C (abandoned tasks keep their slots). 0: never.",
            valueName: "N"))
    public var maxAbandonedTasks: Int = 16

    @Option(help: ArgumentHelp("Write one line per request (common log format + duration in µs) to PATH, or to standard output for -.", valueName: "PATH"))
    public var accessLog: String?

    @Option(
        help: ArgumentHelp(
            "Serve the status page on ADDR over HTTP: / is JSON (workers, requests, in flight, by protocol, errors, latency percentiles), /metrics is Prometheus text.",
            valueName: "ADDR"))
    public var status: String?

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "LEVEL"))
    public var logLevel: String = "info"

    @Flag(help: "Show error details to clients (never in production).")
    public var debug = false

    @Option(help: ArgumentHelp("Write the server's log to PATH instead of standard error (reopened on SIGUSR1).", valueName: "PATH"))
    public var errorLog: String?

    @Option(
        help: ArgumentHelp(
            "Run as this user (name or uid) once the listeners are bound; its groups too. Needed to serve as root, unless --allow-root.", valueName: "USER"))
    public var user: String?

    @Option(help: ArgumentHelp("Run with this group (name or gid) instead of the user's own.", valueName: "GROUP"))
    public var group: String?

    @Flag(help: "Serve as root without --user (not recommended: a FastCGI socket runs code as whoever serves it).")
    public var allowRoot = false

    @Option(help: ArgumentHelp("Owner of the unix socket files created (name or uid).", valueName: "USER"))
    public var socketOwner: String?

    @Option(help: ArgumentHelp("Group of the unix socket files created (name or gid): the front-end's, with --socket-mode 660.", valueName: "GROUP"))
    public var socketGroup: String?

    @Option(help: ArgumentHelp("Change to DIR before anything else.", valueName: "DIR"))
    public var chdir: String?

    @Option(help: ArgumentHelp("The file mode creation mask, in octal (as umask(1)).", valueName: "MASK"))
    public var umask: String?

    @Option(help: ArgumentHelp("Write the server's process id to PATH (atomically); removed at exit.", valueName: "PATH"))
    public var pidFile: String?

    @Option(
        help: ArgumentHelp(
            "Read options from FILE, a JSON object keyed by the long option names (also POSTERN_CONFIG). Options also come from POSTERN_* variables (POSTERN_MAX_CONNECTIONS=...). The command line wins over the environment, the environment over the file.",
            valueName: "FILE"))
    public var config: String?

    @Flag(help: "Print the effective options and where each came from (command line, environment, file, default), then exit.")
    public var printConfig = false

    @Flag(
        name: [.customLong("check-config"), .customShort("t")],
        help:
            "Check the options, the configuration file, the listeners' addresses, the users and paths they name, and the app, without binding or serving; print \"configuration OK: VERSION\" and exit 0, or the error and exit 64. A master runs its new binary this way before SIGUSR2 executes it."
    )
    public var checkConfig = false

    public init() {}

    /// Every option above but `--config`, `--print-config` and `--check-config` (which say how
    /// to read the others), declared once: the file keys, the `POSTERN_*` variables,
    /// `--print-config`, what a reload re-reads, and the docs' options table come from here.
    public static let declarations: [OptionDeclaration<ServeOptions>] = [
        .list("http", reload: .needsRestart) { $0.http },
        .list("fastcgi", reload: .needsRestart) { $0.fastcgi },
        .list("scgi", reload: .needsRestart) { $0.scgi },
        .list("uwsgi", reload: .needsRestart) { $0.uwsgi },
        .list("https", reload: .needsRestart) { $0.https },
        .list("suwsgi", reload: .needsRestart) { $0.suwsgi },
        .list("fastcgi-tls", reload: .needsRestart) { $0.fastcgiTLS },
        .optional("tls-certificate") { $0.tlsCertificate },
        .optional("tls-key") { $0.tlsKey },
        .optional("tls-client-ca") { $0.tlsClientCa },
        .string("tls-min-version") { $0.tlsMinVersion },
        .flag("validate") { $0.validateContract },
        .optional("mount") { $0.mount },
        .string("socket-mode", reload: .needsRestart) { $0.socketMode },
        .list("allow") { $0.allow },
        .int("max-body-bytes") { $0.maxBodyBytes },
        .int("max-header-bytes") { $0.maxHeaderBytes },
        .int("uwsgi-max-vars") { $0.uwsgiMaxVars },
        .int("max-connections") { $0.maxConnections },
        .int("max-multiplexed-requests") { $0.maxMultiplexedRequests },
        .double("idle-timeout") { $0.idleTimeout },
        .double("header-timeout") { $0.headerTimeout },
        .double("timeout") { $0.timeout },
        .int("max-concurrency") { $0.maxConcurrency },
        .int("workers") { $0.workers },
        .double("graceful-timeout") { $0.gracefulTimeout },
        .optional("ping-path") { $0.pingPath },
        .double("drain-delay") { $0.drainDelay },
        .double("idle-exit") { $0.idleExit },
        .double("worker-boot-timeout") { $0.workerBootTimeout },
        .int("workers-min", reload: .needsRestart) { $0.workersMin },
        .int("workers-max", reload: .needsRestart) { $0.workersMax },
        .double("worker-idle-exit", reload: .needsRestart) { $0.workerIdleExit },
        .int("max-requests") { $0.maxRequests },
        .int("max-requests-jitter") { $0.maxRequestsJitter },
        .int("max-abandoned-tasks") { $0.maxAbandonedTasks },
        .int("max-worker-rss") { $0.maxWorkerRss },
        .double("max-worker-lifetime") { $0.maxWorkerLifetime },
        .double("slow-log") { $0.slowLog },
        .double("harakiri") { $0.harakiri },
        .int("backlog", reload: .needsRestart) { $0.backlog },
        .optional("access-log") { $0.accessLog },
        .optional("status") { $0.status },
        .string("log-level") { $0.logLevel },
        .flag("debug") { $0.debug },
        .optional("error-log", none: "(standard error)") { $0.errorLog },
        .optional("user", reload: .needsRestartWithoutWorkers) { $0.user },
        .optional("group", reload: .needsRestartWithoutWorkers) { $0.group },
        .flag("allow-root") { $0.allowRoot },
        .optional("socket-owner", reload: .needsRestartWithoutWorkers) { $0.socketOwner },
        .optional("socket-group", reload: .needsRestartWithoutWorkers) { $0.socketGroup },
        .optional("chdir") { $0.chdir },
        .optional("umask") { $0.umask },
        .optional("pid-file") { $0.pidFile },
    ]

    /// The file keys and `POSTERN_*` variables of these options.
    public static var configurationKeys: [ServeConfiguration.Key] { declarations.map(\.key) }

    /// The value of the option named `name` (its long name), as `--print-config` shows it.
    public func configurationValue(_ name: String) -> String? {
        Self.declarations.first { $0.name == name }?.show(self)
    }

    /// Whether any listener flag was given.
    public var hasListeners: Bool { !listenerAddresses.allSatisfy(\.addresses.isEmpty) }

    /// Each listener flag's addresses, in the order the flags are declared.
    var listenerAddresses: [(listenerProtocol: ListenerProtocol, addresses: [String])] {
        [(.http, http), (.fastcgi, fastcgi), (.scgi, scgi), (.uwsgi, uwsgi), (.https, https), (.suwsgi, suwsgi), (.fastcgiTLS, fastcgiTLS)]
    }

    /// What the TLS listeners serve with; `nil` without `--tls-certificate` or `--tls-key`.
    public var tlsSettings: TLSSettings? {
        guard let tlsCertificate, let tlsKey, let minimum = TLSSettings.MinimumVersion(rawValue: tlsMinVersion) else { return nil }
        return TLSSettings(certificate: tlsCertificate, key: tlsKey, clientCA: tlsClientCa, minimumVersion: minimum)
    }

    /// `--socket-mode`, parsed.
    public func socketModeValue() throws -> UInt16 {
        guard let mode = UInt16(socketMode, radix: 8), mode <= 0o777 else {
            throw ValidationError("--socket-mode \(socketMode) is not an octal mode such as 660")
        }
        return mode
    }

    /// `--allow` and `FCGI_WEB_SERVER_ADDRS`, parsed.
    public func allowList(environment: [String: String]) throws -> AllowList {
        var allowList = AllowList()
        for entry in allow { try allowList.add(entry) }
        if let addresses = environment["FCGI_WEB_SERVER_ADDRS"], !addresses.isEmpty {
            for entry in try AllowList(parsing: addresses).blocks { allowList.blocks.append(entry) }
        }
        return allowList
    }

    /// The listeners, parsed; with no flag, none.
    public func listenerSpecs(environment: [String: String]) throws -> [ListenerSpec] {
        let mode = try socketModeValue()
        let allowList = try allowList(environment: environment)
        var specs: [ListenerSpec] = []
        for (kind, addresses) in listenerAddresses {
            for text in addresses {
                specs.append(ListenerSpec(kind, try ListenAddress(parsing: text), socketMode: mode, allow: allowList))
            }
        }
        return specs
    }

    /// The elastic bounds: `--workers-min` and `--workers-max`, each `--workers` when not given.
    var workerBounds: (minimum: Int, maximum: Int) {
        (workersMin > 0 ? workersMin : workers, workersMax > 0 ? workersMax : workers)
    }

    public var limits: GatewayLimits {
        var limits = GatewayLimits()
        limits.maxBodyBytes = maxBodyBytes
        limits.maxHeaderBytes = maxHeaderBytes
        limits.maxConnections = maxConnections
        limits.maxUWSGIVarsBytes = uwsgiMaxVars
        limits.maxRequestsPerConnection = maxMultiplexedRequests
        limits.idleTimeoutSeconds = idleTimeout
        limits.headerTimeoutSeconds = headerTimeout
        limits.requestTimeoutSeconds = timeout
        limits.maxConcurrency = maxConcurrency
        return limits
    }

    public func validate() throws {
        guard maxBodyBytes >= 0, maxHeaderBytes >= 1024, maxConnections >= 1 else {
            throw ValidationError("limits must be positive (--max-header-bytes at least 1024)")
        }
        guard (1...65535).contains(uwsgiMaxVars) else {
            throw ValidationError("--uwsgi-max-vars must be from 1 to 65535 (the uwsgi size field is 16 bits)")
        }
        guard maxMultiplexedRequests >= 1, idleTimeout > 0, headerTimeout > 0, timeout >= 0, maxConcurrency >= 0 else {
            throw ValidationError(
                "--max-multiplexed-requests must be at least 1, --idle-timeout and --header-timeout positive, --timeout and --max-concurrency not negative")
        }
        guard (1...1024).contains(workers), gracefulTimeout >= 0, maxRequests >= 0, maxRequestsJitter >= 0, maxAbandonedTasks >= 0,
            maxWorkerRss >= 0, maxWorkerLifetime >= 0, slowLog >= 0, harakiri >= 0, (1...65535).contains(backlog), workerBootTimeout > 0
        else {
            throw ValidationError(
                "--workers must be from 1 to 1024; --worker-boot-timeout positive; --graceful-timeout, --max-requests, --max-requests-jitter, --max-abandoned-tasks, --max-worker-rss, --max-worker-lifetime, --slow-log and --harakiri not negative; --backlog from 1 to 65535"
            )
        }
        if let status { do { _ = try ListenAddress(parsing: status) } catch { throw ValidationError("--status: \(error)") } }
        guard LogLevelParsing.parse(logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard TLSSettings.MinimumVersion(rawValue: tlsMinVersion) != nil else {
            throw ValidationError(TLSError.unknownMinimumVersion(tlsMinVersion).description)
        }
        if let pingPath, let problem = PingResponder.problem(with: pingPath) { throw ValidationError(problem) }
        guard drainDelay >= 0 else { throw ValidationError("--drain-delay must not be negative") }
        guard idleExit >= 0 else { throw ValidationError("--idle-exit must not be negative") }
        guard workersMin == 0 || (1...workers).contains(workersMin), workersMax == 0 || (workers...1024).contains(workersMax), workerIdleExit > 0 else {
            throw ValidationError(
                "--workers-min must be from 1 to --workers (\(workers)), --workers-max from --workers to 1024, --worker-idle-exit positive")
        }
        if let mount {
            do { _ = try MountPrefix(mount, wrapping: ApplicationFunction { _ in .error(.notFound) }) } catch { throw ValidationError(error.description) }
        }
    }
}
