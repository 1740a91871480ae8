import Logging
import PosternSupervision
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP (or SIGUSR2) in a single process: the configuration and the binary applied without a
/// new process id and without a refused connection, as the master of `--workers N` does with
/// new workers (nginx's binary upgrade and a reload in one step).
///
/// ```
///  start: listeners opened here ─► kept (close-on-exec) ──────────────────────────┐
///                  └─► dup ─► GatewayServer (its copies close when it stops)        │
///  SIGHUP: configuration read again ─► error? log it, serve on                      │
///          ─► graceful stop (in-flight requests finish; new connections wait in the  │
///             kept sockets' backlogs) ─► execv(the binary at its start path) ◄───────┘
///             POSTERN_LISTENERS_INHERITED=http=5,scgi=6, same pid
/// ```
/// The new image reads the file and the environment as at any start, so every option changes
/// (timeouts, limits, logs, the app's own flags, `workers`: with 2 or more it starts as a master
/// on the same sockets); the listeners are the ones it inherits, and a change to them is logged
/// as needing a restart. systemd hears `RELOADING=1` before and `READY=1` from the new image.
final class InPlaceReload: Sendable {
    /// The listeners as they pass to the next image: protocol and the descriptor kept open.
    private let kept: [InheritedListeners.Listener]
    private let socketFiles: [String]
    private let startedFrom: String?
    let notifier: SystemdNotifier?
    private let configuration: ServeConfiguration.Loaded
    private let state = Mutex(State.serving)

    private enum State {
        case serving
        case reloading
        /// A graceful stop (SIGTERM): the kept sockets are closed, so connections are refused
        /// at once instead of waiting in a backlog nobody will accept from.
        case stopping
    }

    /// - Parameters:
    ///   - listeners: every listener as an opened descriptor (`fd:N`).
    ///   - socketFiles: unix socket files the process removes at exit (passed on).
    ///   - configuration: what the options were read from at start, read again by a reload.
    init(
        listeners: [ListenerSpec], socketFiles: [String], notifier: SystemdNotifier?, environment: [String: String],
        configuration: ServeConfiguration.Loaded
    ) {
        self.configuration = configuration
        kept = listeners.compactMap { spec in
            guard case .fd(let fd) = spec.address else { return nil }
            return (spec.listenerProtocol, fd)
        }
        self.socketFiles = socketFiles
        self.notifier = notifier
        startedFrom = ChildProcess.startedFrom(environment: environment)
    }

    /// The listeners the server opens and closes: copies of the kept descriptors.
    static func servingCopies(of listeners: [ListenerSpec]) throws -> [ListenerSpec] {
        try listeners.map { spec in
            guard case .fd(let fd) = spec.address else { return spec }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
            guard copy >= 0 else { throw SocketError.failed("\(spec.option): cannot duplicate fd \(fd)", errno: errno) }
            var served = spec
            served.address = .fd(copy)
            return served
        }
    }

    /// The kept listeners: protocol and descriptor (the status page reads their queues).
    var listeners: [InheritedListeners.Listener] { kept }

    var isReloading: Bool { state.withLock { if case .reloading = $0 { return true } else { return false } } }

    /// SIGHUP: true when the process should stop gracefully and then ``execute(logger:)``.
    func begin(signal name: String, logger: Logger) async -> Bool {
        guard state.withLock({ if case .serving = $0 { return true } else { return false } }) else {
            logger.notice("\(name): a reload or a stop is under way; ignored")
            return false
        }
        guard ServingProcessSignals.configurationAllowsReload(configuration, signal: name, logger: logger) else { return false }
        let executable = ChildProcess.executable(startedFrom: startedFrom)
        // The binary must pass its own check before this process stops serving to become it.
        logger.notice("\(name): checking \(executable) (--check-config) before the reload")
        let check = await UpgradeCheck.runOnItsOwnThread(executable)
        guard case .passed(_, let version) = check else {
            if case .failed(let reason) = check { logger.error("\(name): not reloading: \(reason); serving on with the running binary") }
            return false
        }
        let begun = state.withLock { state -> Bool in
            guard case .serving = state else { return false }
            state = .reloading
            return true
        }
        guard begun else { return false }
        logger.notice(
            "\(name): reloading in place to \(version): in-flight requests finish, then \(executable) runs again (same pid, same sockets; new connections wait in their backlogs)"
        )
        notifier?.reloading()
        return true
    }

    /// SIGTERM, SIGINT or SIGQUIT (a reload stops the service group without a signal): the
    /// kept sockets close, so that a front-end's new connections are refused at once (nginx
    /// tries its next upstream); a stop asked for during a reload's drain wins, and the binary
    /// is not executed.
    func stopRequested() {
        let close = state.withLock { state -> Bool in
            if case .stopping = state { return false }
            state = .stopping
            return true
        }
        if close { for (_, fd) in kept { Glibc.close(fd) } }
    }

    /// After the graceful stop of a reload: the binary at the path it was started from, in
    /// this process, with the kept sockets. Returns only if it cannot be executed (logged).
    func execute(logger: Logger) {
        let executable = ChildProcess.executable(startedFrom: startedFrom)
        notifier?.restoreEnvironment()
        for (_, fd) in kept { _ = fcntl(fd, F_SETFD, 0) }
        setenv(Privileges.inheritedKey, InheritedListeners.encode(listeners), 1)
        setenv(Privileges.socketFilesKey, socketFiles.joined(separator: ":"), 1)
        let reason = ProcessImage.replace(with: executable, keeping: Set(kept.map(\.1)))
        logger.critical("reload: cannot execute \(executable) (\(reason)); the server has stopped")
    }
}
