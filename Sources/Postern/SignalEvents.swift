import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Signals as an async sequence, for those swift-service-lifecycle's `UnixSignal` does not name
/// (SIGTTIN, SIGTTOU) and the rest alike: each one's default action (for most, ending or
/// stopping the process) is replaced by a delivery here, from the moment the stream is made.
enum SignalEvents {
    static func stream(_ signals: [Int32]) -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let queue = DispatchQueue(label: "postern.signals")
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            sources.append(source)
        }
        let kept = UncheckedSources(sources)
        continuation.onTermination = { _ in kept.cancel() }
        return stream
    }

    /// The name a sysadmin knows a signal by.
    static func name(_ number: Int32) -> String {
        switch number {
        case SIGHUP: "SIGHUP"
        case SIGUSR1: "SIGUSR1"
        case SIGUSR2: "SIGUSR2"
        case SIGTTIN: "SIGTTIN"
        case SIGTTOU: "SIGTTOU"
        case SIGQUIT: "SIGQUIT"
        case SIGWINCH: "SIGWINCH"
        default: "signal \(number)"
        }
    }

    /// Dispatch sources are thread-safe; cancelled once, when the stream ends.
    private final class UncheckedSources: @unchecked Sendable {
        let sources: [any DispatchSourceSignal]
        init(_ sources: [any DispatchSourceSignal]) { self.sources = sources }
        func cancel() { for source in sources { source.cancel() } }
    }
}

/// What a serving process, alone or a worker, does with the signals a sysadmin or a tool sends
/// in routine work, besides SIGTERM, SIGINT and SIGQUIT (a graceful stop): none of them ends it.
/// - SIGUSR1 (logrotate's `postrotate`): reopen the access log.
/// - SIGHUP: alone, reopen the logs and read the configuration again, saying what changed (it
///   applies at a restart); in a worker, nothing (reloads are the master's: new workers).
/// - SIGUSR2, SIGTTIN, SIGTTOU (the master's: upgrade, one worker more or less): logged, ignored.
enum ServingProcessSignals {
    static let handled: [Int32] = [SIGUSR1, SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU]

    /// The access log and `--error-log`, opened again at their paths (after logrotate moved them).
    static func reopenLogs(_ accessLog: AccessLog?, _ logger: Logger) {
        accessLog?.reopen()
        if let errorLog = ErrorLogFile.current, !errorLog.reopen() {
            logger.error("--error-log: cannot reopen it; still writing to the file it had open")
        }
    }

    /// SIGHUP in a single process: the configuration read again, and what changed said; a
    /// single process serves on with what it started with (its listeners, limits and app are
    /// built once: `--workers N` reloads by starting new workers).
    static func reportConfigurationChanges(_ logger: Logger) async {
        let before = ServeConfiguration.settings
        switch await ServeConfiguration.reread() {
        case nil:
            break
        case .failure(let error):
            logger.error("SIGHUP: the configuration has an error (a restart would fail)", metadata: ["error": "\(error)"])
        case .success(let after):
            let changed = after.filter { setting in
                let old = ServeConfiguration.setting(setting.key.name, in: before)
                return old?.values != setting.values || old?.source != setting.source
            }.map(\.key.name)
            if !changed.isEmpty {
                logger.warning("SIGHUP: the configuration changed (\(changed.joined(separator: ", "))); a single process applies it when restarted (with --workers N a SIGHUP starts new workers with it)")
            }
        }
    }

    static func run(_ signals: AsyncStream<Int32>, accessLog: AccessLog?, isWorker: Bool, logger: Logger) async {
        for await number in signals {
            let name = SignalEvents.name(number)
            switch number {
            case SIGUSR1:
                reopenLogs(accessLog, logger)
                logger.notice("\(name): logs reopened")
            case SIGHUP where !isWorker:
                reopenLogs(accessLog, logger)
                logger.notice("\(name): logs reopened")
                await reportConfigurationChanges(logger)
            default:
                logger.notice("\(name): ignored \(isWorker ? "by a worker (signal the master)" : "in a single process (it is for the master of --workers N)")")
            }
        }
    }
}
