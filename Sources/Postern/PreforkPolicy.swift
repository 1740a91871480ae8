import Logging
import PosternCore
import PosternSupervision

#if canImport(Glibc)
import Glibc
#endif

/// The prefork master's decisions as a pure value: which slot to start a worker in, when a
/// reload's new worker takes over from the old one, when a reload has failed, when the master
/// must give up at start (gunicorn's `HaltServer`). The master (``WorkerMaster``) feeds it what
/// happened (a worker spawned, ready, exited; a tick of the clock; a signal) and performs the
/// actions it returns; time is given, never read, so every decision is tested with a fake clock.
///
/// `--workers N` is N slots. A slot holds one current worker and, during a reload, at most one
/// successor:
/// ```
///  SIGHUP ─► successor spawned ─► ready within --worker-boot-timeout ─► current retired (SIGTERM)
///                               └► exits, or the timeout passes ─► reload failed: every
///                                  successor still booting is stopped; the current workers serve on
/// ```
/// So a reload never retires a worker before its replacement serves, a broken binary or
/// configuration costs nothing but a log line, and after any sequence of reloads, crashes and
/// failed reloads there are exactly N current workers (retiring ones drain and leave).
///
/// At start (no worker has served yet) a worker that exits with a configuration error
/// (`EX_USAGE` 64, `EX_CONFIG` 78) or `bootAttempts` boot failures in a row stop the master
/// with the reason. After a successful start a crashing worker is replaced with a backoff:
/// a crash within `crashWindow` of its start doubles the delay (`backoff`, a
/// ``RestartBackoff``); a worker that lived longer resets it.
struct PreforkPolicy {
    typealias Instant = ContinuousClock.Instant

    struct Settings: Sendable {
        var workers: Int
        /// A new worker must report ready (listening, the app made) within this long.
        var bootTimeout: Duration = .seconds(30)
        /// In-flight requests' time to finish on a stop, before SIGKILL (plus 5 s).
        var gracefulTimeout: Duration = .seconds(30)
        var crashWindow: Duration = .seconds(2)
        /// A crash loop's delay before each start: 100 ms, doubled up to 10 s.
        var backoff = RestartBackoff(start: .milliseconds(100), maximum: .seconds(10))
        /// Boot failures in a row, before any worker served, that stop the master.
        var bootAttempts = 3
    }

    /// How a worker process ended.
    typealias Exit = ChildExit

    enum Action: Equatable, Sendable {
        /// Start a worker in `slot`; the master answers with ``spawned(_:slot:successor:now:)``
        /// or ``spawnFailed(slot:successor:reason:now:)``.
        case spawn(slot: Int, successor: Bool)
        /// SIGTERM: drain and leave.
        case terminate(pid_t)
        /// SIGKILL: it cannot be trusted to drain.
        case kill(pid_t)
        case log(Logger.Level, String)
        /// A reload ended, either way (systemd hears READY=1 again; the status page shows it).
        case reloadFinished(ReloadOutcome)
        /// The master stops, with this reason and a non-zero exit status.
        case halt(String)
    }

    enum ReloadOutcome: Equatable, Sendable {
        case succeeded(generation: Int)
        case failed(generation: Int, reason: String)
    }

    enum State: String, Sendable {
        /// Started, not ready yet.
        case booting
        case serving
        /// Told to drain (SIGTERM sent); not counted in its slot any more.
        case retiring
    }

    struct Worker: Equatable, Sendable {
        let slot: Int
        let started: Instant
        var state: State
        /// Killed by `--harakiri`: replaced at once, not counted as a crash.
        var killed = false
        /// Killed for not being ready within the boot timeout.
        var bootTimedOut = false
    }

    struct Slot: Equatable, Sendable {
        var current: pid_t?
        var successor: pid_t?
        /// A start due at this time (after a crash's backoff), when there is no current worker.
        var startAt: Instant?
    }

    enum Phase: Equatable, Sendable {
        /// No worker has been ready yet.
        case starting
        case running
        case stopping(deadline: Instant)
    }

