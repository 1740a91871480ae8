import Logging
import PosternCore
import PosternSupervision

#if canImport(Glibc)
import Glibc
#endif

/// What `postern emperor` does with its apps, decided as pure values: events in (a file found,
/// changed or removed, a check's verdict, a process started, ready or gone, the clock), actions
/// out (check, spawn, reload, signal, release, log). The emperor's loop carries the actions
/// out; the tests drive this with a fake clock and no process.
///
/// ```
///  file found ─► waiting ─► checking (--check-config) ─► starting ─► ready ◄──────────┐
///                   ▲            │ fails: config_error        │ exits quickly          │
///                   └─ backoff ◄─┴────────────────────────────┘ (1 s, doubling)       │
///  file changed (ready) ─► check ─► same listeners: reloading (SIGHUP) ─► READY=1 ─────┤
///                                 └► other listeners: restarting (SIGTERM, then spawn) ─┘
///  file removed, or the emperor stops ─► stopping (SIGTERM) ─► gone: sockets released
///  on demand: checked ─► idle (sockets open, no process) ─► a connection ─► starting ─► ready
///             ready ─► exit 0 (its --idle-exit) ─► idle
/// ```
/// Each app moves alone: an event of one never touches another's process. At most
/// ``Settings/maxStarting`` apps check or start at once, and none waits for a throttle at the
/// emperor's start (uWSGI's Emperor throttled its own boot: uwsgi#774).
package struct EmperorPolicy: Sendable {
    package typealias Instant = ContinuousClock.Instant

    package struct Settings: Sendable {
        /// The delay after a quick exit: 1 s, doubled for each in a row, up to `--throttle-max`.
        package var throttle: RestartBackoff
        /// An app ready this long has served: its next exit restarts it at once.
        package var healthyAfter: Duration = .seconds(10)
        /// Apps checked or started at the same time.
        package var maxStarting: Int = 8
        /// An app not ready this long after its start is killed (and backs off).
        package var readyTimeout: Duration = .seconds(60)
        /// A reload not confirmed (READY=1) this long is taken as refused by the app.
        package var reloadTimeout: Duration = .seconds(60)
        /// An app still running this long after SIGTERM is killed.
        package var stopTimeout: Duration = .seconds(90)

        package init(throttleMaximum: Duration) {
            throttle = RestartBackoff(start: .seconds(1), maximum: max(throttleMaximum, .seconds(1)))
        }
    }

    package enum Phase: Sendable, Equatable {
        /// To be checked (or, when its file was checked, started) as soon as a start slot frees.
        case waiting
        /// Its binary's `--check-config` runs, before its first start.
        case checking
        /// Started, not ready yet.
        case starting
        case ready
        /// SIGHUP sent; READY=1 awaited.
        case reloading
        /// Its listeners changed: SIGTERM sent; it starts again once gone.
        case restarting
        /// It exited soon after a start: the next start waits until then.
        case backoff(until: Instant)
        /// No process: its file is not valid (``App/configError`` says why).
        case configError
        /// Its file was removed, or the emperor stops: SIGTERM sent.
        case stopping
        /// On demand, no process: its sockets are open and watched for a connection.
        case idle

        /// The name the status page shows.
        package var name: String {
            switch self {
            case .waiting, .checking, .starting: "starting"
            case .ready: "ready"
            case .reloading, .restarting: "reloading"
            case .backoff: "backoff"
            case .configError: "config_error"
            case .stopping: "stopping"
            case .idle: "idle"
            }
        }
    }

    package struct App: Sendable {
        package let name: String
        /// The configuration the process runs (or starts with).
        package var file: AppFile?
        /// The newest valid file read, not yet applied.
        package var latest: AppFile?
        package var phase: Phase = .waiting
        package var pid: pid_t?
        /// Each start and each reload.
        package var generation = 0
        /// Exits that nobody asked for.
        package var restarts = 0
        /// Quick exits in a row (the backoff's count).
        package var crashes = 0
        package var startedAt: Instant?
        package var readyAt: Instant?
        /// Why the newest file is not running, while it is not.
        package var configError: String?
        /// How the process last ended, and what it said.
        package var lastExit: String?
        /// The hash of the file being checked, while a check runs.
        package var checking: String?
        /// A checked file that waits for the process to be ready before it is applied.
        package var approved: AppFile?
        package var removed = false
        /// On demand: listening on a file whose check has not passed yet.
        var unverified = false
        /// On demand: starts made by a connection, and the last one's wait (the connection
        /// seen to READY=1).
        package var coldStarts = 0
        package var lastColdStart: Duration?
        /// On demand: stops by its own `--idle-exit`.
        package var idleExits = 0
        var coldStartBegan: Instant?
        var deadline: Instant?

        init(name: String) { self.name = name }
    }

    package enum Action: Sendable, Equatable {
        /// Run the binary's `--check-config` on this file; answer with ``checked(_:hash:failure:now:)``.
        case check(AppFile)
        /// Open the file's sockets (keeping those already open for the same addresses), write
        /// the app's configuration, start it; answer with ``spawned(_:pid:now:)`` or
        /// ``spawnFailed(_:reason:now:)``.
        case spawn(AppFile)
        /// Write the app's configuration again and send SIGHUP to `pid`.
        case reload(AppFile, pid: pid_t)
        /// On demand: open the file's sockets (as ``spawn(_:)`` would) and watch them; answer a
        /// connection with ``connection(_:now:)``.
        case listen(AppFile)
        case signal(pid_t, Int32)
        /// The app is gone for good: close its sockets, remove its socket and configuration files.
        case release(String)
        case log(Logger.Level, String)
    }

    package let settings: Settings
    package private(set) var apps: [String: App] = [:]
    package private(set) var isStopping = false

    package init(settings: Settings) { self.settings = settings }

    /// Every app gone after ``stopAll(now:)``.
    package var isDone: Bool { isStopping && apps.isEmpty }

    /// The app whose process is `pid`.
    package func app(pid: pid_t) -> App? { apps.values.first { $0.pid == pid } }

    // MARK: Files

    /// A valid file for `file.name`: new, edited, or only touched (`touched`: same bytes).
    package mutating func found(_ file: AppFile, touched: Bool, now: Instant) -> [Action] {
        guard !isStopping else { return [] }
        var app = apps[file.name] ?? App(name: file.name)
        let isNew = apps[file.name] == nil
        defer { apps[file.name] = app }
        app.latest = file
        // A newer file replaces one that waited to be applied.
        app.approved = nil
        if isNew, file.onDemand {
            // Listening at once, checked meanwhile (a boot of 200 on-demand apps waits for no
            // check; a connection before the verdict starts the app, which checks itself).
            app.file = file
            app.phase = .idle
            app.unverified = true
            return [.log(.info, "\(file.name): new app, on demand"), .listen(file)]
        }
        if isNew { return [.log(.info, "\(file.name): new app")] }
        switch app.phase {
        case .backoff, .configError:
            // A touch or an edit starts it now, past its backoff (uwsgi#1148, #1151).
            app.crashes = 0
            app.phase = .waiting
            return [.log(.notice, "\(file.name): \(touched ? "touched" : "changed"); starting it now")]
        case .stopping where app.removed:
            // Removed, then written again before its process had stopped: it starts again once
            // it has (on the new file, checked first).
            app.removed = false
            app.phase = .restarting
            return [.log(.notice, "\(file.name): its file is back; it starts again once its process has stopped")]
        case .stopping:
            return []
        default:
            if !touched, file.hash == app.file?.hash, !app.unverified {
                // Back to what runs (an error fixed by undoing the edit): nothing to apply.
                app.configError = nil
                app.latest = nil
                return []
            }
            return [.log(.notice, "\(file.name): \(touched ? "touched" : "changed"); checking it, then reloading")]
        }
    }

    /// A file that cannot be an app: the app keeps running what it runs (or stays stopped).
    package mutating func invalid(_ name: String, reason: String) -> [Action] {
        guard !isStopping else { return [] }
        var app = apps[name] ?? App(name: name)
        app.latest = nil
        app.approved = nil
        app.configError = reason
        // Without a process and without a valid file to start: nothing to run. (An idle or
        // waiting app with a valid file keeps it.)
        if app.pid == nil, app.file == nil, app.phase != .stopping { app.phase = .configError }
        let running = app.pid != nil ? "; it keeps running its configuration" : ""
        apps[name] = app
        return [.log(.error, reason + running)]
    }

    /// The file is gone: the app stops gracefully, and its sockets close once it has.
    package mutating func removed(_ name: String, now: Instant) -> [Action] {
        guard var app = apps[name], !app.removed else { return [] }
        app.removed = true
        guard let pid = app.pid else {
            apps[name] = nil
            return [.log(.notice, "\(name): file removed"), .release(name)]
        }
        app.phase = .stopping
        app.deadline = now + settings.stopTimeout
        apps[name] = app
        return [.log(.notice, "\(name): file removed; stopping it (pid \(pid))"), .signal(pid, SIGTERM)]
    }

    // MARK: Checks and processes

    /// The verdict of the binary's `--check-config` on the file with `hash`.
    package mutating func checked(_ name: String, hash: String, failure: String?, now: Instant) -> [Action] {
        guard var app = apps[name], app.checking == hash else { return [] }
        app.checking = nil
        defer { apps[name] = app }
        if app.phase == .checking { app.phase = .waiting }
        // Edited again while it was checked: the newest file is checked next.
        guard let latest = app.latest, latest.hash == hash, !app.removed, !isStopping else { return [] }
        if let failure {
            app.configError = failure
            app.latest = nil
            if app.unverified {
                app.unverified = false
                // Started by a connection before the verdict: it runs; its file shows the error.
                if app.pid != nil { return [.log(.error, failure)] }
                // Listening on a file that is not valid: its sockets close (a connection is
                // refused, not kept waiting for an app that cannot start).
                app.file = nil
                app.phase = .configError
                return [.log(.error, failure), .release(name)]
            }
            if app.pid == nil, app.file == nil { app.phase = .configError }
            return [.log(.error, failure + (app.pid != nil ? "; it keeps running its configuration" : ""))]
        }
        app.configError = nil
        app.latest = nil
        app.unverified = false
        switch app.phase {
        case .waiting where latest.onDemand, .idle where latest.onDemand:
            app.file = latest
            app.phase = .idle
            return [.listen(latest)]
        case .waiting, .idle:
            app.file = latest
            app.phase = .waiting
            return []
        case .backoff:
            // Its next start takes the new file.
            app.file = latest
            return []
        case .ready:
            return apply(latest, to: &app, now: now)
        default:
            // What it already runs (an on-demand app started before its first check ended).
            if latest.hash != app.file?.hash { app.approved = latest }
            return []
        }
    }

    /// A checked file for a ready app: a reload (SIGHUP) when the listeners are the same, else a
    /// restart on the new sockets.
    private func apply(_ file: AppFile, to app: inout App, now: Instant) -> [Action] {
        guard let pid = app.pid else { return [] }
        let previous = app.file
        app.file = file
        app.approved = nil
        if previous?.listeners == file.listeners && previous?.exec == file.exec && previous?.socketKeys == file.socketKeys
            && previous?.runAs == file.runAs
        {
            app.phase = .reloading
            app.generation += 1
            app.deadline = now + settings.reloadTimeout
            return [.log(.notice, "\(app.name): reloading (SIGHUP to pid \(pid))"), .reload(file, pid: pid)]
        }
        app.phase = .restarting
        app.deadline = now + settings.stopTimeout
        return [
            .log(.notice, "\(app.name): its listeners, binary or owner changed; restarting it (SIGTERM to pid \(pid))"),
            .signal(pid, SIGTERM),
        ]
    }

    package mutating func spawned(_ name: String, pid: pid_t, now: Instant) -> [Action] {
        guard var app = apps[name] else { return [] }
        app.pid = pid
        app.phase = .starting
        app.generation += 1
        app.startedAt = now
        app.readyAt = nil
        app.deadline = now + settings.readyTimeout
        apps[name] = app
        return [.log(.info, "\(name): started (pid \(pid), generation \(app.generation))")]
    }

    package mutating func spawnFailed(_ name: String, reason: String, now: Instant) -> [Action] {
        guard var app = apps[name] else { return [] }
        app.lastExit = reason
        defer { apps[name] = app }
        return backOff(&app, now: now, reason: "cannot start: \(reason)")
    }

    /// `READY=1` from `pid` (the app's listeners accept, or its reload is done).
    package mutating func ready(pid: pid_t, now: Instant) -> [Action] {
        guard var app = app(pid: pid) else { return [] }
        defer { apps[app.name] = app }
        switch app.phase {
        case .starting, .reloading:
            let was = app.phase
            app.phase = .ready
            app.readyAt = now
            app.deadline = nil
            var cold = ""
            if let began = app.coldStartBegan {
                app.coldStarts += 1
                app.lastColdStart = now - began
                app.coldStartBegan = nil
                cold = "; cold start \(Self.milliseconds(now - began)) ms"
            }
            var actions: [Action] = [.log(.info, "\(app.name): \(was == .starting ? "ready" : "reloaded") (pid \(pid)\(cold))")]
            if let approved = app.approved { actions += apply(approved, to: &app, now: now) }
            return actions
        default:
            return []
        }
    }

    /// `pid` has exited (`exit` says how; `said`: its last lines, when it did not end cleanly).
    package mutating func exited(pid: pid_t, exit: ChildExit, said: String?, now: Instant) -> [Action] {
        guard var app = app(pid: pid) else { return [] }
        app.pid = nil
        if app.removed || isStopping {
            apps[app.name] = nil
            return [.log(.info, "\(app.name): stopped (\(exit))"), .release(app.name)]
        }
        defer { apps[app.name] = app }
        app.lastExit = "\(exit)" + (said.map { ": \($0)" } ?? "")
        if app.phase == .restarting {
            app.phase = .waiting
            return [.log(.info, "\(app.name): stopped for its restart (\(exit))")]
        }
        app.coldStartBegan = nil
        if app.file?.onDemand == true, exit == .code(0), app.phase == .ready || app.phase == .reloading {
            // Its --idle-exit: the sockets wait for the next connection.
            app.crashes = 0
            app.idleExits += 1
            app.phase = .idle
            return [.log(.info, "\(app.name): idle, stopped (pid \(pid)); the next connection starts it")]
        }
        app.restarts += 1
        if let readyAt = app.readyAt, now - readyAt >= settings.healthyAfter {
            app.crashes = 0
            if app.file?.onDemand == true {
                app.phase = .idle
                return [.log(.error, "\(app.name): exited (\(app.lastExit!)); the next connection starts it again")]
            }
            app.phase = .waiting
            return [.log(.error, "\(app.name): exited (\(app.lastExit!)); starting it again")]
        }
        return backOff(&app, now: now, reason: "exited (\(app.lastExit!))")
    }

    private func backOff(_ app: inout App, now: Instant, reason: String) -> [Action] {
        app.pid = nil
        app.crashes += 1
        let delay = settings.throttle.delay(afterCrashes: app.crashes)
        app.phase = .backoff(until: now + delay)
        return [
            .log(
                .error,
                "\(app.name): \(reason); next start in \(delay.secondsText) s (\(app.crashes) in a row; `touch` its file to start it now)")
        ]
    }

    /// On demand: a connection waits on an idle app's socket; it starts now, whatever the
    /// start slots (the connection is waiting for it).
    package mutating func connection(_ name: String, now: Instant) -> [Action] {
        guard var app = apps[name], app.phase == .idle, let file = app.file, !app.removed, !isStopping else { return [] }
        app.phase = .starting
        app.coldStartBegan = now
        apps[name] = app
        return [.spawn(file)]
    }

    // MARK: Time

    /// Every few tens of milliseconds: backoffs over, starts and checks begun as slots free,
    /// deadlines enforced.
    package mutating func tick(now: Instant) -> [Action] {
        var actions: [Action] = []
        var busy = apps.values.filter { $0.phase == .checking || $0.phase == .starting || $0.checking != nil }.count
        for name in apps.keys.sorted() {
            guard var app = apps[name] else { continue }
            if case .backoff(let until) = app.phase, now >= until {
                if let file = app.file, file.onDemand, app.latest == nil {
                    app.phase = .idle
                    actions.append(.listen(file))
                } else {
                    app.phase = .waiting
                }
            }
            if let deadline = app.deadline, now >= deadline, let pid = app.pid {
                app.deadline = nil
                switch app.phase {
                case .starting:
                    actions += [
                        .log(.error, "\(name): not ready \(settings.readyTimeout.secondsText) s after its start; killing pid \(pid)"),
                        .signal(pid, SIGKILL),
                    ]
                case .reloading:
                    app.phase = .ready
                    actions.append(.log(.warning, "\(name): pid \(pid) did not confirm its reload; it serves on (see its log)"))
                case .stopping, .restarting:
                    actions += [.log(.error, "\(name): pid \(pid) still running after SIGTERM; killing it"), .signal(pid, SIGKILL)]
                default:
                    break
                }
            }
            if !isStopping, !app.removed {
                if app.phase == .waiting, busy < settings.maxStarting {
                    if let latest = app.latest, app.checking == nil {
                        app.phase = .checking
                        app.checking = latest.hash
                        busy += 1
                        actions.append(.check(latest))
                    } else if app.latest == nil, app.checking == nil, let file = app.file {
                        app.phase = .starting
                        busy += 1
                        actions.append(.spawn(file))
                    } else if app.latest == nil, app.checking == nil, app.file == nil {
                        // Nothing valid to start (its only file was refused).
                        app.phase = .configError
                    }
                } else if app.phase == .ready || app.phase == .idle, let latest = app.latest, app.checking == nil, busy < settings.maxStarting {
                    app.checking = latest.hash
                    busy += 1
                    actions.append(.check(latest))
                }
            }
            apps[name] = app
        }
        return actions
    }

    /// SIGTERM to the emperor: every app stops gracefully.
    package mutating func stopAll(now: Instant) -> [Action] {
        guard !isStopping else { return [] }
        isStopping = true
        var actions: [Action] = []
        for name in apps.keys.sorted() {
            guard var app = apps[name] else { continue }
            if let pid = app.pid {
                app.phase = .stopping
                app.deadline = now + settings.stopTimeout
                apps[name] = app
                actions.append(.signal(pid, SIGTERM))
            } else {
                apps[name] = nil
                actions.append(.release(name))
            }
        }
        return actions
    }

    package static func milliseconds(_ duration: Duration) -> Double {
        (duration.inSeconds * 10_000).rounded() / 10
    }
}

extension AppFile {
    /// What the emperor applies as it opens the sockets: a change needs new sockets.
    var socketKeys: [String?] { [String(backlog), String(socketMode, radix: 8), socketOwner, socketGroup] }
}
