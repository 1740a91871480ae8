import FoundationEssentials
import Logging
import PosternCore
import PosternOps
import PosternSupervision
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The master of `--workers N`: binds every listener itself, starts N workers that inherit the
/// sockets, and supervises them; its decisions are ``PreforkPolicy``'s, this type performs them
/// (spawns, signals, reaps, reads the workers' reports, tells systemd).
///
/// - A worker is ready once it has written its first report (its listeners are up, its app
///   made). At start, a worker that exits with a configuration error, or three that exit before
///   they are ready, stop the master with the reason and exit status 1; after a successful
///   start a crashing worker is replaced with a backoff.
/// - SIGHUP reloads: the configuration is read again (a file with an error stops the reload),
///   then a new worker starts beside each serving one, and each old worker is told to drain only
///   once its successor is ready. A successor that exits or is not ready within
///   `--worker-boot-timeout` fails the reload: the others are stopped, the old workers serve on,
///   the log and the status page (`last_reload`) say why, systemd hears READY=1 again.
/// - SIGUSR2 upgrades in place, once the binary has passed its own `--check-config`.
/// - While no worker serves (a crash loop after start), the master answers each connection
///   with its protocol's 503 (``BusyAnswerer``) instead of leaving it in the backlog.
/// - SIGTERM/SIGINT/SIGQUIT: every worker drains (in-flight requests finish, up to
///   `--graceful-timeout`); after that plus 5 s a worker still alive gets SIGKILL.
///
/// Workers report their counters as JSON snapshot files in a private run directory (written
/// every 200 ms and at exit); the master's status endpoint sums the live workers' files and the
/// final files of the workers that have left.
final class WorkerMaster: @unchecked Sendable {
    // Mutated only from the supervision loop in run().
    private let options: ServeOptions
    private let specs: [ListenerSpec]
    private let logger: Logger
    private let statsDirectory: String
    private let retired = StatsAccumulator()
    private var policy: PreforkPolicy
    /// Each worker's standard error, read here (``ChildOutput``).
    private var outputs: [pid_t: ChildOutput] = [:]
    /// The workers of the master this process replaced (SIGUSR2): they drain once the new
    /// generation serves.
    private var inherited: Set<pid_t> = []
    /// systemd's `NOTIFY_SOCKET`, when the master runs as a `Type=notify` service.
    private let notifier: SystemdNotifier?
    /// READY=1 is due once the workers serve (at start, and after each reload).
    private var readyDue = true
    private var lastStatus = ContinuousClock.now
    private let reportsToEmperor = EmperorLink.isUnderEmperor
    /// What the options were read from at start, and what they gave: SIGHUP reads it again and
    /// compares (a listener setting that changed needs a restart).
    private let configuration: ServeConfiguration.Loaded
    /// The binary's path as started (``ChildProcess/startedFrom(_:environment:)``).
    private let startedFrom: String?
    private var listenerFDs: [InheritedListeners.Listener] = []
    private var busy: BusyAnswerer?
    /// The reason the master stops, when it must (``PreforkPolicy/Action/halt(_:)``).
    private var haltReason: String?
    /// An upgrade's check of the new binary under way (SIGUSR2).
    private var upgradeCheck: Task<Void, Never>?
    /// The supervision loop's events, for the upgrade check's result.
    private var events: AsyncStream<Event>.Continuation?
    private let lastReloadReport = Mutex<ReloadReport?>(nil)
    /// When a stop gives up on the previous image's workers (the policy kills its own).
    private var stopDeadline: ContinuousClock.Instant?
    /// When `--drain-delay` is over, once a stop signal began it.
    private var drainEnds: ContinuousClock.Instant?
    let restarts = ManagedCounter()
    let harakiriKills = ManagedCounter()
    private let harakiri: Harakiri
    private var lastSample = ContinuousClock.now
    /// `--idle-exit`: judged on the workers' summed counters.
    private var idle: IdleExit
    /// `--workers-min`, `--workers-max`: judged on each sample.
    private var elastic: ElasticWorkers
    private let elasticReport: Mutex<ElasticReport?>
    /// Each worker's CPU ticks at the last elastic decision, its time, and the most connections
    /// queued since.
    private var cpuTicks: [pid_t: Int] = [:]
    private var lastElastic = ContinuousClock.now
    private var queuedSinceElastic: (least: Int, most: Int)?
    /// Workers seen with an event loop blocked since the last elastic decision.
    private var blockedSinceElastic: Set<pid_t> = []
    private let startTime = Date().timeIntervalSince1970
    /// For the status page, read from its own thread: the live workers (retiring or not), the
    /// accept queues, the most workers seen busy at once.
    private let published = Mutex<(workers: [pid_t: PreforkPolicy.State], listen: ListenQueueMonitor?, crashLoop: CrashLoopReport?)>(([:], nil, nil))
    private let maxActiveWorkers = Atomic<Int>(0)

