import ArgumentParser
import CPosternSocket
import FoundationEssentials
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PosternCGI
import PosternCGIHost
import PosternCore
import PosternEngine
import PosternOps
import PosternSupervision
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The entry point every Postern binary shares: parse the options, pick the launch mode, serve.
public enum Gateway {
    /// Runs `application` as the process's gateway, as `options` and the launch mode say, and
    /// returns when it has stopped. A status other than 0 is thrown as `ExitCode`, which the
    /// command's `main` (``main(_:configurationKeys:cgiApplication:)``) turns into the
    /// process's: nothing here ends the process itself.
    ///
    /// - Parameter configurationKeys: the command's own options that a file or `POSTERN_*`
    ///   variables may set, the same keys it gave ``main(_:configurationKeys:cgiApplication:)``
    ///   (none for a binary started with `Gateway.main(MyApp())`): `--print-config` and a
    ///   reload read the file with them.
    /// - Parameter commandValues: those options' values as parsed, by name, for `--print-config`
    ///   (an ``OptionDeclaration``'s `show`).
    public static func run(
        _ application: any Application, options: ServeOptions, configurationKeys: [ServeConfiguration.Key] = [], commandValues: [String: String] = [:]
    ) async throws {
        // Users, groups and listener host names are looked up from here on (SwiftNIO's binds
        // too), also when an embedder calls this without `Gateway.main`.
        postern_nss_static_services()
        let configurationFile = ServeConfiguration.Loaded(.current(commandKeys: configurationKeys))
        if options.printConfig {
            print(ServeConfiguration.describe(options, settings: configurationFile.settings, commandValues: commandValues))
            return
        }
        let environment = ProcessEnvironment.current
        if options.checkConfig {
            // The app is made (the caller did); the options and paths are checked; nothing binds.
            do {
                try options.check(environment: environment)
            } catch {
                StandardError.write("Error: \(error)\n")
                throw ExitCode(64)
            }
            print(UpgradeCheck.passedPrefix + PosternVersion.serverSoftware)
            return
        }
        ConcurrencyExecutor.install()
        // As root with --user, the log files are the user's before anyone opens them (the
        // workers, or this process executed again as the user, open them as the user).
        LogFiles.prepare(options, logger: nil)
        let level = LogLevelParsing.parse(options.logLevel) ?? .info
        var logger = try LogFiles.bootstrap(errorLog: options.errorLog, level: level, label: "postern")

        var app: any Application = options.validateContract ? Validator(application, logger: logger) : application
        if let mount = options.mount {
            // Outside the validator: the validator checks the environ the app will see.
            app = try MountPrefix(mount, wrapping: app)
        }
        let worker = WorkerEnvironment(environment)
        // A worker drains when its master does (the master's marker file); alone, on its own stop.
        let draining = DrainState(marker: worker.map { DrainState.marker(in: $0.statsDirectory) })
        if let pingPath = options.pingPath {
            // Outermost: the ping is answered before anything else sees the request.
            app = PingResponder(path: pingPath, draining: draining, wrapping: app)
        }
        var configuration = GatewayConfiguration(application: app, limits: options.limits, debug: options.debug, logger: logger)
        try Privileges.prepare(options.identity)
        var specs: [ListenerSpec]
        if let worker {
            // A master that dies (SIGKILL, the OOM killer) takes its workers with it: each gets
            // SIGTERM and drains. Its parent may already be gone by now: then it leaves at once.
            _ = postern_set_parent_death_signal(SIGTERM)
            if let master = worker.master, getppid() != master {
                logger.error("the master (pid \(master)) is gone; this worker leaves")
                throw ExitCode.failure
            }
            // The master bound the sockets (as root, maybe); a worker serves as --user, executed
            // again as the user (see ``Privileges/dropPrivilegesAndReexecute``; the sockets and
            // the worker's environment go with it; PR_SET_PDEATHSIG, cleared by setuid, is set
            // again by the new image above).
            if options.user != nil, geteuid() == 0 {
                try Privileges.dropPrivilegesAndReexecute(options.identity, listeners: [], socketFiles: [], keepEnvironment: true)
            }
            let allow = try options.listenerSpecs(environment: environment).first?.allow ?? AllowList(parsing: environment["FCGI_WEB_SERVER_ADDRS"] ?? "")
            specs = worker.listeners.map { ListenerSpec($0.listenerProtocol, .fd($0.fd), allow: allow) }
            logger[metadataKey: "worker"] = "\(worker.slot)"
            logger[metadataKey: "pid"] = "\(getpid())"
            configuration.logger = logger
        } else if !EmperorLink.watchEmperor(environment, logger: logger) {
            throw ExitCode.failure
        } else if let inherited = Privileges.inheritedListeners(environment, allow: try options.allowList(environment: environment)) {
            // This process is the server executed again as --user, with the sockets bound before.
            specs = inherited
        } else {
            // Sockets systemd opened for us count as listeners given (socket activation).
            let activated = try SocketActivation.listeners(
                environment: environment, socketMode: try options.socketModeValue(), allow: try options.allowList(environment: environment))
            switch LaunchMode.detect(listeners: try options.listenerSpecs(environment: environment) + activated, environment: environment) {
            case .listeners(let given):
                specs = given
            case .fastCGIOnStandardInput:
                specs = [
                    ListenerSpec(
                        .fastcgi, .fd(0),
                        allow: try options.listenerSpecs(environment: environment).first?.allow
                            ?? AllowList(parsing: environment["FCGI_WEB_SERVER_ADDRS"] ?? ""))
                ]
            case .cgi:
                // Binaries that start through ``Gateway/main(_:cgiApplication:)`` never get here;
                // a caller of `run` started by a front-end still serves its one request.
                let status = await CGIProgram.run(application, environment: environment, limits: options.limits)
                if status != 0 { throw ExitCode(status) }
                return
            case .developmentHTTP:
                specs = [ListenerSpec(.http, LaunchMode.defaultHTTPAddress)]
            }
            try Privileges.checkRoot(options.identity, listeners: specs, logger: logger)
        }
        // The TLS listeners' files, read as the process starts (a master reads them to refuse a
        // bad file before it binds; each worker, and each reload, reads them again).
        var tls: TLSSettings.Loaded?
        // The session tickets' secret (``TLSTicketKeys``): a worker's comes from its master, whose
        // other workers have it too, an upgraded master's or a reloaded process's from its
        // previous image; a process started afresh makes one.
        let handedSecret = TLSTicketKeys.takeInherited()
        if specs.contains(where: \.listenerProtocol.isTLS) {
            TLSTicketKeys.use(secret: handedSecret ?? TLSTicketKeys.makeSecret())
            if worker != nil && handedSecret == nil {
                logger.warning("no session-ticket secret from the master: sessions resume only on the worker that issued them")
            }
            do {
                tls = try options.makeTLSContext(listeners: specs)
            } catch {
                logger.critical("\(error)")
                if options.errorLog != nil { StandardError.write("Error: \(error)\n") }
                throw ExitCode(64)
            }
            if tls?.sharesTicketKeys == false {
                logger.warning("cannot set the session-ticket keys (swift-nio-ssl changed): sessions resume only on the process that issued them")
            }
        }
        configuration.flags = GatewayFlags(
            multithread: true, multiprocess: options.workers > 1 || options.harakiri > 0 || options.workerBounds.maximum > 1, runOnce: false)
        if options.maxConcurrency > 0 { configuration.concurrencyGate = ConcurrencyGate(limit: options.maxConcurrency) }

        // --harakiri needs a master to kill and replace a stuck worker: one worker at least.
        if worker == nil && (options.workers > 1 || options.harakiri > 0 || options.workerBounds.maximum > 1) {
            let master = try WorkerMaster(
                options: options, configuration: configurationFile, specs: specs, logger: logger, notifier: SystemdNotifier.fromEnvironment(environment))
            let status = try statusServer(options, mode: "master", logger: logger) { master.statusReading() }
            let exitStatus = try await master.run(status: status)
            if exitStatus != 0 { throw ExitCode(exitStatus) }
            return
        }
        var unixSocketFiles = Privileges.inheritedSocketFiles(environment)
        let role: ServingRole
        if let worker {
            role = .worker(worker)
        } else {
            // A single process opens its listeners here, as whoever started the server, and
            // serves them as descriptors: the sockets are ready before privileges are dropped,
            // and they outlive a reload in place (``InPlaceReload``). Inherited ones are kept.
            specs = try specs.map { spec in
                if case .fd = spec.address { return spec }
                let fd = try ListeningSocket.open(spec, backlog: Int32(options.backlog))
                if case .unix(let path) = spec.address {
                    try Privileges.ownSocket(path, options.identity)
                    unixSocketFiles.append(path)
                }
                return ListenerSpec(spec.listenerProtocol, .fd(fd), socketMode: spec.socketMode, allow: spec.allow, option: spec.option)
            }
            if options.user != nil, geteuid() == 0 {
                try Privileges.dropPrivilegesAndReexecute(options.identity, listeners: specs, socketFiles: unixSocketFiles)
            }
            for spec in specs { if case .fd(let fd) = spec.address { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } }
            role = .single(
                InPlaceReload(
                    listeners: specs, socketFiles: unixSocketFiles, notifier: SystemdNotifier.fromEnvironment(environment),
                    environment: environment, configuration: configurationFile))
            specs = try InPlaceReload.servingCopies(of: specs)
        }
        // The pid file is the master's, or the single process's.
        let pidFile = role.isWorker ? nil : options.pidFile
        if let pidFile { try Privileges.writePIDFile(pidFile) }
        defer {
            if let pidFile { Privileges.removePIDFile(pidFile) }
            for path in unixSocketFiles { try? UnixSocketFile.remove(path: path) }
        }
        try await serveProcess(
            listeners: specs, configuration: configuration, options: options, role: role, tls: tls, draining: draining,
            hostsScripts: application is CGIScriptHost)
        if let reload = role.reload, reload.isReloading {
            reload.execute(logger: logger)  // returns only if the binary could not be executed
            throw ExitCode.failure
        }
    }