    private(set) var settings: Settings
    private(set) var workers: [pid_t: Worker] = [:]
    private(set) var slots: [Slot]
    private(set) var phase = Phase.starting
    /// Bumped by each reload; the workers a reload starts carry it.
    private(set) var generation = 0
    /// The generation of the reload under way (its successors booting).
    private(set) var reload: Int?
    private(set) var lastReload: ReloadOutcome?
    private(set) var crashes = 0
    /// The last worker that died unasked (its pid, exit, life and last output), for the status
    /// page while a crash loop lasts; cleared when a worker lives past the crash window.
    private(set) var lastCrash: String?
    private(set) var bootFailures = 0

    init(settings: Settings) {
        self.settings = settings
        slots = Array(repeating: Slot(), count: max(1, settings.workers))
    }

    /// Workers that serve now (current or successor, not retiring).
    var servingCount: Int { workers.values.filter { $0.state == .serving }.count }
    /// The configured number of workers.
    var workerCount: Int { slots.count }
    var isReloading: Bool { reload != nil }
    var isStopping: Bool { if case .stopping = phase { true } else { false } }
    /// Stopping, and every worker gone.
    var isDone: Bool { isStopping && workers.isEmpty }
    /// After a successful start, no worker serves or starts: every slot waits out a crash
    /// loop's backoff (the master answers connections busy meanwhile).
    var isWaitingForBackoff: Bool { phase == .running && workers.values.allSatisfy { $0.state == .retiring } }
    /// Every slot's current worker serves and no reload is under way (systemd's READY=1).
    var isSettled: Bool { reload == nil && slots.allSatisfy { $0.current.map { workers[$0]?.state == .serving } ?? false } }

    // MARK: Events

    /// An upgraded master: the previous generation serves, so a new worker that cannot start is
    /// retried with a backoff, never a reason to stop.
    mutating func assumeRunning() {
        if phase == .starting { phase = .running }
    }

    /// The master starts: one worker per slot.
    func start() -> [Action] {
        slots.indices.map { .spawn(slot: $0, successor: false) }
    }

    mutating func spawned(_ pid: pid_t, slot: Int, successor: Bool, now: Instant) -> [Action] {
        guard slots.indices.contains(slot), !isStopping, !successor || reload != nil else {
            // Its slot is gone, the master stops, or its reload has already failed (another
            // successor of the same batch could not start): it drains at once, and is reaped.
            workers[pid] = Worker(slot: slot, started: now, state: .retiring)
            return [.terminate(pid)]
        }
        workers[pid] = Worker(slot: slot, started: now, state: .booting)
        if successor {
            slots[slot].successor = pid
        } else {
            slots[slot].current = pid
            slots[slot].startAt = nil
        }
        return []
    }

    mutating func spawnFailed(slot: Int, successor: Bool, reason: String, now: Instant) -> [Action] {
        if successor { return failReload("a new worker could not be started: \(reason)") }
        if phase == .starting {
            bootFailures += 1
            if bootFailures >= settings.bootAttempts { return [.halt("workers cannot be started: \(reason)")] }
        }
        return [.log(.error, "worker did not start: \(reason)")] + scheduleStart(slot: slot, crashed: true, now: now)
    }

    /// The worker has reported ready (its listeners are up, its app made).
    mutating func ready(_ pid: pid_t, now: Instant) -> [Action] {
        guard var worker = workers[pid], worker.state == .booting, !worker.bootTimedOut, !worker.killed else { return [] }
        worker.state = .serving
        workers[pid] = worker
        var actions: [Action] = []
        if phase == .starting {
            phase = .running
            bootFailures = 0
        }
        if crashes == 0 { lastCrash = nil }
        if slots.indices.contains(worker.slot), slots[worker.slot].successor == pid {
            if let old = slots[worker.slot].current { actions += retire(old) }
            slots[worker.slot].current = pid
            slots[worker.slot].successor = nil
            if let reload, !slots.contains(where: { $0.successor != nil }) {
                self.reload = nil
                let outcome = ReloadOutcome.succeeded(generation: reload)
                lastReload = outcome
                actions += [.log(.notice, "reload: every worker replaced (generation \(reload))"), .reloadFinished(outcome)]
            }
        }
        return actions
    }

