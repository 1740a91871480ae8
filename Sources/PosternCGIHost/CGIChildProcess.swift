import CPosternSocket
import Synchronization

/// A spawned CGI script: `postern_spawn` with pipes, its own process group, signals and reaping.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A running script. It leads its own process group, so ``signalGroup(_:)`` reaches whatever it
/// started too (a shell script's `sleep`). It must be reaped with ``tryReap()`` or ``killAndReap()``.
///
/// Started as glibc's posix_spawn(3) starts a process, with clone(CLONE_VM|CLONE_VFORK): a
/// multithreaded process must not fork(2), and this is the cheapest way to start one;
/// `postern_spawn` (CPosternSocket) keeps the child's stack from one spawn to the next.
public final class CGIChildProcess: Sendable {
    public let pid: pid_t
    /// Our ends of the pipes: the script's stdin (nil when the request has no body: the script
    /// gets /dev/null), stdout and stderr. Created close-on-exec; owned by the caller.
    public let stdinWrite: Int32?
    public let stdoutRead: Int32
    public let stderrRead: Int32
    private let status = Mutex<Int32?>(nil)

    public struct SpawnError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Starts `executable` with `arguments` (argv[1...]) and exactly `environment`, in `directory`.
    public init(executable: String, arguments: [String], environment: [[UInt8]], directory: String, withStdin: Bool) throws(SpawnError) {
        var pipes: [Int32] = []
        func makePipe() throws(SpawnError) -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            // pipe2(O_CLOEXEC): atomic, so a script spawned concurrently never inherits the other ends.
            guard postern_pipe_close_on_exec(&fds) == 0 else { throw SpawnError(description: "pipe2 failed: errno \(errno)") }
            pipes += fds
            return (fds[0], fds[1])
        }
        func closeAll() { for fd in pipes { close(fd) } }
        let input: (read: Int32, write: Int32)?
        let output: (read: Int32, write: Int32)
        let errors: (read: Int32, write: Int32)
        do {
            input = withStdin ? try makePipe() : nil
            output = try makePipe()
            errors = try makePipe()
        } catch {
            closeAll()
            throw error
        }

        // Default dispositions (``defaultSignals``), an empty signal mask, its own process group
        // (to signal the whole script), its directory, nothing else of the gateway (not its
        // listening sockets, not other clients' connections: a script holding one would keep
        // that client waiting until it exits).
        var defaults = Self.defaultSignals
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp =
            environment.map { entry in
                entry.withUnsafeBufferPointer { bytes -> UnsafeMutablePointer<CChar>? in
                    let pointer = malloc(bytes.count + 1)!.assumingMemoryBound(to: CChar.self)
                    UnsafeMutableRawPointer(pointer).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                    pointer[bytes.count] = 0
                    return pointer
                }
            } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        let child = executable.withCString { path in
            directory.withCString { directory in
                argv.withUnsafeBufferPointer { argv in
                    envp.withUnsafeBufferPointer { envp in
                        withUnsafePointer(to: &defaults) { defaults in
                            var request = postern_spawn_request(
                                path: path, argv: argv.baseAddress, envp: envp.baseAddress, directory: directory,
                                stdin_fd: input?.read ?? -1, stdout_fd: output.write, stderr_fd: errors.write, defaults: defaults)
                            return postern_spawn(&request)
                        }
                    }
                }
            }
        }
        // The script's ends belong to the script now.
        if let input { close(input.read) }
        close(output.write)
        close(errors.write)
        guard child > 0 else {
            if let input { close(input.write) }
            close(output.read)
            close(errors.read)
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(-child)))")
        }
        pid = child
        stdinWrite = input?.write
        stdoutRead = output.read
        stderrRead = errors.read
    }

    /// Signals a script gets at their default action whatever the gateway does with them (it
    /// ignores SIGPIPE, handles SIGHUP, SIGTERM, SIGUSR1...: a script must inherit none of that).
    private static let defaultSignals: sigset_t = {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in [SIGPIPE, SIGXFSZ, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH] {
            sigaddset(&set, signal)
        }
        return set
    }()

    /// Sends `signal` to the script's process group (ignored once reaped: the id may be reused).
    public func signalGroup(_ signal: Int32) {
        status.withLock { status in
            if status == nil { _ = kill(-pid, signal) }
        }
    }

    /// Whether the script has exited (or been reaped), without reaping it: an exited script that
    /// is not yet reaped still holds its process id, so its process group cannot be another's,
    /// and ``signalGroup(_:)`` still reaches whatever it left running (waitid(2), WNOWAIT).
    public var hasExited: Bool {
        status.withLock { status in
            if status != nil { return true }
            var info = siginfo_t()
            let result = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
            return (result == 0 && info.si_signo == SIGCHLD) || (result < 0 && errno == ECHILD)
        }
    }

    /// Reaps the script if it has exited; returns its wait status, or nil while it runs.
    public func tryReap() -> Int32? {
        status.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid || (result < 0 && errno == ECHILD) {
                status = raw
                return raw
            }
            return nil
        }
    }

    /// SIGKILLs the group and waits for the script: the last resort, never long.
    public func killAndReap() {
        signalGroup(SIGKILL)
        status.withLock { status in
            guard status == nil else { return }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            status = raw
        }
    }

    /// Whether the script has been reaped.
    public var isReaped: Bool { status.withLock { $0 != nil } }

    /// `exit N` or `signal N` for a reaped wait status.
    public static func describe(status raw: Int32) -> String {
        let signal = raw & 0x7f
        return signal == 0 ? "exit \((raw >> 8) & 0xff)" : "signal \(signal)"
    }
}
