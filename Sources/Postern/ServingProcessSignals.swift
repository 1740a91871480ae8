import Logging
import PosternOps
import PosternSupervision

#if canImport(Glibc)
import Glibc
#endif

/// What a serving process, alone or a worker, does with the signals a sysadmin or a tool sends
/// in routine work, besides SIGTERM, SIGINT and SIGQUIT (a graceful stop): none of them ends it.
/// - SIGUSR1 (logrotate's `postrotate`): reopen the access log and `--error-log`.
/// - SIGHUP, SIGUSR2: alone, reload in place (``InPlaceReload``: the configuration read again,
///   in-flight requests finished, the binary at its start path executed again with the same
///   pid and sockets); a file with an error stops the reload. In a worker, nothing (reloads
///   and upgrades are the master's).
/// - SIGTTIN, SIGTTOU (the master's: one worker more or less): logged, ignored.
enum ServingProcessSignals {
    static let handled: [Int32] = [SIGUSR1, SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU]

    /// The access log and `--error-log`, opened again at their paths (after logrotate moved them).
    static func reopenLogs(_ accessLog: AccessLog?, _ logger: Logger) {
        accessLog?.reopen()
        if let errorLog = ErrorLogFile.current, !errorLog.reopen() {
            logger.error("--error-log: cannot reopen it; still writing to the file it had open")
        }
    }

    /// Before a single process reloads: the configuration read again. A file with an error
    /// stops the reload (the new image could not start with it): false. What changed is said,
    /// and a change to a listener is logged as needing a restart.
    static func configurationAllowsReload(_ configuration: ServeConfiguration.Loaded, signal name: String, logger: Logger) -> Bool {
        let before = configuration.settings
        switch configuration.reread() {
        case .failure(let error):
            logger.error("\(name): not reloading: the configuration has an error; serving on as before", metadata: ["error": "\(error)"])
            return false
        case .success(let after):
            let changed = after.filter { setting in
                let old = ServeConfiguration.setting(setting.key.name, in: before)
                return old?.values != setting.values || old?.source != setting.source
            }.map(\.key.name)
            if !changed.isEmpty {
                logger.notice("\(name): the configuration changed: \(changed.joined(separator: ", "))")
            }
            // A single process opens its listeners (and drops to its user) once; a reload keeps them.
            let boundAtStart = Set(ServeOptions.declarations.filter { $0.reload != .applies }.map(\.name))
            for key in changed where boundAtStart.contains(key) {
                logger.warning("\(name): \(key) changed in the configuration; the listeners stay as they were opened at start: restart to apply it")
            }
            return true
        }
    }

    /// - Parameter stopForReload: the service group's graceful stop, which a reload in place
    ///   begins with (not a SIGTERM to itself: a SIGTERM is a stop, even during a reload).
    /// - Parameter draining: a stop's `--drain-delay` is under way: a reload would end it early.
    static func run(
        _ signals: AsyncStream<Int32>, accessLog: AccessLog?, reload: InPlaceReload?, stopForReload: @escaping @Sendable () async -> Void,
        draining: DrainState? = nil, logger: Logger
    ) async {
        for await number in signals {
            let name = SignalEvents.name(number)
            switch number {
            case SIGUSR1:
                reopenLogs(accessLog, logger)
                logger.notice("\(name): logs reopened")
            case SIGHUP where draining?.isDraining == true, SIGUSR2 where draining?.isDraining == true:
                logger.notice("\(name): draining to stop (--drain-delay); not reloading")
            case SIGHUP where reload != nil, SIGUSR2 where reload != nil:
                reopenLogs(accessLog, logger)
                if await reload?.begin(signal: name, logger: logger) == true {
                    // The service group's graceful stop; after it, the process executes again.
                    await stopForReload()
                }
            default:
                logger.notice(
                    "\(name): ignored \(reload == nil ? "by a worker (signal the master)" : "in a single process (it is for the master of --workers N)")")
            }
        }
    }
}
