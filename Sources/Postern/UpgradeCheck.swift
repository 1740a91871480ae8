import CPosternSocket
import FoundationEssentials
import PosternSupervision
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Before a binary replaces a running server in place (a master's SIGUSR2, a single process's
/// SIGHUP or SIGUSR2), it is run once with the same arguments and `--check-config`, as
/// `nginx -t` and `php-fpm -t` are: it must start, read the configuration file and every
/// option, make the app, print its version and exit 0 within `timeout`. Anything else (a file
/// that is not executable, a crash, a bad option, an `exit 1`) keeps the running image, with
/// the reason logged: a broken binary installed in place never takes the service down.
///
/// The check runs without the variables that would make it a worker, an upgraded master, a
/// socket-activated server or a CGI program, with standard input on /dev/null.
package enum UpgradeCheck {
    package enum Result: Sendable, Equatable {
        case passed(executable: String, version: String)
        case failed(String)
    }

    /// What the check process must not see: each would make it something other than a check.
    package static let strippedVariables: Set<String> = [
        WorkerEnvironment.markerKey, WorkerEnvironment.listenersKey, WorkerEnvironment.statsKey, WorkerEnvironment.masterKey,
        WorkerMaster.upgradeListenersKey, WorkerMaster.upgradeWorkersKey, WorkerMaster.upgradeStatsKey,
        Privileges.inheritedKey, Privileges.socketFilesKey, "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
        "WATCHDOG_USEC", "WATCHDOG_PID", "GATEWAY_INTERFACE", EmperorLink.key,
    ]

    /// The line a passing check prints first; the version follows it.
    static let passedPrefix = "configuration OK: "

    /// ``run(_:arguments:timeout:)`` on a thread of its own: the check waits for a process (a
    /// tenth of a second, or up to `timeout`), and a task would wait on an event loop.
    static func runOnItsOwnThread(_ executable: String, timeout: Double = 30) async -> Result {
        await withCheckedContinuation { continuation in
            PosixThread.start(name: "postern-check") { continuation.resume(returning: run(executable, timeout: timeout)) }
        }
    }

    /// Runs `executable --check-config` (this process's arguments) and judges it. Blocking: call
    /// it off the event loops (``runOnItsOwnThread(_:)``).
    ///
    /// - Parameter environment: the check's environment before ``strippedVariables`` are
    ///   removed (this process's by default).
    package static func run(
        _ executable: String, arguments: [String] = Array(CommandLine.arguments.dropFirst()), environment: [String: String]? = nil, timeout: Double = 30
    ) -> Result {
        guard access(executable, X_OK) == 0 else { return .failed("\(executable) is not an executable file: \(String(cString: strerror(errno)))") }
        var environment = environment ?? ProcessInfo.processInfo.environment
        for name in strippedVariables { environment[name] = nil }
        var ends: [Int32] = [0, 0]
        guard ChildProcess.makePipe(&ends) else { return .failed("cannot make a pipe: \(String(cString: strerror(errno)))") }
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(
                executable: executable, arguments: arguments + ["--check-config"], environment: environment, standardInputNull: true,
                standardOutput: ends[1], standardError: ends[1], closingOthers: true)
        } catch {
            close(ends[0])
            close(ends[1])
            return .failed("\(executable) --check-config could not be started: \(error)")
        }
        close(ends[1])
        let collected = OutputCollector(ends[0])
        // Its own pid only: the master reaps only its workers, by pid.
        var status: Int32 = 0
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while waitpid(pid, &status, WNOHANG) == 0 {
            guard ContinuousClock.now < deadline else {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return .failed("\(executable) --check-config did not finish within \(Int(timeout)) s")
            }
            usleep(10_000)
        }
        let output = collected.text()
        let said = output.split(separator: "\n").suffix(4).joined(separator: " | ")
        let tail = said.isEmpty ? "" : ": \(said)"
        let exit = ChildExit(waitStatus: status)
        guard exit == .code(0) else {
            return .failed("\(executable) --check-config: \(exit)\(tail)")
        }
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(passedPrefix) }) else {
            return .failed("\(executable) --check-config exited 0 but did not say \"\(passedPrefix)…\" (not a Postern binary?)\(tail)")
        }
        return .passed(executable: executable, version: String(line.dropFirst(passedPrefix.count)))
    }

    /// Reads a pipe to its end on a thread of its own, so that a chatty check never blocks on
    /// a full pipe.
    private final class OutputCollector: Sendable {
        private let collected = Mutex<(data: [UInt8], done: Bool)>(([], false))

        init(_ fd: Int32) {
            PosixThread.start { [self] in
                var buffer = [UInt8](repeating: 0, count: 4096)
                var all: [UInt8] = []
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { break }
                    if all.count < 64 * 1024 { all.append(contentsOf: buffer[0..<count]) }
                }
                close(fd)
                collected.withLock { $0 = (all, true) }
            }
        }

        func text() -> String {
            for _ in 0..<100 where !collected.withLock({ $0.done }) { usleep(10_000) }
            return collected.withLock { String(decoding: $0.data.prefix(64 * 1024), as: UTF8.self) }
        }
    }
}
