import ArgumentParser
import Logging
import Postern
import PosternEmperor
import PosternSupervision

#if canImport(Glibc)
import Glibc
#endif

/// `postern emperor DIR`: every `DIR/NAME.json` is one app, started, reloaded and stopped as
/// its file appears, changes and goes (docs/emperor.md). Its own options come from the command
/// line, `POSTERN_*` variables and a `--config` file, as `serve`'s do (``ConfigurableCommand``).
struct EmperorCommand: AsyncParsableCommand, ConfigurableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emperor",
        abstract: "Run many apps from a directory of files: one DIR/NAME.json per app.",
        discussion: """
            Each file's keys are `postern serve` options as in a --config file, plus "exec" (an app binary built on \
            Gateway.main; default: postern serve). A new file starts its app, an edited or touched file reloads it alone \
            (checked first: a bad file is logged and the app serves on), a removed file stops it. The emperor holds every \
            app's sockets, so a restart refuses no connection. SIGHUP rescans the directory; SIGTERM stops every app \
            gracefully. Touch a file to start an app in backoff now. The emperor's own options may also come from \
            POSTERN_* variables (POSTERN_STATUS, POSTERN_LOG_LEVEL, …) and a --config file (JSON, the long option names \
            as keys), the command line first.
            """
    )

    @Argument(help: ArgumentHelp("The directory of app files.", valueName: "DIR"))
    var directory: String

    @Flag(
        help: ArgumentHelp(
            "As root: run each app as the owner (user and group) of its file, from its first instruction (through setpriv); a root-owned file must name its \"user\"."
        ))
    var tyrant = false

    @Option(help: ArgumentHelp("Serve the emperor's status page (JSON: every app) on HTTP at ADDR.", valueName: "ADDR"))
    var status: String?

    @Option(help: ArgumentHelp("Who may read the status page: an address or CIDR block; repeatable (default: anyone).", valueName: "CIDR"))
    var allow: [String] = []

    @Option(
        help: ArgumentHelp("The longest wait before an app that keeps exiting is started again (the wait starts at 1 s and doubles).", valueName: "SECONDS"))
    var throttleMax: Double = 60

    @Option(help: ArgumentHelp("How many apps are checked or started at the same time.", valueName: "N"))
    var maxStarting: Int = 8

    @Option(
        help: ArgumentHelp(
            "Where the apps' generated configuration files and the notify socket live (default: systemd's RUNTIME_DIRECTORY, else a new directory under /tmp).",
            valueName: "DIR"))
    var runDir: String?

    @Option(help: ArgumentHelp("Write the emperor's pid to FILE.", valueName: "FILE"))
    var pidFile: String?

    @Option(
        help: ArgumentHelp(
            "Append the emperor's log to FILE instead of standard error (SIGUSR1 opens it again, after logrotate, and is passed to every app).",
            valueName: "FILE"))
    var errorLog: String?

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "LEVEL"))
    var logLevel: String = "info"

    @Option(
        help: ArgumentHelp(
            "As root: run the emperor, and so every app, as this user (name or uid) from its start; its --error-log and --run-dir are given to it first.",
            valueName: "USER"))
    var user: String?

    @Option(help: ArgumentHelp("With --user: this group instead of the user's own.", valueName: "GROUP"))
    var group: String?

    @Flag(
        help: ArgumentHelp(
            "As root without --tyrant: let apps whose file names no \"user\" serve as root on any listener (each app's \"allow-root\"; without it, such an app may serve as root on loopback TCP only)."
        ))
    var allowRoot = false

    @Option(help: ArgumentHelp("Read the options above from FILE (JSON; keys are the long option names). Default: POSTERN_CONFIG.", valueName: "FILE"))
    var config: String?

    /// What a file or `POSTERN_*` variables may set: every option above but `--config`.
    static let declarations: [OptionDeclaration<EmperorCommand>] = [
        .flag("tyrant") { $0.tyrant }, .optional("status") { $0.status }, .list("allow") { $0.allow },
        .double("throttle-max") { $0.throttleMax }, .int("max-starting") { $0.maxStarting }, .optional("run-dir") { $0.runDir },
        .optional("pid-file") { $0.pidFile }, .optional("error-log") { $0.errorLog }, .string("log-level") { $0.logLevel },
        .optional("user") { $0.user }, .optional("group") { $0.group }, .flag("allow-root") { $0.allowRoot },
    ]

    static var configurationKeys: [ServeConfiguration.Key] { declarations.map(\.key) }

    func validate() throws {
        guard throttleMax >= 1 else { throw ValidationError("--throttle-max must be at least 1 (seconds)") }
        guard (1...1024).contains(maxStarting) else { throw ValidationError("--max-starting must be from 1 to 1024") }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        var status = stat()
        guard stat(directory, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw ValidationError("\(directory) is not a directory")
        }
        if group != nil && user == nil { throw ValidationError("--group is the group of --user: give --user too") }
        if let user {
            guard let account = try? Privileges.user(user) else { throw ValidationError("--user \(user): no such user") }
            guard geteuid() == 0 || geteuid() == account.id else { throw ValidationError("--user \(user): only root can become another user") }
        }
        if let group, (try? Privileges.group(group)) == nil { throw ValidationError("--group \(group): no such group") }
        if tyrant {
            guard user == nil else { throw ValidationError("--tyrant runs each app as its file's owner, which needs root: not with --user") }
            guard !allowRoot else { throw ValidationError("--tyrant runs each app as its file's owner: --allow-root has no app to apply to") }
            guard geteuid() == 0 else { throw ValidationError("--tyrant runs each app as its file's owner: it needs root") }
            guard access(Self.setpriv, X_OK) == 0 else { throw ValidationError("--tyrant needs \(Self.setpriv) (util-linux)") }
            // Whoever may write in the directory chooses an app's binary: it must be root's alone.
            guard status.st_uid == 0, status.st_mode & (S_IWGRP | S_IWOTH) == 0 || status.st_mode & S_ISVTX != 0 else {
                throw ValidationError(
                    "--tyrant: \(directory) must belong to root and be writable by root alone (or sticky, as /tmp), or a user could replace another's file")
            }
        }
    }

    func run() async throws {
        if let user, geteuid() == 0 {
            // The emperor becomes the user before it opens anything else, and executes itself
            // again (as `serve --user` does) so that /proc and ps show the user too.
            LogFiles.prepare(errorLog.map { [("--error-log", $0)] } ?? [], user: user, group: group, logger: nil)
            if let runDir {
                let account = try Privileges.user(user)
                if mkdir(runDir, 0o711) != 0 && errno != EEXIST {
                    throw ValidationError("--run-dir \(runDir): cannot create it: \(String(cString: strerror(errno)))")
                }
                guard chown(runDir, account.id, try group.map(Privileges.group) ?? account.primaryGroup) == 0 else {
                    throw ValidationError("--run-dir \(runDir): cannot give it to --user \(user): \(String(cString: strerror(errno)))")
                }
            }
            do {
                try Privileges.dropPrivilegesAndReexecute(ProcessIdentity(user: user, group: group), listeners: [], socketFiles: [], keepEnvironment: true)
            } catch {
                StandardError.write("Error: \(error)\n")
                throw ExitCode(64)
            }
        }
        var options = EmperorProcess.Options(directory: Self.absolute(directory))
        options.runDirectory = runDir.map(Self.absolute)
        options.status = status
        options.allow = allow
        options.throttleMax = throttleMax
        options.maxStarting = maxStarting
        options.pidFile = pidFile
        options.errorLog = errorLog
        options.logLevel = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        options.tyrant = tyrant ? Self.setpriv : nil
        options.allowRoot = allowRoot
        let environment = ProcessEnvironment.current
        let executable = ChildProcess.executable(startedFrom: ChildProcess.startedFrom(environment: environment))
        do {
            try await EmperorProcess.run(options, ownExecutable: executable, environment: environment)
        } catch {
            StandardError.write("Error: \(error)\n")
            throw ExitCode(64)
        }
    }

    static let setpriv = "/usr/bin/setpriv"

    /// `path` against the working directory (the apps' paths are written into their files).
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let directory = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (directory == "/" ? "" : directory) + "/" + (path == "." ? "" : path)
    }
}
