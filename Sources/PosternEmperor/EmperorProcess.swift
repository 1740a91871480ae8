import Logging
import Postern
import PosternCore
import PosternEngine
import PosternOps
import PosternRuntime
import PosternSupervision
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The `postern emperor` process around its loop (``Emperor``): the run directory, the logs,
/// the signals, the pid file and the status page.
package enum EmperorProcess {
    package struct Options: Sendable {
        package var directory: String
        package var runDirectory: String?
        package var status: String?
        package var allow: [String] = []
        package var throttleMax: Double = 60
        package var maxStarting: Int = 8
        package var pidFile: String?
        package var errorLog: String?
        package var logLevel: Logger.Level = .info
        /// `--tyrant`: the path of `setpriv`.
        package var tyrant: String?
        /// `--allow-root`: every app may serve as root (`POSTERN_ALLOW_ROOT` in its environment).
        package var allowRoot = false

        package init(directory: String) { self.directory = directory }
    }

    /// Runs the emperor until SIGTERM, SIGINT or SIGQUIT has stopped every app.
    package static func run(_ options: Options, ownExecutable: String, environment: [String: String]) async throws {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        // Trapped before anything starts: no routine signal ends the emperor.
        let signals = SignalEvents.stream([SIGTERM, SIGINT, SIGQUIT, SIGHUP] + SignalEvents.routine.filter { $0 != SIGHUP })
        let logger = try LogFiles.bootstrap(errorLog: options.errorLog, level: options.logLevel, label: "postern-emperor")

        let (runDirectory, temporary) = try makeRunDirectory(options.runDirectory, environment: environment)
        defer { if temporary { removeDirectory(runDirectory) } }
        var settings = EmperorPolicy.Settings(throttleMaximum: .milliseconds(Int64(options.throttleMax * 1000)))
        settings.maxStarting = options.maxStarting
        var configuration = Emperor.Configuration(
            directory: options.directory, runDirectory: runDirectory, settings: settings, ownExecutable: ownExecutable, environment: environment)
        configuration.tyrant = options.tyrant
        if options.allowRoot { configuration.appEnvironment["POSTERN_ALLOW_ROOT"] = "true" }
        let emperor = try Emperor(configuration: configuration, logger: logger, notifier: SystemdNotifier.fromEnvironment(environment))
        if let pidFile = options.pidFile { try Privileges.writePIDFile(pidFile) }
        defer { if let pidFile = options.pidFile { Privileges.removePIDFile(pidFile) } }

        var statusGroup: ServiceGroup?
        if let address = options.status {
            var allow = AllowList()
            for entry in options.allow { try allow.add(entry) }
            let server = GatewayServer(
                listeners: [ListenerSpec(.http, try ListenAddress(parsing: address), allow: allow, option: "--status")],
                configuration: GatewayConfiguration(application: EmperorStatusApplication { emperor.status }, logger: logger))
            statusGroup = ServiceGroup(services: [server], logger: logger)
        }
        let forwarding = Task { for await number in signals { emperor.post(.signal(number)) } }
        defer { forwarding.cancel() }
        let statusTask = statusGroup.map { group in Task { try await group.run() } }
        try await emperor.run()
        await statusGroup?.triggerGracefulShutdown()
        try? await statusTask?.value
        logger.notice("emperor: stopped")
    }

    /// `--run-dir`, systemd's `RUNTIME_DIRECTORY`, or a new private directory under /tmp
    /// (removed at exit: `temporary`).
    static func makeRunDirectory(_ given: String?, environment: [String: String]) throws -> (path: String, temporary: Bool) {
        if let given = given ?? environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first.map(String.init) {
            if mkdir(given, 0o711) != 0 && errno != EEXIST { throw EmperorError.system("--run-dir \(given): cannot create it", errno: errno) }
            return (given, false)
        }
        var template = Array("/tmp/postern-emperor.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw EmperorError.system("cannot create a run directory under /tmp", errno: errno) }
        // Its files are found by name, not listed: an app that drops to its "user" reaches them.
        chmod(made, 0o711)
        return (String(cString: made), true)
    }

    private static func removeDirectory(_ path: String) {
        guard let handle = opendir(path) else { return }
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            if name != "." && name != ".." { unlink(path + "/" + name) }
        }
        closedir(handle)
        rmdir(path)
    }
}
