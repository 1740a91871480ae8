import CPosternSocket
import FoundationEssentials
import Logging
import Postern
import PosternCore
import PosternOps
import PosternRuntime
import PosternSupervision
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `postern emperor DIR`: the loop that carries out ``EmperorPolicy``'s decisions, on one
/// thread of its own (the thread that spawns the apps: their parent-death signal follows it).
///
/// ```
///  DIR/*.json ──inotify──► scan (debounced) ─► found / invalid / removed ─┐
///  RUNDIR/notify ◄── READY=1 from each app (sd_notify, sender pid) ───────┤
///  waitpid(app) ─► exited ─────────────────────────────────────────────────┼─► EmperorPolicy ─► actions
///  check threads (--check-config) ─► checked ──────────────────────────────┤    check, spawn, reload,
///  signals: SIGHUP rescan, SIGTERM/SIGINT/SIGQUIT stop ─► inbox ──────────┘    signal, release, log
/// ```
/// The emperor owns each app's listening sockets (opened once, kept while the app is
/// restarted, reloaded or crashes, so connections wait in the backlog) and passes them as
/// `fd:N` in a configuration file it writes for the app (`RUNDIR/NAME.json`).
package final class Emperor: Sendable {
    package struct Configuration: Sendable {
        /// The directory of app files.
        package var directory: String
        /// Where the apps' configuration files and the notify socket live (private to the emperor).
        package var runDirectory: String
        package var settings: EmperorPolicy.Settings
        /// The binary an app without `exec` runs (as `serve`): the emperor's own.
        package var ownExecutable: String
        /// The environment every app starts with (the emperor's, without its own service's
        /// variables and without `POSTERN_*`: an app's configuration is its file).
        package var appEnvironment: [String: String]
        /// `--tyrant`: each app runs as its file's owner, started through `setpriv` (this path).
        package var tyrant: String?

        package init(directory: String, runDirectory: String, settings: EmperorPolicy.Settings, ownExecutable: String, environment: [String: String]) {
            self.directory = directory
            self.runDirectory = runDirectory
            self.settings = settings
            self.ownExecutable = ownExecutable
            appEnvironment = environment.filter { key, _ in
                !key.hasPrefix("POSTERN_") && !UpgradeCheck.strippedVariables.contains(key) && key != "RUNTIME_DIRECTORY"
            }
        }
    }

    /// What reaches the loop from other threads.
    package enum Message: Sendable {
        case signal(Int32)
        case checked(name: String, hash: String, failure: String?)
    }

    private let configuration: Configuration
    private let logger: Logger
    private let notifier: SystemdNotifier?
    private let inbox = Mutex<[Message]>([])
    private let wake: (read: Int32, write: Int32)
    private let published: Mutex<EmperorStatus>
    private let startTime = Date().timeIntervalSince1970

    package init(configuration: Configuration, logger: Logger, notifier: SystemdNotifier?) throws {
        self.configuration = configuration
        self.logger = logger
        self.notifier = notifier
        var ends: [Int32] = [0, 0]
        guard ChildProcess.makePipe(&ends) else { throw EmperorError.system("cannot make a pipe", errno: errno) }
        _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
        wake = (ends[0], ends[1])
        published = Mutex(EmperorStatus(pid: getpid(), directory: configuration.directory, startTime: Int(startTime), apps: []))
    }

    /// Hands `message` to the loop (any thread).
    package func post(_ message: Message) {
        inbox.withLock { $0.append(message) }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    /// The status page's reading.
    package var status: EmperorStatus { published.withLock { $0 } }

    /// Runs the loop on its own thread until every app has stopped after a stop signal.
    package func run() async throws {
        let watch = postern_directory_watch(configuration.directory)
        guard watch >= 0 else { throw EmperorError.system("cannot watch \(configuration.directory)", errno: errno) }
        let notifyPath = configuration.runDirectory + "/notify"
        unlink(notifyPath)
        let notify = postern_notify_socket(notifyPath)
        guard notify >= 0 else {
            close(watch)
            throw EmperorError.system("cannot open the notify socket \(notifyPath)", errno: errno)
        }
        // An app that runs as another user ("user" in its file) still says READY=1: anyone may
        // send, and the sender's pid (SO_PASSCRED, which only root can forge) says which app.
        chmod(notifyPath, 0o666)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            PosixThread.start(name: "postern-emperor") { [self] in
                var loop = Loop(emperor: self, watch: watch, notify: notify, notifyPath: notifyPath)
                loop.run()
                close(watch)
                close(notify)
                unlink(notifyPath)
                continuation.resume()
            }
        }
    }

    /// The loop's state: touched by the emperor's thread alone.
    private struct Loop {
        let emperor: Emperor
        let watch: Int32
        let notify: Int32
        let notifyPath: String
        var policy: EmperorPolicy
        var known: [String: DirectoryScan.Stamp] = [:]
        /// The last bytes' hash seen of each file, valid or not (a touch keeps it).
        var hashes: [String: String] = [:]
        var sockets: [String: [OpenSocket]] = [:]
        var socketKeys: [String: [String?]] = [:]
        var outputs: [pid_t: ChildOutput] = [:]
        /// Each app's requests and errors from its reports, across its processes.
        var tallies: [String: AppTally] = [:]
        /// Each app's sockets' queue reader, made again when its sockets change.
        var queueMonitors: [String: (fds: [Int32], monitor: ListenQueueMonitor)] = [:]
        /// The first and the last inotify event since the last scan.
        var dirtySince: ContinuousClock.Instant?
        var lastEvent: ContinuousClock.Instant?
        var lastScan = ContinuousClock.now
        var lastPublished = ContinuousClock.now - .seconds(1)
        var announcedReady = false
        var statusLine = ""

        struct OpenSocket {
            let listener: AppFile.Listener
            let fd: Int32
        }

        var configuration: Configuration { emperor.configuration }
        var logger: Logger { emperor.logger }

        init(emperor: Emperor, watch: Int32, notify: Int32, notifyPath: String) {
            self.emperor = emperor
            self.watch = watch
            self.notify = notify
            self.notifyPath = notifyPath
            policy = EmperorPolicy(settings: emperor.configuration.settings)
        }

        mutating func run() {
            logger.notice("emperor: watching \(configuration.directory)", metadata: ["pid": "\(getpid())"])
            scan()
            while true {
                var fds = [
                    pollfd(fd: watch, events: Int16(POLLIN), revents: 0), pollfd(fd: notify, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: emperor.wake.read, events: Int16(POLLIN), revents: 0),
                ]
                // On-demand apps without a process: a connection on any of their sockets.
                var idle: [String] = []
                for app in policy.apps.values where app.phase == .idle {
                    for socket in sockets[app.name] ?? [] {
                        fds.append(pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0))
                        idle.append(app.name)
                    }
                }
                _ = poll(&fds, nfds_t(fds.count), 50)
                let now = ContinuousClock.now
                for (index, name) in idle.enumerated() where fds[3 + index].revents & Int16(POLLIN) != 0 {
                    perform(policy.connection(name, now: now))
                }
                if postern_directory_watch_drain(watch) != 0 {
                    if dirtySince == nil { dirtySince = now }
                    lastEvent = now
                }
                receiveNotifications()
                var byte = [UInt8](repeating: 0, count: 64)
                while read(emperor.wake.read, &byte, byte.count) > 0 {}
                for message in emperor.inbox.withLock({ inbox in
                    defer { inbox.removeAll() }
                    return inbox
                }) { handle(message) }
                reap()
                // An editor's several writes are one change: a scan once they have been quiet for
                // 150 ms (at most 1 s after the first), and at least every 2 s for file systems
                // that send no inotify events.
                if let since = dirtySince, let last = lastEvent, now - last >= .milliseconds(150) || now - since >= .seconds(1) {
                    scan()
                } else if now - lastScan >= .seconds(2) {
                    scan()
                }
                perform(policy.tick(now: .now))
                publish(now: now)
                if policy.isDone { break }
            }
            logger.notice("emperor: every app has stopped")
        }

        mutating func handle(_ message: Message) {
            switch message {
            case .signal(let number):
                switch number {
                case SIGHUP:
                    logger.notice("SIGHUP: rescanning \(configuration.directory)")
                    scan()
                case SIGTERM, SIGINT, SIGQUIT:
                    guard !policy.isStopping else {
                        logger.notice("\(SignalEvents.name(number)): already stopping")
                        return
                    }
                    logger.notice("\(SignalEvents.name(number)): stopping every app gracefully")
                    emperor.notifier?.send("STOPPING=1\nSTATUS=stopping every app")
                    perform(policy.stopAll(now: .now))
                case SIGUSR1:
                    // logrotate's postrotate for the emperor and every app at once.
                    if let errorLog = ErrorLogFile.current, !errorLog.reopen() {
                        logger.error("--error-log: cannot reopen it; still writing to the file it had open")
                    }
                    // Ready apps only: one still starting may not handle it yet (its default ends it).
                    let running = policy.apps.values.filter { $0.phase == .ready }.compactMap(\.pid)
                    for pid in running { kill(pid, SIGUSR1) }
                    logger.notice(
                        "SIGUSR1: the emperor's log reopened, and passed to \(running.count) app\(running.count == 1 ? "" : "s") (each reopens its own)")
                default:
                    logger.notice("\(SignalEvents.name(number)): ignored by the emperor (send it to an app's pid)")
                }
            case .checked(let name, let hash, let failure):
                perform(policy.checked(name, hash: hash, failure: failure, now: .now))
            }
        }

        /// The directory read again; each file whose stamp changed is read and judged.
        mutating func scan() {
            dirtySince = nil
            lastEvent = nil
            lastScan = .now
            guard !policy.isStopping else { return }
            guard let seen = DirectoryScan.scan(configuration.directory) else {
                logger.error("cannot read \(configuration.directory): \(String(cString: strerror(errno))); the apps run on")
                return
            }
            let changes = DirectoryScan.changes(from: known, to: seen)
            known = seen
            for name in changes.removed {
                hashes[name] = nil
                perform(policy.removed(name, now: .now))
            }
            for name in changes.found {
                let path = configuration.directory + "/" + name + ".json"
                switch DirectoryScan.read(path) {
                case .failure(let error):
                    perform(policy.invalid(name, reason: "\(path): \(error)"))
                case .success(let bytes):
                    let hash = AppFile.fnv1a(bytes)
                    let touched = hashes[name] == hash
                    hashes[name] = hash
                    do {
                        var file = try AppFile(name: name, path: path, bytes: bytes)
                        if configuration.tyrant != nil, let stamp = seen[name] {
                            file = try file.owned(by: stamp.owner, group: stamp.group, user: Self.accountName(stamp.owner), path: path)
                        }
                        perform(policy.found(file, touched: touched, now: .now))
                    } catch {
                        perform(policy.invalid(name, reason: error.description))
                    }
                }
            }
        }

        mutating func receiveNotifications() {
            var buffer = [CChar](repeating: 0, count: 4096)
            var pid: Int32 = 0
            while true {
                let count = postern_notify_receive(notify, &buffer, UInt(buffer.count - 1), &pid)
                guard count >= 0 else { break }
                let text = String(decoding: buffer.prefix(Int(count)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if text.split(separator: "\n").contains("READY=1") { perform(policy.ready(pid: pid, now: .now)) }
                if let report = AppReport(datagram: text), let app = policy.apps.values.first(where: { $0.pid == pid }) {
                    tallies[app.name, default: AppTally()].take(report)
                }
            }
        }

        mutating func reap() {
            for app in policy.apps.values {
                guard let pid = app.pid else { continue }
                var status: Int32 = 0
                guard waitpid(pid, &status, WNOHANG) == pid else { continue }
                let exit = ChildExit(waitStatus: status)
                let output = outputs.removeValue(forKey: pid)
                tallies[app.name]?.processEnded()
                let expected = app.removed || policy.isStopping || app.phase == .restarting
                let said = expected || exit == .code(0) ? nil : output?.lastLines(waiting: 0.05)
                perform(policy.exited(pid: pid, exit: exit, said: said.flatMap { $0.isEmpty ? nil : $0 }, now: .now))
            }
        }

        mutating func perform(_ actions: [EmperorPolicy.Action]) {
            for action in actions {
                switch action {
                case .log(let level, let message):
                    logger.log(level: level, "\(message)")
                case .signal(let pid, let number):
                    kill(pid, number)
                case .check(let file):
                    check(file)
                case .spawn(let file):
                    switch spawn(file) {
                    case .success(let pid): perform(policy.spawned(file.name, pid: pid, now: .now))
                    case .failure(let error): perform(policy.spawnFailed(file.name, reason: error.description, now: .now))
                    }
                case .listen(let file):
                    do {
                        _ = try open(file)
                        logger.info("\(file.name): on demand: its first connection starts it")
                    } catch {
                        perform(policy.spawnFailed(file.name, reason: "\(error)", now: .now))
                    }
                case .reload(let file, let pid):
                    do {
                        try writeConfiguration(file)
                        kill(pid, SIGHUP)
                    } catch {
                        logger.error("\(file.name): not reloaded: \(error)")
                    }
                case .release(let name):
                    release(name, keeping: [])
                    tallies[name] = nil
                    unlink(configurationPath(name))
                    unlink(checkPath(name))
                }
            }
        }

        func configurationPath(_ name: String) -> String { configuration.runDirectory + "/" + name + ".json" }
        func checkPath(_ name: String) -> String { configuration.runDirectory + "/" + name + ".check.json" }

        /// The binary and its first arguments for `file`: in tyrant mode through `setpriv`
        /// (util-linux), which takes the owner's user, group and groups before it executes the
        /// binary, so that no line of an app's code runs as root (posix_spawn cannot change
        /// users, and a multithreaded emperor must not fork).
        func command(_ file: AppFile) -> (executable: String, arguments: [String]) {
            let (binary, arguments) =
                file.exec.map { exec in (exec.hasPrefix("/") ? exec : configuration.directory + "/" + exec, [String]()) }
                ?? (configuration.ownExecutable, ["serve"])
            guard let runAs = file.runAs, let setpriv = configuration.tyrant else { return (binary, arguments) }
            return (setpriv, ["--reuid=\(runAs.uid)", "--regid=\(runAs.gid)", "--init-groups", "--", binary] + arguments)
        }

        /// The account name of `uid`, if it has one.
        static func accountName(_ uid: UInt32) -> String? {
            guard let entry = getpwuid(uid) else { return nil }
            return String(cString: entry.pointee.pw_name)
        }

        /// The binary's own `--check-config` on the file as written (its addresses, not
        /// descriptors), on a thread of its own; the verdict comes back as a message.
        func check(_ file: AppFile) {
            let path = checkPath(file.name)
            let userPath = configuration.directory + "/" + file.name + ".json"
            let (executable, arguments) = command(file)
            let environment = configuration.appEnvironment
            let emperor = emperor
            guard Self.write(file.configuration(descriptors: nil), to: path) else {
                emperor.post(.checked(name: file.name, hash: file.hash, failure: "\(userPath): cannot write \(path): \(String(cString: strerror(errno)))"))
                return
            }
            PosixThread.start(name: "postern-check") {
                let result = UpgradeCheck.run(executable, arguments: arguments + ["--config", path], environment: environment)
                var failure: String?
                if case .failed(let reason) = result {
                    // A Postern binary's own refusal (exit 64, "Error: …") is the line to show;
                    // anything else keeps how the binary ended.
                    var said = reason
                    if let range = said.firstRange(of: ": exit 64: Error: ") { said = String(said[range.upperBound...]) }
                    failure = "\(userPath): " + said.replacing("--config " + path + ": ", with: "").replacing(path, with: userPath)
                }
                emperor.post(.checked(name: file.name, hash: file.hash, failure: failure))
            }
        }

        /// The app's sockets (those already open for the same listeners kept), its configuration
        /// written, its process started with the sockets as the same descriptor numbers.
        mutating func spawn(_ file: AppFile) -> Result<pid_t, EmperorError> {
            do {
                let fds = try open(file)
                try writeConfiguration(file)
                var environment = configuration.appEnvironment
                environment["NOTIFY_SOCKET"] = notifyPath
                environment[EmperorLink.key] = String(getpid())
                let output = try ChildOutput()
                let (executable, arguments) = command(file)
                // SwiftNIO opens its descriptors (the status page's socket, the connections it
                // accepts, its epoll and event descriptors) without close-on-exec: an app that
                // inherited a status connection kept it open after the emperor had answered, and
                // its client waited for the end. The app gets its own sockets alone, as 3, 4, …
                do {
                    let pid = try ChildProcess.spawn(
                        executable: executable, arguments: arguments + ["--config", configurationPath(file.name)], environment: environment,
                        standardInputNull: true, standardError: output.writeEnd, passing: fds)
                    output.start()
                    outputs[pid] = output
                    return .success(pid)
                } catch {
                    output.discard()
                    throw EmperorError.other("\(error)")
                }
            } catch let error as EmperorError {
                return .failure(error)
            } catch {
                return .failure(.other("\(error)"))
            }
        }

        /// Opens what `file` lists and is not open yet; closes what it no longer lists.
        mutating func open(_ file: AppFile) throws -> [Int32] {
            let keys = file.socketKeys
            if socketKeys[file.name] != keys { release(file.name, keeping: []) }
            release(file.name, keeping: Set(file.listeners))
            var open = sockets[file.name] ?? []
            var fds: [Int32] = []
            for listener in file.listeners {
                if let kept = open.first(where: { $0.listener == listener }) {
                    fds.append(kept.fd)
                    continue
                }
                if let runAs = file.runAs, case .unix(let path) = listener.address, !Self.mayCreate(path, uid: runAs.uid, gid: runAs.gid) {
                    throw EmperorError.other(
                        "\(listener.listenerProtocol.rawValue) \(listener.address): \(runAs.user) may not create files in its directory (--tyrant opens it as root for \(runAs.user))"
                    )
                }
                let spec = ListenerSpec(listener.listenerProtocol, listener.address, socketMode: file.socketMode)
                let fd = try ListeningSocket.open(spec, backlog: file.backlog)
                // Close-on-exec here: each app gets only its own (``ChildProcess/spawn``'s `keeping`).
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                if case .unix(let path) = listener.address {
                    try Privileges.ownSocket(path, ProcessIdentity(socketOwner: file.socketOwner, socketGroup: file.socketGroup))
                }
                logger.info("\(file.name): listening on \(listener)", metadata: ["fd": "\(fd)"])
                open.append(OpenSocket(listener: listener, fd: fd))
                sockets[file.name] = open
                fds.append(fd)
            }
            socketKeys[file.name] = keys
            return fds
        }

        /// Whether `uid` (with primary group `gid`) may create `path` in its directory, by the
        /// directory's mode bits.
        static func mayCreate(_ path: String, uid: UInt32, gid: UInt32) -> Bool {
            let directory = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
            var status = stat()
            guard stat(directory, &status) == 0 else { return false }
            let mode = status.st_mode
            if status.st_uid == uid { return mode & S_IWUSR != 0 && mode & S_IXUSR != 0 }
            if status.st_gid == gid { return mode & S_IWGRP != 0 && mode & S_IXGRP != 0 }
            return mode & S_IWOTH != 0 && mode & S_IXOTH != 0
        }

        /// Closes the app's sockets but those for `keeping`, and removes their socket files.
        mutating func release(_ name: String, keeping: Set<AppFile.Listener>) {
            var kept: [OpenSocket] = []
            for socket in sockets[name] ?? [] {
                if keeping.contains(socket.listener) {
                    kept.append(socket)
                    continue
                }
                close(socket.fd)
                if case .unix(let path) = socket.listener.address { try? UnixSocketFile.remove(path: path) }
                logger.info("\(name): closed \(socket.listener)")
            }
            sockets[name] = kept.isEmpty ? nil : kept
            if kept.isEmpty { socketKeys[name] = nil }
        }

        func writeConfiguration(_ file: AppFile) throws {
            let fds = file.listeners.map { listener in sockets[file.name]?.first { $0.listener == listener }?.fd ?? -1 }
            guard !fds.contains(-1) else { throw EmperorError.other("its sockets are not open") }
            let path = configurationPath(file.name)
            // The numbers the app has them as (`spawn(…passing:)`, in the file's order).
            guard Self.write(file.configuration(descriptors: ChildProcess.passedNumbers(fds.count)), to: path) else {
                throw EmperorError.system("cannot write \(path)", errno: errno)
            }
        }

        /// Writes `bytes` to a new file beside `path`, then renames it over `path`: a reader
        /// sees the old file or the new one, never half of one.
        static func write(_ bytes: [UInt8], to path: String) -> Bool {
            let temporary = path + ".new"
            // Readable by an app that drops to its "user" and reads it again on a reload.
            let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return false }
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == bytes.count else {
                unlink(temporary)
                return false
            }
            return rename(temporary, path) == 0
        }

        /// The status page's reading, every 200 ms.
        mutating func publish(now: ContinuousClock.Instant) {
            guard now - lastPublished >= .milliseconds(200) else { return }
            lastPublished = now
            let wall = Date().timeIntervalSince1970
            func wallTime(_ instant: ContinuousClock.Instant?) -> Double? {
                instant.map { wall - (now - $0).inSeconds }
            }
            var apps: [EmperorStatus.App] = []
            for app in policy.apps.values.sorted(by: { $0.name < $1.name }) {
                var nextAttempt: Double?
                if case .backoff(let until) = app.phase { nextAttempt = wall + (until - now).inSeconds }
                let open = sockets[app.name] ?? []
                if queueMonitors[app.name]?.fds != open.map(\.fd) {
                    queueMonitors[app.name] = (open.map(\.fd), ListenQueueMonitor(open.map { ($0.listener.listenerProtocol, $0.fd) }))
                }
                let queues = queueMonitors[app.name]?.monitor.sample() ?? []
                let tally = tallies[app.name] ?? AppTally()
                apps.append(
                    EmperorStatus.App(
                        name: app.name, state: app.phase.name, pid: app.pid, generation: app.generation, restarts: app.restarts,
                        crashes: app.crashes, nextAttempt: nextAttempt, configError: app.configError, lastExit: app.lastExit,
                        configHash: app.file?.hash ?? app.latest?.hash, exec: (app.file ?? app.latest).map { command($0).executable },
                        startedAt: wallTime(app.startedAt), readyAt: wallTime(app.readyAt), onDemand: (app.file ?? app.latest)?.onDemand ?? false,
                        coldStarts: app.coldStarts, lastColdStartMilliseconds: app.lastColdStart.map(EmperorPolicy.milliseconds),
                        idleExits: app.idleExits, uid: (app.file ?? app.latest)?.runAs.map { Int($0.uid) },
                        requests: tally.requests, errors: tally.errors, inFlight: tally.current?.inFlight ?? 0,
                        workersBusy: tally.current?.busy ?? 0, workersIdle: tally.current?.idle ?? 0,
                        listeners: queues.map { EmperorStatus.Listener(protocol: $0.protocol, address: $0.address, queued: $0.queued, length: $0.length) }
                    ))
            }
            let document = EmperorStatus(pid: getpid(), directory: configuration.directory, startTime: Int(emperor.startTime), apps: apps)
            emperor.published.withLock { $0 = document }
            let starting = apps.filter { $0.state == "starting" }.count
            if !announcedReady, starting == 0 {
                announcedReady = true
                emperor.notifier?.send("READY=1\nMAINPID=\(getpid())")
            }
            let ready = apps.filter { $0.state == "ready" }.count
            let line = "STATUS=\(apps.count) apps: \(ready) ready, \(starting) starting, \(apps.count - ready - starting) other"
            if line != statusLine {
                statusLine = line
                emperor.notifier?.send(line)
            }
        }
    }
}

package enum EmperorError: Error, CustomStringConvertible {
    case system(String, errno: Int32)
    case other(String)

    package var description: String {
        switch self {
        case .system(let what, let errno): "\(what): \(String(cString: strerror(errno)))"
        case .other(let text): text
        }
    }
}