    /// Accept threads per listener: N workers share the cores (more accept threads than cores
    /// only add context switches), and a CGI host has twice as many, since its threads wait for
    /// small scripts (``CGIScriptHost``'s wait on the request's thread, as each of fcgiwrap's
    /// processes waits for its script): the cores stay busy while some threads wait. `nil`: the
    /// server's default, the core count.
    static func acceptThreads(isWorker: Bool, workers: Int, hostsScripts: Bool) -> Int? {
        let share = isWorker ? max(1, System.coreCount / max(1, workers)) : System.coreCount
        if hostsScripts { return 2 * share }
        return isWorker ? share : nil
    }

    /// `--status ADDR`: the status page's own HTTP server, open only to `--allow` when given;
    /// `nil` without the option. `mode` says whose figures `source` reads (a single process's or
    /// a master's, over its workers).
    static func statusServer(
        _ options: ServeOptions, mode: String, logger: Logger, source: @escaping @Sendable () -> StatusReading
    ) throws -> GatewayServer? {
        guard let address = options.status else { return nil }
        return GatewayServer(
            listeners: [ListenerSpec(.http, try ListenAddress(parsing: address), allow: try options.allowList(environment: [:]), option: "--status")],
            configuration: GatewayConfiguration(application: StatusApplication(source: source, mode: mode), logger: logger))
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

    /// One serving process — the only one, or a worker (``ServingRole``): the access log, the
    /// counters (and, in a worker, their reports to the master and `--max-requests`), the status
    /// endpoint when alone,
    /// and a graceful stop on SIGTERM/SIGINT bounded by `--graceful-timeout`.
    static func serveProcess(
        listeners: [ListenerSpec], configuration: GatewayConfiguration, options: ServeOptions, role: ServingRole, tls: TLSSettings.Loaded?,
        draining: DrainState, hostsScripts: Bool = false
    ) async throws {
        var configuration = configuration
        let logger = configuration.logger
        let isWorker = role.isWorker
        let reload = role.reload
        // Past RLIMIT_FSIZE (a log file grown to the limit) a write fails with EFBIG instead of
        // the signal's default, which would end the process.
        signal(SIGXFSZ, SIG_IGN)
        // A write to a closed pipe (a master gone, standard error read by it) fails with EPIPE
        // instead of ending the process; CGI scripts get the default back (CGIChildProcess).
        signal(SIGPIPE, SIG_IGN)
        // Trapped before serving starts: from here no routine signal ends the process.
        let signals = SignalEvents.stream(ServingProcessSignals.handled)
        let accessLog = try options.accessLog.map { try AccessLog(path: $0, logger: logger) }
        var requestLimit = 0
        if options.maxRequests > 0 {
            if isWorker {
                requestLimit = options.maxRequests + Int.random(in: 0...options.maxRequestsJitter)
            } else {
                logger.warning("--max-requests needs --workers 2 or more (a master to replace the worker); ignored")
            }
        }
        let share = requestLimit
        let recycling = WorkerRecycling(maxResidentBytes: options.maxWorkerRss << 20, maxLifetimeSeconds: options.maxWorkerLifetime)
        if recycling.isEnabled && !isWorker {
            logger.warning("--max-worker-rss and --max-worker-lifetime need --workers 2 or more (a master to replace the worker); ignored")
        }
        // Abandoned tasks (past --timeout, ignoring cancellation) keep their --max-concurrency
        // slots: C of them leave a process with none, whatever --max-abandoned-tasks says.
        let abandonedLimit = [options.maxAbandonedTasks, options.maxConcurrency].filter { $0 > 0 }.min() ?? 0
        // The running requests are kept for --slow-log, and in a worker for its master's
        // --harakiri (its reports name the oldest).
        let slowLog = options.slowLog > 0 || (isWorker && options.harakiri > 0) ? SlowRequestLog(seconds: options.slowLog > 0 ? options.slowLog : nil) : nil
        let stats = GatewayStats(
            accessLog: accessLog, requestLimit: share,
            onLimit: {
                logger.notice("served its --max-requests share; draining and leaving", metadata: ["requests": "\(share)"])
                kill(getpid(), SIGTERM)
            },
            abandonedLimit: abandonedLimit,
            onAbandonedLimit: { count in
                if isWorker {
                    // As uWSGI's harakiri and gunicorn's worker timeout: the stuck process goes,
                    // a fresh one takes its place (the tasks end with the process).
                    logger.error(
                        "application tasks ignore --timeout and still run: this worker is stuck; draining and leaving",
                        metadata: ["abandoned": "\(count)"])
                    kill(getpid(), SIGTERM)
                } else {
                    logger.error(
                        "application tasks ignore --timeout and still run (each keeps its --max-concurrency slot); one process cannot replace itself: run with --workers 2 or more, or restart it",
                        metadata: ["abandoned": "\(count)"])
                }
            },
            slowLog: slowLog, logger: logger)
        if let tls { stats.servesCertificate(notValidAfter: tls.notValidAfter) }
        configuration.observer = stats
        let reporter = role.worker.map { WorkerReporter(directory: $0.statsDirectory, stats: stats) }
        // systemd's Type=notify: a single process tells it itself; a worker leaves it to its master.
        let notifier = reload?.notifier
        let statusLine: @Sendable () -> String = {
            let snapshot = stats.snapshot
            return "serving: \(snapshot.requests) requests, \(snapshot.inFlight) in flight"
        }
        // An event loop that has not run a job for 200 ms is blocked, not busy.
        var stalled: (@Sendable () -> Bool)?
        if let heartbeat = reporter?.heartbeat {
            stalled = { heartbeat.isStalled(longerThan: 0.2) }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(
                service: GatewayServer(
                    listeners: listeners, configuration: configuration, sharedSockets: isWorker,
                    acceptThreads: acceptThreads(isWorker: isWorker, workers: options.workers, hostsScripts: hostsScripts),
                    onReady: { addresses in
                        reporter?.write()
                        notifier?.send("READY=1\nMAINPID=\(getpid())\nSTATUS=serving on \(addresses.compactMap { $0?.listenerText }.joined(separator: ", "))")
                    },
                    stalled: stalled, tls: tls?.context))
        ]
        // The status page's accept queues: the listening sockets this process keeps.
        let listenQueues = reload.map { ListenQueueMonitor($0.listeners.map { ($0.listenerProtocol, $0.fd) }) }
        let startTime = Date().timeIntervalSince1970
        if !isWorker,
            let status = try statusServer(
                options, mode: "single", logger: logger,
                source: {
                    StatusReading(
                        total: stats.snapshot, workers: [WorkerStatus(stats.snapshot)], listeners: listenQueues?.sample() ?? [], startTime: startTime)
                })
        {
            services.insert(.init(service: status), at: 0)
        }
        if let notifier {
            var report: (@Sendable () -> String)?
            if EmperorLink.isUnderEmperor {
                report = {
                    let snapshot = stats.snapshot
                    let busy = snapshot.inFlight > 0 ? 1 : 0
                    return AppReport(
                        start: Int(startTime * 1000), requests: snapshot.requests, errors: snapshot.errors, inFlight: snapshot.inFlight, busy: busy,
                        idle: 1 - busy
                    ).line
                }
            }
            services.append(.init(service: SystemdWatch(notifier: notifier, status: statusLine, isReloading: { reload?.isReloading == true }, report: report)))
        }
        // --drain-delay: a single process takes its stop signals itself, to drain before the
        // graceful stop; a worker stops at once (its master drained before it signalled).
        let drainDelay = isWorker ? 0 : options.drainDelay
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: drainDelay > 0 ? [] : [.sigterm, .sigint, .sigquit], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int64(options.gracefulTimeout * 1000))
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let serviceGroup = ServiceGroup(configuration: groupConfiguration)
        let signalHandling = Task {
            await ServingProcessSignals.run(
                signals, accessLog: accessLog, reload: reload, stopForReload: { await serviceGroup.triggerGracefulShutdown() }, draining: draining,
                logger: logger)
        }
        defer { signalHandling.cancel() }
        // A stop closes the kept sockets; one asked for during a reload's drain cancels it.
        let stops = reload.map { reload in
            let stream = SignalEvents.stream([SIGTERM, SIGINT, SIGQUIT])
            guard drainDelay > 0 else {
                return Task { for await _ in stream { reload.stopRequested() } }
            }
            let stop: @Sendable () async -> Void = {
                reload.stopRequested()
                await serviceGroup.triggerGracefulShutdown()
            }
            return Task {
                var delay: Task<Void, Never>?
                for await number in stream {
                    guard delay == nil else {
                        // A second signal: the rest of the delay is skipped.
                        delay?.cancel()
                        await stop()
                        continue
                    }
                    draining.begin()
                    logger.notice(
                        "\(SignalEvents.name(number)): draining: the ping path answers 503 and every request is served for --drain-delay; then a graceful stop",
                        metadata: ["drain-delay": "\(drainDelay)"])
                    notifier?.send("STATUS=draining: --drain-delay \(drainDelay) s, then a graceful stop")
                    delay = Task {
                        try? await Task.sleep(for: .milliseconds(Int64(drainDelay * 1000)))
                        await stop()
                    }
                }
            }
        }
        defer { stops?.cancel() }
        reporter?.start()
        defer { reporter?.stop() }
        let recycler = isWorker && recycling.isEnabled ? Task { await recycling.watch(logger: logger) } : nil
        defer { recycler?.cancel() }
        // --idle-exit: a single process stops itself (a worker's master judges for all).
        let idleWatch =
            !isWorker && options.idleExit > 0
            ? Task {
                var idle = IdleExit(seconds: options.idleExit, now: .now)
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                    let snapshot = stats.snapshot
                    if idle.observe(requests: snapshot.requests, inFlight: snapshot.inFlight, now: .now) {
                        logger.notice("no request for --idle-exit \(options.idleExit) s; stopping")
                        kill(getpid(), SIGTERM)
                        return
                    }
                }
            } : nil
        defer { idleWatch?.cancel() }
        let queueWatch = options.status != nil ? listenQueues.map { monitor in Task { await monitor.watch() } } : nil
        defer { queueWatch?.cancel() }
        let slowWatch = slowLog.map { log in Task { await log.watch(logger: logger) } }
        defer { slowWatch?.cancel() }
        do {
            try await serviceGroup.run()
        } catch {
            reporter?.writeLast()
            throw error
        }
        reporter?.writeLast()
    }
}

enum LogLevelParsing {
    static func parse(_ text: String) -> Logger.Level? {
        Logger.Level(rawValue: text.lowercased())
    }
}

/// What a serving process is, decided once at start: the only one, which opened its listeners
/// (and keeps them for a reload in place), writes the pid file and answers the status page and
/// systemd itself; or one of a master's workers, which inherited its listeners, shares them with
/// the other workers and reports to the master, which reloads, replaces and recycles it.
enum ServingRole: Sendable {
    case single(InPlaceReload)
    case worker(WorkerEnvironment)

    var isWorker: Bool {
        if case .worker = self { return true }
        return false
    }

    var worker: WorkerEnvironment? {
        if case .worker(let environment) = self { return environment }
        return nil
    }

    /// A single process's reload in place; a worker is reloaded by its master.
    var reload: InPlaceReload? {
        if case .single(let reload) = self { return reload }
        return nil
    }
}
