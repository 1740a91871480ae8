import Logging
import PosternOps
import PosternSupervision

#if canImport(Glibc)
import Glibc
#endif

/// The log files a server run as root with `--user` writes: created (when missing) and given to
/// that user before any process opens them, so that a worker, or a single process executed
/// again as the user, can open them, and open them again after logrotate has moved them
/// (SIGUSR1: the master makes the new files first, then tells the workers). A file that exists
/// and belongs to someone else is given to the user too: the server is its only writer.
package enum LogFiles {
    /// The process's logging: every logger writes to `--error-log` (kept as
    /// ``ErrorLogFile/current``, which SIGUSR1 opens again) or standard error, at `level`.
    /// Returns the process's own logger, `label`.
    package static func bootstrap(errorLog path: String?, level: Logger.Level, label: String) throws -> Logger {
        let errorLog = try path.map { try ErrorLogFile(path: $0) }
        ErrorLogFile.current = errorLog
        LoggingSystem.bootstrap { label in
            var handler = errorLog.map { StreamLogHandler(label: label, stream: $0) } ?? StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    /// `--access-log` (not `-`, standard output) and `--error-log`.
    static func paths(_ options: ServeOptions) -> [(option: String, path: String)] {
        var paths: [(String, String)] = []
        if let path = options.accessLog, path != "-" { paths.append(("--access-log", path)) }
        if let path = options.errorLog { paths.append(("--error-log", path)) }
        return paths
    }

    /// As root with `--user`: each log file opened (created 0640 if missing) and owned by the
    /// user and its group. Problems are logged, not thrown: the process that writes the file
    /// says what it cannot open, with the path.
    static func prepare(_ options: ServeOptions, logger: Logger?) {
        prepare(paths(options), user: options.user, group: options.group, logger: logger)
    }

    /// The same for any process's log files (`postern emperor --user`).
    package static func prepare(_ paths: [(option: String, path: String)], user userText: String?, group groupText: String?, logger: Logger?) {
        guard geteuid() == 0, let userText, let account = try? Privileges.user(userText) else { return }
        let group = (try? groupText.map(Privileges.group)) ?? account.primaryGroup
        for (option, path) in paths {
            // Not a FIFO that would block, not a link to another file: a plain file of its own.
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o640)
            guard fd >= 0 else {
                logger?.error("\(option) \(path): cannot create it for --user \(userText): \(String(cString: strerror(errno)))")
                continue
            }
            var status = stat()
            guard fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, status.st_nlink == 1 else {
                logger?.error("\(option) \(path): not a plain file with one link; not giving it to --user \(userText)")
                close(fd)
                continue
            }
            if fchown(fd, account.id, group) != 0 {
                logger?.error("\(option) \(path): cannot give it to --user \(userText): \(String(cString: strerror(errno)))")
            }
            close(fd)
        }
    }
}
