import Foundation
import Logging
import PosternCore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The master of `--workers N`: binds every listener itself, starts N workers that inherit the
/// sockets, and supervises them.
///
/// - A worker that exits is replaced. An exit 0 (its `--max-requests` share served) is replaced
///   at once; a crash (non-zero exit, a signal) after less than 2 s of life counts as a crash
///   loop and the next start backs off exponentially (0.1 s doubling, at most 10 s), logged.
/// - SIGHUP reloads: N new workers start (re-executing the binary), and once they have bound
///   their inherited listeners the old ones get SIGTERM and drain. The listening sockets stay open
///   here the whole time, so connections wait in the backlog and none is refused.
/// - SIGTERM/SIGINT: every worker gets SIGTERM and drains (in-flight requests finish, up to
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
    private var workers: [pid_t: Worker] = [:]
    private var pendingStarts: [(slot: Int, at: ContinuousClock.Instant)] = []
    private var crashes = 0
    private var reloading: (old: [pid_t], new: [pid_t], deadline: ContinuousClock.Instant)?
    private var stopDeadline: ContinuousClock.Instant?
    /// systemd's `NOTIFY_SOCKET`, when the master runs as a `Type=notify` service.
    private let notifier: SystemdNotifier?
    /// READY=1 is due once the workers serve (at start, and after each reload).
    private var readyDue = true
    private var lastStatus = ContinuousClock.now
    /// The listener settings at start, to tell a reload that changes them.
    private let initialBound: [String: [String]]
    /// The binary's path as started (``WorkerProcess/startedFrom(_:environment:)``).
    private let startedFrom: String?
    /// `--workers`, then moved by SIGTTIN and SIGTTOU.
    private var workerCount: Int
    private var listenerFDs: [(String, Int32)] = []
    let restarts = ManagedCounter()

    struct Worker {
        let slot: Int
        let started: ContinuousClock.Instant
        var retiring: Bool
        /// Killed by `--harakiri`: replaced at once, not counted as a crash.
        var killed = false
    }
    let harakiriKills = ManagedCounter()
    private let harakiri: Harakiri
    private var lastSample = ContinuousClock.now
    private let startTime = Date().timeIntervalSince1970
    /// For the status page, read from its own thread: the live workers (retiring or not), the
    /// accept queues, the most workers seen busy at once.
    private let published = Mutex<(workers: [pid_t: Bool], listen: ListenQueueMonitor?)>(([:], nil))
    private let maxActiveWorkers = Atomic<Int>(0)

    init(options: ServeOptions, specs: [ListenerSpec], logger: Logger, notifier: SystemdNotifier? = nil) throws {
        self.notifier = notifier
        self.options = options
        self.harakiri = Harakiri(seconds: options.harakiri)
        self.specs = specs
        self.workerCount = options.workers
        self.startedFrom = WorkerProcess.startedFrom(environment: ProcessInfo.processInfo.environment)
        var bound: [String: [String]] = [:]
        for name in Self.boundAtStart { bound[name] = ServeConfiguration.setting(name, in: ServeConfiguration.settings)?.values ?? [] }
        self.initialBound = bound
        var master = logger
        master[metadataKey: "role"] = "master"
        self.logger = master
        if let inherited = getenv(Self.upgradeStatsKey).map({ String(cString: $0) }) {
            // An upgraded master keeps the directory: the previous workers still report there.
            unsetenv(Self.upgradeStatsKey)
            self.statsDirectory = inherited
        } else {
            var template = Array("/tmp/postern-run-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw ServeError("cannot create the run directory: \(String(cString: strerror(errno)))") }
            self.statsDirectory = String(cString: made)
        }
        // Workers running as --user write their counters here.
        try Privileges.giveToUser(statsDirectory, options)
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
        let (known, listen) = published.withLock { ($0.workers, $0.listen) }
        var workers = live.filter { known[$0.pid] != nil }.map { snapshot in
            WorkerStatus(snapshot, state: known[snapshot.pid] == true ? "retiring" : nil)
        }
        for (pid, retiring) in known where !live.contains(where: { $0.pid == pid }) {
            var starting = StatsSnapshot()
            starting.pid = pid
            workers.append(WorkerStatus(starting, state: retiring ? "retiring" : "starting"))
        }
        return StatusReading(
            total: total, workers: workers.sorted { $0.pid < $1.pid }, restarts: restarts.current, harakiriKills: harakiriKills.current,
            maxActiveWorkers: maxActiveWorkers.load(ordering: .relaxed), listeners: listen?.sample() ?? [], startTime: startTime)
    }

    /// Supervises until SIGTERM/SIGINT have stopped every worker; returns the exit status.
    func run(status: GatewayServer?) async throws -> Int32 {
        let upgrade = Self.takeUpgrade()
        if let upgrade {
            // Executed again by SIGUSR2: the sockets are already open, the old workers still run.
            listenerFDs = upgrade.listeners
            logger.notice("upgraded in place: the sockets kept, the previous workers drain once new ones serve", metadata: ["previous": "\(upgrade.workers.sorted())"])
        } else {
            for spec in specs {
                let fd = try ListeningSocket.open(spec, backlog: Int32(options.backlog))
                if case .unix(let path) = spec.address { try Privileges.ownSocket(path, options) }
                listenerFDs.append((spec.gatewayProtocol.rawValue, fd))
                logger.info("listening", metadata: ["protocol": "\(spec.gatewayProtocol)", "address": "\(spec.address)", "fd": "\(fd)"])
            }
        }
        let monitor = ListenQueueMonitor(listenerFDs)
        published.withLock { $0.listen = monitor }
        // The master stays who started it (to bind again and start workers); workers drop to --user.
        if let path = options.pidFile { try Privileges.writePIDFile(path) }
        defer { if let path = options.pidFile { Privileges.removePIDFile(path) } }
        let (events, continuation) = AsyncStream<Event>.makeStream()
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let more = SignalEvents.stream([SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU])
        let statusGroup = status.map { ServiceGroup(services: [$0], logger: logger) }
        let exitCode = await withTaskGroup(of: Void.self) { group -> Int32 in
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
            var started: [pid_t] = []
            for slot in 0..<workerCount {
                if let pid = start(slot: slot) { started.append(pid) }
            }
            if let upgrade, !upgrade.workers.isEmpty {
                for pid in upgrade.workers { workers[pid] = Worker(slot: -1, started: .now, retiring: true) }
                reloading = (upgrade.workers, started, .now + .seconds(10))
            }
            for await event in events {
                switch event {
                case .signal(let signal):
                    if signal == .sighup, stopDeadline == nil, !(await rereadConfiguration()) { continue }
                    handle(signal)
                case .otherSignal(let number):
                    handle(number)
                case .tick:
                    reap()
                    if stopDeadline != nil {
                        if workers.isEmpty { break }
                        if let deadline = stopDeadline, ContinuousClock.now > deadline {
                            logger.error("workers still running after --graceful-timeout; killing them", metadata: ["pids": "\(workers.keys.sorted())"])
                            for pid in workers.keys { kill(pid, SIGKILL) }
                            stopDeadline = .now + .seconds(3600)
                        }
                    } else {
                        startDue()
                        advanceReload()
                        notifySystemd()
                    }
                    if ContinuousClock.now - lastSample >= .milliseconds(200) {
                        lastSample = .now
                        sample(monitor)
                    }
                }
                if stopDeadline != nil && workers.isEmpty { break }
            }
            await statusGroup?.triggerGracefulShutdown()
            group.cancelAll()
            return 0
        }
        continuation.finish()
        for (_, fd) in listenerFDs { close(fd) }
        for spec in specs {
            if case .unix(let path) = spec.address { try? UnixSocketFile.remove(path: path) }
        }
        try? FileManager.default.removeItem(atPath: statsDirectory)
        logger.info("stopped")
        return exitCode
    }

    enum Event: Sendable {
        case signal(UnixSignal)
        case otherSignal(Int32)
        case tick
    }

    /// SIGHUP, before the reload: the configuration file (and environment) read again. The new
    /// workers read it themselves as they start, so timeouts, limits, logs and the app's options
    /// change with them; the master applies `workers`; the listeners it bound at start stay, and
    /// a change to them is logged as needing a restart. A file with an error stops the reload
    /// (new workers could not start with it): false.
    private func rereadConfiguration() async -> Bool {
        guard let result = await ServeConfiguration.reread() else { return true }
        let settings: [ServeConfiguration.Setting]
        switch result {
        case .failure(let error):
            logger.error("SIGHUP: not reloading: the configuration has an error; the workers keep running as they are", metadata: ["error": "\(error)"])
            return false
        case .success(let read):
            settings = read
        }
        if let setting = ServeConfiguration.setting("workers", in: settings), setting.source != .commandLine {
            let wanted = max(1, Int(setting.values.first ?? "") ?? 1)
            if wanted != workerCount {
                logger.notice("SIGHUP: workers \(workerCount) → \(wanted) (\(setting.source))")
                workerCount = wanted
            }
        }
        for name in Self.boundAtStart {
            let now = ServeConfiguration.setting(name, in: settings)?.values ?? []
            if now != initialBound[name] ?? [] {
                logger.warning("SIGHUP: \(name) changed in the configuration; the master binds listeners at start: restart to apply it")
            }
        }
        return true
    }

    /// The options the master applies once, when it binds.
    static let boundAtStart = ["http", "fastcgi", "scgi", "uwsgi", "socket-mode", "backlog"]

    /// SIGQUIT stops gracefully, as SIGTERM; SIGUSR1 goes to every worker (each reopens its
    /// logs); SIGTTIN and SIGTTOU add and remove a worker (gunicorn's signals; never fewer than
    /// one); SIGUSR2 upgrades in place (``upgrade()``).
    private func handle(_ number: Int32) {
        let name = SignalEvents.name(number)
        guard stopDeadline == nil else { return }
        switch number {
        case SIGQUIT:
            handle(UnixSignal.sigquit)
        case SIGUSR1:
            ServingProcessSignals.reopenLogs(nil, logger)
            logger.notice("\(name): the workers reopen their logs", metadata: ["pids": "\(workers.keys.sorted())"])
            for pid in workers.keys { kill(pid, SIGUSR1) }
        case SIGTTIN:
            workerCount += 1
            logger.notice("\(name): one worker more", metadata: ["workers": "\(workerCount)"])
            start(slot: workerCount - 1)
        case SIGTTOU:
            guard workerCount > 1 else {
                logger.notice("\(name): ignored; one worker is the fewest")
                return
            }
            workerCount -= 1
            logger.notice("\(name): one worker fewer", metadata: ["workers": "\(workerCount)"])
            pendingStarts.removeAll { $0.slot >= workerCount }
            for (pid, worker) in workers where worker.slot >= workerCount && !worker.retiring {
                workers[pid]?.retiring = true
                kill(pid, SIGTERM)
            }
        case SIGUSR2:
            upgrade()
        default:
            logger.notice("\(name): ignored")
        }
    }

    static let upgradeListenersKey = "POSTERN_UPGRADE_LISTENERS"
    static let upgradeWorkersKey = "POSTERN_UPGRADE_WORKERS"
    static let upgradeStatsKey = "POSTERN_UPGRADE_STATS"

    /// SIGUSR2, an in-place upgrade (nginx's binary upgrade, in one step): the master executes
    /// the binary now at the path it was started from, in its own process, so its pid (what
    /// systemd and the pid file track) and its listening sockets stay; the new image finds the
    /// sockets and the old workers in its environment, starts new workers, and drains the old
    /// ones once the new serve, as a reload does. Connections meanwhile wait in the sockets'
    /// backlogs: none is refused. If the binary cannot be executed, nothing changes.
    private func upgrade() {
        guard reloading == nil else {
            logger.notice("SIGUSR2: a reload is under way; send it again once it is done")
            return
        }
        let executable = WorkerProcess.executable(startedFrom: startedFrom)
        logger.notice("SIGUSR2: upgrading in place: the master executes \(executable) (same pid, same sockets); the workers are replaced")
        notifier?.reloading()
        notifier?.restoreEnvironment()
        setenv(Self.upgradeListenersKey, listenerFDs.map { "\($0.0)=\($0.1)" }.joined(separator: ","), 1)
        setenv(Self.upgradeWorkersKey, workers.keys.map { String($0) }.joined(separator: ","), 1)
        setenv(Self.upgradeStatsKey, statsDirectory, 1)
        let reason = ProcessImage.replace(with: executable, keeping: Set(listenerFDs.map(\.1)))
        logger.error("SIGUSR2: cannot execute \(executable) (\(reason)); still serving with the running binary")
        for name in [Self.upgradeListenersKey, Self.upgradeWorkersKey, Self.upgradeStatsKey, "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] { unsetenv(name) }
        notifier?.send("READY=1")
    }

    /// What an upgraded master inherits: the listeners (protocol, fd) and the previous workers.
    private static func takeUpgrade() -> (listeners: [(String, Int32)], workers: [pid_t])? {
        guard let listenersText = getenv(upgradeListenersKey).map({ String(cString: $0) }) else { return nil }
        let workersText = getenv(upgradeWorkersKey).map { String(cString: $0) } ?? ""
        unsetenv(upgradeListenersKey)
        unsetenv(upgradeWorkersKey)
        let listeners: [(String, Int32)] = listenersText.split(separator: ",").compactMap { entry in
            let parts = entry.split(separator: "=")
            guard parts.count == 2, let fd = Int32(parts[1]) else { return nil }
            return (String(parts[0]), fd)
        }
        return (listeners, workersText.split(separator: ",").compactMap { pid_t($0) })
    }

    private func handle(_ signal: UnixSignal) {
        switch signal {
        case .sighup:
            guard stopDeadline == nil else { return }
            logger.notice("SIGHUP: reloading; new workers start, the old ones drain")
            notifier?.reloading()
            readyDue = true
            let old = workers.filter { !$0.value.retiring }.map(\.key)
            for pid in old { workers[pid]?.retiring = true }
            var new: [pid_t] = []
            for slot in 0..<workerCount {
                if let pid = start(slot: slot) { new.append(pid) }
            }
            reloading = (old + (reloading?.old ?? []), new, .now + .seconds(10))
        default:
            guard stopDeadline == nil else { return }
            logger.notice("\(signal): graceful stop; workers drain", metadata: ["graceful-timeout": "\(options.gracefulTimeout)"])
            notifier?.send("STOPPING=1\nSTATUS=stopping: workers drain")
            stopDeadline = .now + .milliseconds(Int64(options.gracefulTimeout * 1000)) + .seconds(5)
            pendingStarts.removeAll()
            for pid in workers.keys { kill(pid, SIGTERM) }
        }
    }

    /// READY=1 once every worker serves (none still starting, no reload under way); the status
    /// line, with WATCHDOG=1 when the unit asks for it, at half the watchdog timeout or every 10 s.
    private func notifySystemd() {
        guard let notifier else { return }
        let interval = notifier.watchdogInterval ?? .seconds(10)
        let statusDue = ContinuousClock.now - lastStatus >= interval
        guard readyDue || statusDue else { return }
        let serving = workers.filter { !$0.value.retiring && FileManager.default.fileExists(atPath: "\(statsDirectory)/\($0.key).json") }.count
        let status = "STATUS=\(serving) of \(workerCount) workers serving, \(aggregate().total.requests) requests"
        if readyDue, reloading == nil, serving >= workerCount {
            readyDue = false
            notifier.send("READY=1\nMAINPID=\(getpid())\n" + status)
            lastStatus = .now
        } else if statusDue {
            lastStatus = .now
            notifier.send((notifier.watchdogInterval != nil ? "WATCHDOG=1\n" : "") + status)
        }
    }

    /// Once the new generation is listening (or after 10 s), the old one drains.
    private func advanceReload() {
        guard let reload = reloading else { return }
        let ready = reload.new.allSatisfy { FileManager.default.fileExists(atPath: "\(statsDirectory)/\($0).json") || workers[$0] == nil }
        guard ready || ContinuousClock.now > reload.deadline else { return }
        for pid in reload.old where workers[pid] != nil { kill(pid, SIGTERM) }
        logger.info("reload: the previous workers drain", metadata: ["pids": "\(reload.old.sorted())"])
        reloading = nil
    }

    @discardableResult
    private func start(slot: Int) -> pid_t? {
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in WorkerEnvironment.variables(slot: slot, listeners: listenerFDs, statsDirectory: statsDirectory) {
            environment[key] = value
        }
        InheritedDescriptors.closeOnExec(except: Set(listenerFDs.map(\.1)))
        do {
            let pid = try WorkerProcess.spawn(executable: WorkerProcess.executable(startedFrom: startedFrom), arguments: Array(CommandLine.arguments.dropFirst()), environment: environment)
            workers[pid] = Worker(slot: slot, started: .now, retiring: false)
            logger.info("worker started", metadata: ["slot": "\(slot)", "pid": "\(pid)"])
            return pid
        } catch {
            logger.error("worker did not start; retrying", metadata: ["slot": "\(slot)", "error": "\(error)"])
            scheduleStart(slot: slot, crashed: true)
            return nil
        }
    }

    private func startDue() {
        let now = ContinuousClock.now
        let due = pendingStarts.filter { $0.at <= now }
        pendingStarts.removeAll { $0.at <= now }
        for entry in due { start(slot: entry.slot) }
    }

    private func scheduleStart(slot: Int, crashed: Bool) {
        var delay = Duration.zero
        if crashed {
            crashes += 1
            delay = min(.milliseconds(100) * (1 << min(crashes - 1, 10)), .seconds(10))
            logger.error("crash loop: backing off before the next start", metadata: ["slot": "\(slot)", "delay": "\(delay)", "consecutive": "\(crashes)"])
        }
        pendingStarts.append((slot, .now + delay))
    }

    /// Every 200 ms: the figures the status page keeps between requests (the workers and their
    /// states, the most busy at once, the most connections queued), and `--harakiri`: each
    /// worker's last report judged (``Harakiri``); a stuck worker is killed with SIGKILL
    /// (nothing it runs can be trusted to drain) and replaced.
    private func sample(_ monitor: ListenQueueMonitor) {
        _ = monitor.sample()
        let known = workers.mapValues(\.retiring)
        published.withLock { $0.workers = known }
        let now = Date().timeIntervalSince1970
        var active = 0
        for (pid, worker) in workers {
            guard let report = Self.readSnapshot("\(statsDirectory)/\(pid).json") else { continue }
            if report.inFlight > 0 { active += 1 }
            guard harakiri.seconds > 0, !worker.killed, let reason = harakiri.verdict(report, now: now) else { continue }
            workers[pid]?.killed = true
            harakiriKills.increment()
            logger.error("harakiri: killing worker \(pid): \(reason) (--harakiri \(Harakiri.format(harakiri.seconds)))", metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
        }
        if active > maxActiveWorkers.load(ordering: .relaxed) { maxActiveWorkers.store(active, ordering: .relaxed) }
    }

    /// Collects exited workers, folds their last counters in, and replaces them.
    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return }
            guard let worker = workers.removeValue(forKey: pid) else { continue }
            let file = "\(statsDirectory)/\(pid).json"
            if let last = Self.readSnapshot(file) { retired.add(last) }
            try? FileManager.default.removeItem(atPath: file)
            let exitedNormally = (status & 0x7f) == 0
            let code = (status >> 8) & 0xff
            let clean = exitedNormally && code == 0
            let description = exitedNormally ? "exit \(code)" : "signal \(status & 0x7f)"
            if stopDeadline != nil || worker.retiring {
                logger.info("worker stopped", metadata: ["pid": "\(pid)", "status": "\(description)"])
                continue
            }
            restarts.increment()
            if worker.killed {
                logger.notice("worker killed by --harakiri; replacing it", metadata: ["pid": "\(pid)"])
                scheduleStart(slot: worker.slot, crashed: false)
                continue
            }
            if clean {
                logger.info("worker left (its --max-requests served); replacing it", metadata: ["pid": "\(pid)"])
                scheduleStart(slot: worker.slot, crashed: false)
            } else {
                let lived = ContinuousClock.now - worker.started
                logger.error("worker died; replacing it", metadata: ["pid": "\(pid)", "status": "\(description)", "lived": "\(lived)"])
                if lived > .seconds(2) { crashes = 0 }
                scheduleStart(slot: worker.slot, crashed: lived <= .seconds(2))
            }
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
