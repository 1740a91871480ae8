/// A child process (front-end, backend) spawned with a clean signal mask and always stopped.
import Foundation

/// A child process a live test starts (a front-end, a backend): its output goes to a file in the
/// test's directory, and ``stop()`` ends it (SIGTERM, then SIGKILL) even when a check failed.
///
/// Spawned with `posix_spawn` and an empty signal mask: a child started by Foundation's `Process`
/// from a Swift test inherits a mask with SIGTERM blocked, and a front-end that ignores SIGTERM
/// would have to be killed, orphaning its own children. Descriptors from 3 up are closed in the
/// child (glibc 2.34+): a test's client sockets are not close-on-exec, and a child holding a copy
/// keeps a connection open after the test has closed it.
public final class ManagedProcess: @unchecked Sendable {
    public let name: String
    public let pid: pid_t
    public let logPath: String
    private var exited = false

    public init(name: String, executable: String, arguments: [String], environment: [String: String]? = nil, directory: String) throws {
        self.name = name
        self.logPath = directory + "/\(name).log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        if let addCloseFrom = Self.addCloseFrom { _ = addCloseFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for variable in env { free(variable) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, env)
        guard result == 0 else { throw FrontEndError.cannotStart(executable: executable, errno: result) }
        self.pid = pid
    }

    public var isRunning: Bool {
        guard !exited else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { exited = true }
        return !exited
    }

    /// Waits for the process to exit: its exit code (the low byte of `exit`'s status; 0 for a
    /// signal's death), or `nil` when it still runs after `seconds`.
    public func waitForExit(seconds: Double) async -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if !exited, waitpid(pid, &status, WNOHANG) == pid {
                exited = true
                return (status >> 8) & 0xff
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// What the process printed.
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    public func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<100 where isRunning { usleep(50_000) }
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            exited = true
        }
    }

    deinit { stop() }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does not export.
    private static let addCloseFrom: AddCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddCloseFrom.self) }
}
