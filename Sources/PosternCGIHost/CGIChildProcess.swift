import Synchronization

/// A spawned CGI script: posix_spawn(3) with pipes, its own process group, signals and reaping.
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
/// posix_spawn(3) rather than fork(2): a multithreaded process must not fork, and glibc's
/// posix_spawn uses clone(CLONE_VM|CLONE_VFORK), the cheapest way to start a process.
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
            guard LibC.pipeCloseOnExec(&fds) == 0 else { throw SpawnError(description: "pipe2 failed: errno \(errno)") }
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

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.write, 2)
        LibC.addChdir(&actions, directory)
        // Nothing else of the gateway: not its listening sockets, not other clients' connections
        // (a script holding one would keep that client waiting until it exits).
        LibC.addCloseFrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group (to signal the whole script), default signal dispositions (the
        // gateway ignores SIGPIPE; a script must not inherit that), an empty signal mask.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGXFSZ, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH] {
            sigaddset(&defaults, signal)
        }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

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
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        // The script's ends belong to the script now.
        if let input { close(input.read) }
        close(output.write)
        close(errors.write)
        guard result == 0 else {
            if let input { close(input.write) }
            close(output.read)
            close(errors.read)
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        pid = child
        stdinWrite = input?.write
        stdoutRead = output.read
        stderrRead = errors.read
    }

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

/// glibc functions Swift's Glibc module hides behind `_GNU_SOURCE`, looked up once with dlsym(3).
enum LibC {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static let pipe2: Pipe2? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    static let addCloseFromNP: AddCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddCloseFrom.self)
    }
    static let addChdirNP: AddChdir? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np").map {
        unsafeBitCast($0, to: AddChdir.self)
    }

    /// pipe2(O_CLOEXEC): atomic, so a script spawned concurrently never inherits the other ends.
    static func pipeCloseOnExec(_ fds: UnsafeMutablePointer<Int32>) -> Int32 {
        if let pipe2 { return pipe2(fds, O_CLOEXEC) }
        guard pipe(fds) == 0 else { return -1 }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return 0
    }

    /// Closes every descriptor from `lowest` up in the child (glibc 2.34+). Without it, only the
    /// gateway's own close-on-exec descriptors stay out of the script: NIO's sockets do not.
    static func addCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32) {
        if let addCloseFromNP { _ = addCloseFromNP(actions, lowest) }
    }

    /// The script runs in its own directory, as Apache's mod_cgi does (glibc 2.29+).
    static func addChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ directory: String) {
        if let addChdirNP { _ = addChdirNP(actions, directory) }
    }
}