    /// A worker process has ended. `output`: its last lines on standard error, when known.
    mutating func exited(_ pid: pid_t, _ exit: Exit, output: String? = nil, now: Instant) -> [Action] {
        guard let worker = workers.removeValue(forKey: pid) else { return [] }
        let said = output.map { $0.isEmpty ? "" : "; its last output: \($0)" } ?? ""
        if worker.state == .retiring || isStopping {
            return [.log(.info, "worker \(pid) stopped (\(exit))")]
        }
        guard slots.indices.contains(worker.slot) else { return [] }
        if slots[worker.slot].successor == pid {
            slots[worker.slot].successor = nil
            let how = worker.bootTimedOut ? "was not ready within --worker-boot-timeout" : "exited (\(exit)) before it was ready"
            return failReload("the new worker \(pid) \(how)\(said)")
        }
        guard slots[worker.slot].current == pid else { return [] }
        slots[worker.slot].current = nil
        var actions: [Action] = []
        if let successor = slots[worker.slot].successor {
            // The new worker of a reload takes the slot over as it is.
            slots[worker.slot].current = successor
            slots[worker.slot].successor = nil
            actions.append(.log(.error, "worker \(pid) died (\(exit)); its slot's new worker \(successor) takes over\(said)"))
            if let reload, !slots.contains(where: { $0.successor != nil }) {
                self.reload = nil
                lastReload = .succeeded(generation: reload)
                actions.append(.reloadFinished(.succeeded(generation: reload)))
            }
            return actions
        }
        if phase == .starting && worker.state == .booting {
            bootFailures += 1
            let how = worker.bootTimedOut ? "was not ready within --worker-boot-timeout" : "exited (\(exit)) before it was ready"
            if exit.isConfigurationError {
                return [.halt("a worker \(how): a configuration error; not starting again\(said)")]
            }
            if bootFailures >= settings.bootAttempts {
                return [
                    .halt(
                        "workers cannot start: \(bootFailures) in a row \(worker.bootTimedOut ? "were not ready in time" : "exited before they were ready"); the last: \(exit)\(said)"
                    )
                ]
            }
            return [.log(.error, "worker \(pid) \(how)\(said)")] + scheduleStart(slot: worker.slot, crashed: true, now: now)
        }
        if worker.killed {
            return [.log(.notice, "worker killed by --harakiri; replacing it (pid \(pid))")] + scheduleStart(slot: worker.slot, crashed: false, now: now)
        }
        if exit == .code(0) && worker.state == .serving {
            return [.log(.info, "worker left (its --max-requests served, or recycled); replacing it (pid \(pid))")]
                + scheduleStart(slot: worker.slot, crashed: false, now: now)
        }
        let lived = now - worker.started
        // One that never became ready is a crash however long it took (and whatever its code).
        let crashed = lived <= settings.crashWindow || worker.state == .booting
        if !crashed { crashes = 0 }
        let death = "worker died; replacing it (pid \(pid), \(exit), after \(lived.formattedSeconds) s)\(said)"
        lastCrash = death
        actions.append(.log(.error, death))
        return actions + scheduleStart(slot: worker.slot, crashed: crashed, now: now)
    }

    /// SIGHUP: a successor for every worker (a booting one has read the old configuration too). `workers`: the configuration's count, when
    /// it changed. A reload under way is replaced by this one (its booting workers stopped).
    mutating func beginReload(workers count: Int? = nil, now: Instant) -> [Action] {
        guard !isStopping else { return [] }
        var actions: [Action] = []
        for index in slots.indices {
            if let pid = slots[index].successor {
                slots[index].successor = nil
                actions += retire(pid)
            }
        }
        // A reload under way is replaced by this one, not finished.
        reload = nil
        if let count, count != slots.count { actions += resize(to: count, now: now) }
        generation += 1
        crashes = 0
        for index in slots.indices {
            if slots[index].current != nil {
                // Serving or still booting, it runs the old binary and configuration.
                actions.append(.spawn(slot: index, successor: true))
            } else {
                // A slot in a crash loop's backoff: the new binary or file is tried at once.
                slots[index].startAt = now
            }
        }
        if actions.contains(where: { if case .spawn(_, true) = $0 { true } else { false } }) {
            reload = generation
        } else {
            reload = nil
            lastReload = .succeeded(generation: generation)
            actions.append(.reloadFinished(.succeeded(generation: generation)))
        }
        return actions
    }