    init(options: ServeOptions, configuration: ServeConfiguration.Loaded, specs: [ListenerSpec], logger: Logger, notifier: SystemdNotifier? = nil) throws {
        self.notifier = notifier
        self.configuration = configuration
        self.options = options
        self.harakiri = Harakiri(seconds: options.harakiri)
        self.idle = IdleExit(seconds: options.idleExit, now: .now)
        let bounds = options.workerBounds
        self.elastic = ElasticWorkers(minimum: bounds.minimum, maximum: bounds.maximum, idleExit: options.workerIdleExit, now: .now)
        self.elasticReport = Mutex(bounds.maximum > bounds.minimum ? ElasticReport(workersMin: bounds.minimum, workersMax: bounds.maximum) : nil)
        self.specs = specs
        self.policy = PreforkPolicy(
            settings: .init(
                workers: options.workers, bootTimeout: .milliseconds(Int64(options.workerBootTimeout * 1000)),
                gracefulTimeout: .milliseconds(Int64(options.gracefulTimeout * 1000))))
        self.startedFrom = ChildProcess.startedFrom(environment: ProcessInfo.processInfo.environment)
        var master = logger
        master[metadataKey: "role"] = "master"
        self.logger = master
        if let inherited = getenv(Self.upgradeStatsKey).map({ String(cString: $0) }) {
            // An upgraded master keeps the directory: the previous workers still report there.
            unsetenv(Self.upgradeStatsKey)
            self.statsDirectory = inherited
        } else {
            var template = Array("/tmp/postern-run-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw PathError.cannotMakeRunDirectory(errno: errno) }
            self.statsDirectory = String(cString: made)
        }
        // Workers running as --user write their counters here.
        try Privileges.giveToUser(statsDirectory, options.identity)
    }

    /// The summed counters of every worker, live and gone, and the live workers' own.
    func aggregate() -> (total: StatsSnapshot, workers: [StatsSnapshot]) {
        var live: [StatsSnapshot] = []
        if let names = try? FileManager.default.contentsOfDirectory(atPath: statsDirectory) {
            for name in names where name.hasSuffix(".json") {
                if let snapshot = Self.readSnapshot(statsDirectory + "/" + name) { live.append(snapshot) }
            }
        }
        var total = retired.value
        for snapshot in live { total.add(snapshot) }
        return (total, live.sorted { $0.pid < $1.pid })
    }

    /// What the status page shows: the workers' reports, their memory and state, the queues.
    func statusReading() -> StatusReading {
        let (total, live) = aggregate()
        let (known, listen, crashLoop) = published.withLock { ($0.workers, $0.listen, $0.crashLoop) }
        // A worker is idle or busy once the master counts it as serving, not when its first
        // report appears: until the master's next look it is still starting (a worker that dies
        // then is a boot failure, and the page must not say otherwise).
        var workers = live.filter { known[$0.pid] != nil }.map { snapshot in
            let state: String? =
                switch known[snapshot.pid] {
                case .retiring: "retiring"
                case .booting: "starting"
                default: nil
                }
            return WorkerStatus(snapshot, state: state)
        }
        for (pid, state) in known where !live.contains(where: { $0.pid == pid }) {
            var starting = StatsSnapshot()
            starting.pid = pid
            workers.append(WorkerStatus(starting, state: state == .retiring ? "retiring" : "starting"))
        }
        return StatusReading(
            total: total, workers: workers.sorted { $0.pid < $1.pid }, restarts: restarts.current, harakiriKills: harakiriKills.current,
            maxActiveWorkers: maxActiveWorkers.load(ordering: .relaxed), listeners: listen?.sample() ?? [], startTime: startTime,
            lastReload: lastReloadReport.withLock { $0 }, crashLoop: crashLoop, elastic: elasticReport.withLock { $0 })
    }

    /// Supervises until SIGTERM/SIGINT have stopped every worker; returns the exit status (1
    /// when the workers could not start).
    func run(status: GatewayServer?) async throws -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let upgrade = Self.takeUpgrade()
        if let upgrade {
            // Executed again by SIGUSR2: the sockets are already open, the old workers still run.
            listenerFDs = upgrade.listeners
            inherited = Set(upgrade.workers)
            // The previous workers drain as this image starts (PR_SET_PDEATHSIG fires when the
            // thread that spawned them is gone, and execve ends every thread but one); the
            // connections meanwhile wait in the backlog for the new ones.
            logger.notice(
                "upgraded in place: the sockets kept; the previous workers drain, the new ones start", metadata: ["previous": "\(upgrade.workers.sorted())"])
        } else {
            for spec in specs {
                let fd = try ListeningSocket.open(spec, backlog: Int32(options.backlog))
                if case .unix(let path) = spec.address { try Privileges.ownSocket(path, options.identity) }
                listenerFDs.append((spec.listenerProtocol, fd))
                logger.info("listening", metadata: ["protocol": "\(spec.listenerProtocol)", "address": "\(spec.address)", "fd": "\(fd)"])
            }
        }
        let monitor = ListenQueueMonitor(listenerFDs.map { ($0.listenerProtocol, $0.fd) })
        published.withLock { $0.listen = monitor }
        // The master stays who started it (to bind again and start workers); workers drop to --user.
        if let path = options.pidFile { try Privileges.writePIDFile(path) }
        defer { if let path = options.pidFile { Privileges.removePIDFile(path) } }
        let (events, continuation) = AsyncStream<Event>.makeStream()
        self.events = continuation
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let more = SignalEvents.stream([SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU])
        let statusGroup = status.map { ServiceGroup(services: [$0], logger: logger) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await signal in signals { continuation.yield(.signal(signal)) }
            }
            group.addTask {
                for await number in more { continuation.yield(.otherSignal(number)) }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(50))
                    continuation.yield(.tick)
                }
            }
            if let statusGroup {
                group.addTask { try? await statusGroup.run() }
            }
            if upgrade != nil {
                // The binary passed its check before it was executed; a new worker that still
                // cannot start backs off (the master answers busy meanwhile) rather than stopping
                // the service.
                policy.assumeRunning()
            }
            perform(policy.start())
            for await event in events {
                switch event {
                case .signal(let signal):
                    if signal == .sighup {
                        await reload()
                    } else {
                        requestStop("\(signal)")
                    }
                case .otherSignal(let number):
                    handle(number)
                case .upgradeChecked(let result):
                    upgradeCheck = nil
                    if !policy.isStopping { execute(upgrade: result) }
                case .tick:
                    reap()
                    noticeReady()
                    perform(policy.tick(now: .now))
                    retireInherited()
                    if !policy.isStopping {
                        notifySystemd()
                        answerBusy()
                    }
                    if let end = drainEnds, !policy.isStopping, ContinuousClock.now >= end {
                        beginStop("--drain-delay over")
                    }
                    if !policy.isStopping, ContinuousClock.now - lastSample >= .milliseconds(200) {
                        lastSample = .now
                        sample(monitor)
                        if idle.isEnabled, drainEnds == nil {
                            let total = aggregate().total
                            if idle.observe(requests: total.requests, inFlight: total.inFlight, now: .now) {
                                beginStop("no request for --idle-exit \(options.idleExit) s")
                            }
                        }
                    }
                }
                if let deadline = stopDeadline, ContinuousClock.now > deadline, !(inherited.isEmpty && retiringInherited.isEmpty) {
                    let previous = inherited.union(retiringInherited).sorted()
                    logger.error("previous workers still running after --graceful-timeout; killing them", metadata: ["pids": "\(previous)"])
                    for pid in previous { kill(pid, SIGKILL) }
                    stopDeadline = .now + .seconds(3600)
                }
                if policy.isDone && inherited.isEmpty && retiringInherited.isEmpty { break }
            }
            busy?.close()
            await statusGroup?.triggerGracefulShutdown()
            group.cancelAll()
        }
        continuation.finish()
        for (_, fd) in listenerFDs { close(fd) }
        for spec in specs {
            if case .unix(let path) = spec.address { try? UnixSocketFile.remove(path: path) }
        }
        try? FileManager.default.removeItem(atPath: statsDirectory)
        if let haltReason {
            logger.critical("stopped: \(haltReason)")
            if options.errorLog != nil { StandardError.write("Error: \(haltReason)\n") }
            return 1
        }
        logger.info("stopped")
        return 0
    }

    enum Event: Sendable {
        case signal(UnixSignal)
        case otherSignal(Int32)
        case upgradeChecked(UpgradeCheck.Result)
        case tick
    }

    /// Carries out the policy's decisions.
    private func perform(_ actions: [PreforkPolicy.Action]) {
        for action in actions {
            switch action {
            case .spawn(let slot, let successor):
                // A worker starts: connections wait for it (and none the answerer accepted can
                // pass into it).
                busy?.close()
                busy = nil
                switch spawn(slot: slot) {
                case .success(let pid):
                    perform(policy.spawned(pid, slot: slot, successor: successor, now: .now))
                case .failure(let error):
                    perform(policy.spawnFailed(slot: slot, successor: successor, reason: "\(error)", now: .now))
                }
            case .terminate(let pid):
                kill(pid, SIGTERM)
            case .kill(let pid):
                kill(pid, SIGKILL)
            case .log(let level, let message):
                logger.log(level: level, "\(message)")
            case .reloadFinished(let outcome):
                finishReload(outcome)
            case .halt(let reason):
                guard haltReason == nil else { continue }
                haltReason = reason
                logger.critical("\(reason); the master stops")
                notifier?.send("STATUS=stopping: \(reason)")
                perform(policy.stop(now: .now))
            }
        }
        let crashLoop = policy.crashes > 0 ? policy.lastCrash.map { CrashLoopReport(crashes: policy.crashes, last: $0, serving: policy.servingCount) } : nil
        published.withLock {
            $0.workers = policy.workers.mapValues(\.state).merging(inherited.map { ($0, .retiring) }) { $1 }
            $0.crashLoop = crashLoop
        }
    }

    /// A stop signal: with `--drain-delay`, the workers' ping path answers 503 (the marker file
    /// they look for) while they serve on, and the graceful stop begins when the delay is over or
    /// at a second signal; without it, at once.
    private func requestStop(_ name: String) {
        guard !policy.isStopping else { return }
        guard options.drainDelay > 0, drainEnds == nil else {
            if drainEnds != nil { logger.notice("\(name): the rest of --drain-delay skipped") }
            beginStop(name)
            return
        }
        let marker = DrainState.marker(in: statsDirectory)
        guard FileManager.default.createFile(atPath: marker, contents: nil) else {
            logger.error("\(name): cannot create \(marker) to drain (the ping path would not say 503); stopping at once")
            beginStop(name)
            return
        }
        drainEnds = .now + .milliseconds(Int64(options.drainDelay * 1000))
        logger.notice(
            "\(name): draining: the ping path answers 503 and every request is served for --drain-delay; then a graceful stop",
            metadata: ["drain-delay": "\(options.drainDelay)"])
        notifier?.send("STATUS=draining: --drain-delay \(options.drainDelay) s, then a graceful stop")
    }

    private func beginStop(_ name: String) {
        guard !policy.isStopping else { return }
        logger.notice("\(name): graceful stop; workers drain", metadata: ["graceful-timeout": "\(options.gracefulTimeout)"])
        notifier?.send("STOPPING=1\nSTATUS=stopping: workers drain")
        upgradeCheck?.cancel()
        upgradeCheck = nil
        for pid in inherited.union(retiringInherited) { kill(pid, SIGTERM) }
        stopDeadline = .now + .milliseconds(Int64(options.gracefulTimeout * 1000)) + .seconds(5)
        perform(policy.stop(now: .now))
        // The workers hold the sockets too: the last one to stop serves what waits in the
        // backlog and closes them, and from then on a connection is refused (a balancer tries
        // another member) instead of queued for nobody and reset when the master leaves.
        busy?.close()
        busy = nil
        published.withLock { $0.listen = nil }
        for (_, fd) in listenerFDs { close(fd) }
        listenerFDs = []
    }

    /// SIGHUP: the configuration read again; then the policy's reload.
    private func reload() async {
        guard !policy.isStopping else { return }
        guard drainEnds == nil else {
            logger.notice("SIGHUP: draining to stop (--drain-delay); not reloading")
            return
        }
        guard let count = await rereadConfiguration() else { return }
        logger.notice("SIGHUP: reloading; a new worker starts beside each, and each old one drains once its successor is ready")
        notifier?.reloading()
        lastReloadReport.withLock {
            $0 = ReloadReport(generation: policy.generation + 1, outcome: "reloading", reason: nil, time: Int(Date().timeIntervalSince1970))
        }
        perform(policy.beginReload(workers: count, now: .now))
    }

    private func finishReload(_ outcome: PreforkPolicy.ReloadOutcome) {
        lastReloadReport.withLock { report in
            switch outcome {
            case .succeeded(let generation):
                report = ReloadReport(generation: generation, outcome: "succeeded", reason: nil, time: report?.time ?? Int(Date().timeIntervalSince1970))
            case .failed(let generation, let reason):
                report = ReloadReport(generation: generation, outcome: "failed", reason: reason, time: report?.time ?? Int(Date().timeIntervalSince1970))
            }
        }
        // systemd hears READY=1 when the reload ends, either way (a slot in a crash loop does
        // not hold the service in "reloading").
        switch outcome {
        case .succeeded(let generation):
            notifier?.send("READY=1\nSTATUS=reloaded (generation \(generation)): \(policy.servingCount) of \(policy.workerCount) workers serving")
        case .failed(_, let reason):
            notifier?.send("READY=1\nSTATUS=reload failed, the previous workers serve: \(reason)")
        }
        lastStatus = .now
        readyDue = false
    }

    /// SIGHUP, before the reload: the configuration file (and environment) read again. The new
    /// workers read it themselves as they start, so timeouts, limits, logs and the app's options
    /// change with them; the master applies `workers`; the listeners it bound at start stay, and
    /// a change to them is logged as needing a restart. A file with an error stops the reload
    /// (new workers could not start with it): nil. Otherwise the worker count to reload to.
    private func rereadConfiguration() async -> Int? {
        let settings: [ServeConfiguration.Setting]
        switch configuration.reread() {
        case .failure(let error):
            logger.error("SIGHUP: not reloading: the configuration has an error; the workers keep running as they are", metadata: ["error": "\(error)"])
            lastReloadReport.withLock {
                $0 = ReloadReport(
                    generation: policy.generation, outcome: "failed", reason: "the configuration has an error: \(error)",
                    time: Int(Date().timeIntervalSince1970))
            }
            return nil
        case .success(let read):
            settings = read
        }
        // --idle-exit applies to the master itself: read again here.
        let idleSeconds = ServeConfiguration.setting("idle-exit", in: settings)?.values.first.flatMap(Double.init) ?? 0
        if idleSeconds != idle.seconds {
            logger.notice("SIGHUP: idle-exit \(idle.seconds) → \(idleSeconds)")
            idle = IdleExit(seconds: idleSeconds, now: .now)
        }
        var count = policy.workerCount
        if let setting = ServeConfiguration.setting("workers", in: settings), setting.source != .commandLine {
            let wanted = max(1, Int(setting.values.first ?? "") ?? 1)
            if wanted != count {
                logger.notice("SIGHUP: workers \(count) → \(wanted) (\(setting.source))")
                count = wanted
            }
        }
        for name in Self.boundAtStart {
            let now = ServeConfiguration.setting(name, in: settings)?.values ?? []
            if now != ServeConfiguration.setting(name, in: configuration.settings)?.values ?? [] {
                logger.warning(
                    "SIGHUP: \(name) changed in the configuration; the master applies it at start only (its listeners, its worker bounds): restart to apply it")
            }
        }
        return count
    }

    /// The options the master applies once, at start: its listeners and worker bounds (its
    /// workers apply the others as they start).
    static let boundAtStart = ServeOptions.declarations.filter { $0.reload == .needsRestart }.map(\.name)

    /// SIGQUIT stops gracefully, as SIGTERM; SIGUSR1 reopens the master's logs and goes to every
    /// worker (each reopens its own); SIGTTIN and SIGTTOU add and remove a worker (gunicorn's
    /// signals; never fewer than one); SIGUSR2 upgrades in place (``beginUpgrade()``).
    private func handle(_ number: Int32) {
        let name = SignalEvents.name(number)
        guard !policy.isStopping else { return }
        switch number {
        case SIGQUIT:
            requestStop(name)
        case SIGUSR2 where drainEnds != nil:
            logger.notice("\(name): draining to stop (--drain-delay); not upgrading")
        case SIGUSR1:
            ServingProcessSignals.reopenLogs(nil, logger)
            LogFiles.prepare(options, logger: logger)
            let pids = policy.workers.keys.sorted() + inherited.sorted()
            logger.notice("\(name): the workers reopen their logs", metadata: ["pids": "\(pids)"])
            for pid in pids { kill(pid, SIGUSR1) }
        case SIGTTIN:
            logger.notice("\(name): one worker more", metadata: ["workers": "\(policy.workerCount + 1)"])
            perform(policy.resize(to: policy.workerCount + 1, now: .now))
        case SIGTTOU:
            guard policy.workerCount > 1 else {
                logger.notice("\(name): ignored; one worker is the fewest")
                return
            }
            logger.notice("\(name): one worker fewer", metadata: ["workers": "\(policy.workerCount - 1)"])
            perform(policy.resize(to: policy.workerCount - 1, now: .now))
        case SIGUSR2:
            beginUpgrade()
        default:
            logger.notice("\(name): ignored")
        }
    }

    static let upgradeListenersKey = "POSTERN_UPGRADE_LISTENERS"
    static let upgradeWorkersKey = "POSTERN_UPGRADE_WORKERS"
    static let upgradeStatsKey = "POSTERN_UPGRADE_STATS"

    /// SIGUSR2, an in-place upgrade (nginx's binary upgrade, in one step): the binary now at the
    /// path the master was started from first runs its own check (``UpgradeCheck``: it must
    /// start, read the configuration and say its version); only then does the master execute
    /// it, in its own process, so its pid (what systemd and the pid file track) and its
    /// listening sockets stay. The new image finds the sockets and the old workers in its
    /// environment, starts new workers, and lets the old ones drain only once the new serve.
    /// Connections meanwhile wait in the sockets' backlogs: none is refused. A binary that fails
    /// its check, or cannot be executed, changes nothing but a log line.
    private func beginUpgrade() {
        guard !policy.isReloading, upgradeCheck == nil else {
            logger.notice("SIGUSR2: a reload or an upgrade is under way; send it again once it is done")
            return
        }
        let executable = ChildProcess.executable(startedFrom: startedFrom)
        logger.notice("SIGUSR2: checking \(executable) before upgrading in place")
        let events = self.events
        let timeout = max(30, options.workerBootTimeout)
        upgradeCheck = Task { events?.yield(.upgradeChecked(await UpgradeCheck.runOnItsOwnThread(executable, timeout: timeout))) }
    }

    private func execute(upgrade check: UpgradeCheck.Result) {
        guard case .passed(let executable, let version) = check else {
            if case .failed(let reason) = check {
                logger.error("SIGUSR2: not upgrading: \(reason); still serving with the running binary")
                lastReloadReport.withLock {
                    $0 = ReloadReport(generation: policy.generation, outcome: "failed", reason: "upgrade: \(reason)", time: Int(Date().timeIntervalSince1970))
                }
            }
            return
        }
        logger.notice(
            "SIGUSR2: upgrading in place to \(version): the master executes \(executable) (same pid, same sockets); the workers are replaced once the new ones serve"
        )
        notifier?.reloading()
        notifier?.restoreEnvironment()
        busy?.close()
        busy = nil
        setenv(Self.upgradeListenersKey, InheritedListeners.encode(listenerFDs), 1)
        // Every worker this master knows, retiring ones too: the new image reaps them all.
        let running = Array(policy.workers.keys) + inherited + retiringInherited
        setenv(Self.upgradeWorkersKey, running.map { String($0) }.joined(separator: ","), 1)
        setenv(Self.upgradeStatsKey, statsDirectory, 1)
        let reason = ProcessImage.replace(with: executable, keeping: Set(listenerFDs.map(\.1)))
        logger.error("SIGUSR2: cannot execute \(executable) (\(reason)); still serving with the running binary")
        for name in [Self.upgradeListenersKey, Self.upgradeWorkersKey, Self.upgradeStatsKey, "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            unsetenv(name)
        }
        notifier?.send("READY=1")
    }

    /// What an upgraded master inherits: the listeners (protocol, fd) and the previous workers.
    private static func takeUpgrade() -> (listeners: [InheritedListeners.Listener], workers: [pid_t])? {
        guard let listenersText = getenv(upgradeListenersKey).map({ String(cString: $0) }) else { return nil }
        let workersText = getenv(upgradeWorkersKey).map { String(cString: $0) } ?? ""
        unsetenv(upgradeListenersKey)
        unsetenv(upgradeWorkersKey)
        return (InheritedListeners.decode(listenersText) ?? [], workersText.split(separator: ",").compactMap { pid_t($0) })
    }

    /// An upgraded master's inherited workers drain once every slot of the new generation serves.
    private func retireInherited() {
        guard !inherited.isEmpty, policy.isSettled, !policy.isStopping else { return }
        logger.info("upgrade: the new workers serve; the previous ones drain", metadata: ["pids": "\(inherited.sorted())"])
        for pid in inherited { kill(pid, SIGTERM) }
        // Reaped as they leave (``reap()``); no longer counted as this generation's.
        retiringInherited.formUnion(inherited)
        inherited = []
    }
    private var retiringInherited: Set<pid_t> = []

    /// READY=1 once every worker serves (none still starting, no reload under way); the status
    /// line, with WATCHDOG=1 when the unit asks for it, at half the watchdog timeout or every 10 s.
    ///
    /// Under `postern emperor` the status goes every second, with the ``AppReport`` line.
    private func notifySystemd() {
        guard let notifier else { return }
        let interval = min(notifier.watchdogInterval ?? .seconds(10), reportsToEmperor ? .seconds(1) : .seconds(10))
        let statusDue = ContinuousClock.now - lastStatus >= interval
        guard readyDue || statusDue else { return }
        let serving = policy.servingCount
        var status = "STATUS=\(serving) of \(policy.workerCount) workers serving, \(aggregate().total.requests) requests"
        if reportsToEmperor { status += "\n" + AppReport(statusReading()).line }
        if readyDue, policy.isSettled {
            readyDue = false
            notifier.send("READY=1\nMAINPID=\(getpid())\n" + status)
            lastStatus = .now
        } else if statusDue {
            lastStatus = .now
            notifier.send((notifier.watchdogInterval != nil ? "WATCHDOG=1\n" : "") + status)
        }
    }

    /// A booting worker is ready once its first report is in.
    private func noticeReady() {
        for (pid, worker) in policy.workers where worker.state == .booting {
            if FileManager.default.fileExists(atPath: "\(statsDirectory)/\(pid).json") {
                perform(policy.ready(pid, now: .now))
            }
        }
    }

    /// While no worker serves or starts after a successful start (a crash loop's backoff),
    /// connections are answered 503 by the master rather than left waiting. A worker starting
    /// is waited for: its connections wait in the backlog for it.
    private func answerBusy() {
        let due = policy.isWaitingForBackoff && inherited.isEmpty
        if due, busy == nil {
            logger.error("no worker serves: the master answers every connection 503 until one does")
            busy = BusyAnswerer(listeners: listenerFDs, backlog: Int32(options.backlog), logger: logger)
        } else if !due, let answering = busy {
            answering.close()
            busy = nil
            logger.notice("a worker serves again; the master stops answering")
        }
    }

    private func spawn(slot: Int) -> Result<pid_t, any Error> {
        var environment = ProcessInfo.processInfo.environment
        // The worker gets the listeners as 3, 4, …, then the pipe with the session-ticket secret
        // (TLS listeners only), and no other descriptor of the master's.
        let secretPipe = TLSTicketKeys.currentSecret.flatMap { TLSTicketKeys.pipe(holding: $0) }
        defer { if let secretPipe { close(secretPipe) } }
        let passing = listenerFDs.map(\.fd) + (secretPipe.map { [$0] } ?? [])
        let numbers = ChildProcess.passedNumbers(passing.count)
        let passed = zip(listenerFDs, numbers).map { ($0.0.listenerProtocol, $0.1) }
        let variables = WorkerEnvironment.variables(
            slot: slot, listeners: passed, statsDirectory: statsDirectory, ticketSecret: secretPipe == nil ? nil : numbers.last)
        for (key, value) in variables { environment[key] = value }
        let output: ChildOutput
        do {
            output = try ChildOutput()
        } catch {
            return .failure(error)
        }
        do {
            let pid = try ChildProcess.spawn(
                executable: ChildProcess.executable(startedFrom: startedFrom), arguments: Array(CommandLine.arguments.dropFirst()),
                environment: environment, standardError: output.writeEnd, passing: passing)
            output.start()
            outputs[pid] = output
            logger.info("worker started", metadata: ["slot": "\(slot)", "pid": "\(pid)", "generation": "\(policy.generation)"])
            return .success(pid)
        } catch {
            output.discard()
            return .failure(error)
        }
    }

    /// Every 200 ms: the figures the status page keeps between requests (the workers and their
    /// states, the most busy at once, the most connections queued), and `--harakiri`: each
    /// worker's last report judged (``Harakiri``); a stuck worker is killed with SIGKILL
    /// (nothing it runs can be trusted to drain) and replaced.
    private func sample(_ monitor: ListenQueueMonitor) {
        let queued = monitor.sample().reduce(0) { $0 + $1.queued }
        let now = Date().timeIntervalSince1970
        var active = 0
        for (pid, worker) in policy.workers {
            guard let report = Self.readSnapshot("\(statsDirectory)/\(pid).json") else { continue }
            if report.inFlight > 0 { active += 1 }
            // An event loop blocked by the app (a synchronous call) for a tenth of a second: the
            // worker is busy though its CPU is idle.
            if (report.eventLoopStallSeconds ?? 0) >= 0.1 { blockedSinceElastic.insert(pid) }
            guard harakiri.seconds > 0, !worker.killed, worker.state != .retiring, let reason = harakiri.verdict(report, now: now) else { continue }
            policy.markKilled(pid)
            harakiriKills.increment()
            logger.error("harakiri: killing worker \(pid): \(reason) (--harakiri \(Harakiri.format(harakiri.seconds)))", metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
        }
        if active > maxActiveWorkers.load(ordering: .relaxed) { maxActiveWorkers.store(active, ordering: .relaxed) }
        queuedSinceElastic = queuedSinceElastic.map { (min($0.least, queued), max($0.most, queued)) } ?? (queued, queued)
        if elastic.isEnabled, drainEnds == nil, ContinuousClock.now - lastElastic >= .seconds(1) {
            decideElastic()
        }
    }

    /// Once a second, `--workers-min`/`--workers-max`: each worker's CPU over the second and the
    /// accept queues judged (``ElasticWorkers``); the decision logged once and carried out (a
    /// slot added, or the last one retired gracefully). Not while workers boot or a reload runs.
    private func decideElastic() {
        let now = ContinuousClock.now
        let elapsed = max(0.001, (now - lastElastic).inSeconds)
        lastElastic = now
        let queued = queuedSinceElastic ?? (0, 0)
        queuedSinceElastic = nil
        var ticks: [pid_t: Int] = [:]
        var cpu: [Double] = []
        for (pid, worker) in policy.workers where worker.state != .retiring {
            guard let now = ProcessCPU.ticks(of: pid) else { continue }
            ticks[pid] = now
            // Clamped: a pid reused by a new worker within the second reads less than before.
            let used = cpuTicks[pid].map { Double(max(0, now - $0)) / ProcessCPU.ticksPerSecond / elapsed } ?? 0
            cpu.append(blockedSinceElastic.contains(pid) ? max(used, 1) : used)
        }
        cpuTicks = ticks
        blockedSinceElastic = []
        guard policy.isSettled else { return }
        let count = policy.workerCount
        let decision = elastic.observe(workers: count, cpu: cpu, queued: queued, now: now)
        let text: String
        switch decision {
        case .keep:
            return
        case .grow(let added, let reason):
            text = "grow \(added): \(reason)"
            logger.notice("elastic: \(reason); \(added) worker\(added == 1 ? "" : "s") more", metadata: ["workers": "\(count + added)"])
            perform(policy.resize(to: count + added, now: .now))
        case .shrink(let reason):
            text = "shrink: \(reason)"
            logger.notice("elastic: \(reason); one worker fewer", metadata: ["workers": "\(count - 1)"])
            perform(policy.resize(to: count - 1, now: .now))
        }
        elasticReport.withLock { report in
            guard var current = report else { return }
            if case .grow(let added, _) = decision { current.grown += added } else { current.shrunk += 1 }
            current.lastDecision = text
            current.lastDecisionTime = Int(Date().timeIntervalSince1970)
            report = current
        }
    }

    /// Collects exited workers, folds their last counters in, and tells the policy.
    private func reap() {
        // By pid: an upgrade's check process is waited for by its own thread.
        for pid in Array(policy.workers.keys) + inherited + retiringInherited {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { continue }
            let file = "\(statsDirectory)/\(pid).json"
            // Written whole (write, then rename): there is one once the worker has reported.
            let last = Self.readSnapshot(file)
            if let last { retired.add(last) }
            try? FileManager.default.removeItem(atPath: file)
            let output = outputs.removeValue(forKey: pid)
            let exit = ChildExit(waitStatus: status)
            if inherited.remove(pid) != nil || retiringInherited.remove(pid) != nil {
                logger.info("previous worker \(pid) stopped (\(exit))")
                continue
            }
            if last != nil, policy.workers[pid]?.state == .booting {
                // Ready and gone between two ticks (a worker that serves its --max-requests share
                // in under 50 ms): its first report says it was ready, so it left; taken for one
                // that never started, it counted as a crash and the master answered busy.
                perform(policy.ready(pid, now: .now))
            }
            guard let worker = policy.workers[pid] else { continue }
            let clean = exit == .code(0) || worker.state == .retiring || policy.isStopping
            if !policy.isStopping, worker.state != .retiring { restarts.increment() }
            perform(policy.exited(pid, exit, output: clean ? nil : output?.lastLines(waiting: 0.05), now: .now))
        }
    }

    static func readSnapshot(_ path: String) -> StatsSnapshot? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(StatsSnapshot.self, from: data)
    }
}

/// Counters of workers that have left, summed (their gauges are no longer live).
final class StatsAccumulator: Sendable {
    private let state = Mutex(StatsSnapshot())
    var value: StatsSnapshot { state.withLock { $0 } }
    func add(_ snapshot: StatsSnapshot) { state.withLock { $0.add(snapshot, gauges: false) } }
}

/// A counter read from other tasks.
final class ManagedCounter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var current: Int { value.load(ordering: .relaxed) }
}