    /// SIGTTIN, SIGTTOU, or a reload's new count: slots added (started at once) or removed
    /// from the end (their workers drain). Never fewer than one.
    mutating func resize(to count: Int, now: Instant) -> [Action] {
        let count = max(1, count)
        var actions: [Action] = []
        while slots.count > count {
            let slot = slots.removeLast()
            for pid in [slot.current, slot.successor].compactMap({ $0 }) { actions += retire(pid) }
        }
        while slots.count < count {
            slots.append(Slot())
            actions.append(.spawn(slot: slots.count - 1, successor: false))
        }
        settings.workers = count
        if let reload, !slots.contains(where: { $0.successor != nil }) {
            self.reload = nil
            lastReload = .succeeded(generation: reload)
            actions.append(.reloadFinished(.succeeded(generation: reload)))
        }
        return actions
    }

    /// `--harakiri` killed it: its exit is no crash.
    mutating func markKilled(_ pid: pid_t) {
        workers[pid]?.killed = true
    }

    /// SIGTERM, SIGINT, SIGQUIT: every worker drains; past the deadline they are killed.
    mutating func stop(now: Instant) -> [Action] {
        guard !isStopping else { return [] }
        phase = .stopping(deadline: now + settings.gracefulTimeout + .seconds(5))
        reload = nil
        for index in slots.indices { slots[index].startAt = nil }
        return workers.keys.sorted().map { .terminate($0) }
    }

    /// The clock: due starts, boot deadlines, the stop's deadline.
    mutating func tick(now: Instant) -> [Action] {
        if case .stopping(let deadline) = phase {
            guard now > deadline, !workers.isEmpty else { return [] }
            phase = .stopping(deadline: now + .seconds(3600))
            return [.log(.error, "workers still running after --graceful-timeout; killing them: \(workers.keys.sorted())")]
                + workers.keys.sorted().map { .kill($0) }
        }
        var actions: [Action] = []
        if crashes > 0,
            slots.allSatisfy({ slot in
                slot.current.flatMap { workers[$0] }.map { $0.state == .serving && now - $0.started > settings.crashWindow } ?? false
            })
        {
            // Every slot has a worker that has outlived the crash window: the loop is over.
            crashes = 0
            lastCrash = nil
        }
        for (pid, worker) in workers.sorted(by: { $0.key < $1.key }) where worker.state == .booting && !worker.bootTimedOut {
            guard now - worker.started > settings.bootTimeout else { continue }
            workers[pid]?.bootTimedOut = true
            actions.append(.kill(pid))
        }
        for index in slots.indices {
            guard slots[index].current == nil, let at = slots[index].startAt, at <= now else { continue }
            slots[index].startAt = nil
            actions.append(.spawn(slot: index, successor: false))
        }
        return actions
    }

    // MARK: Steps

    private mutating func retire(_ pid: pid_t) -> [Action] {
        guard workers[pid] != nil, workers[pid]?.state != .retiring else { return [] }
        workers[pid]?.state = .retiring
        return [.terminate(pid)]
    }

    /// The reload under way has failed: its successors still booting are stopped; the current
    /// workers serve on.
    private mutating func failReload(_ reason: String) -> [Action] {
        guard let reload else { return [.log(.error, reason)] }
        var actions: [Action] = []
        for index in slots.indices {
            if let pid = slots[index].successor {
                slots[index].successor = nil
                actions += retire(pid)
            }
        }
        self.reload = nil
        let outcome = ReloadOutcome.failed(generation: reload, reason: reason)
        lastReload = outcome
        return [.log(.error, "reload failed: \(reason); the running workers serve on")] + actions + [.reloadFinished(outcome)]
    }

    private mutating func scheduleStart(slot: Int, crashed: Bool, now: Instant) -> [Action] {
        guard !isStopping, slots.indices.contains(slot) else { return [] }
        guard crashed else {
            slots[slot].startAt = now
            return []
        }
        crashes += 1
        let delay = settings.backoff.delay(afterCrashes: crashes)
        slots[slot].startAt = now + delay
        return [.log(.error, "crash loop: backing off \(delay.formattedSeconds) s before the next start (slot \(slot), \(crashes) in a row)")]
    }
}

extension Duration {
    /// Seconds with one decimal, for log lines.
    var formattedSeconds: String {
        String((inSeconds * 10).rounded() / 10)
    }
}
