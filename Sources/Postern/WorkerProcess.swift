#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a worker: this very binary again (`/proc/self/exe`, never `fork` — a multithreaded
/// Swift process must not fork), the same arguments, the environment plus the worker marker.
/// The listening sockets are inherited (they have no FD_CLOEXEC). The child starts with an empty
/// signal mask and default dispositions, whatever the master blocks or ignores.
enum WorkerProcess {
    /// The binary to re-execute: the path `/proc/self/exe` names, so that a binary replaced on
    /// disk (a deploy) is what a reload starts; `/proc/self/exe` itself if the file is gone.
    static var executable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { return "/proc/self/exe" }
        return path
    }

    static func spawn(executable: String, arguments: [String], environment: [String: String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, nil, &attributes, argv, env)
        guard result == 0 else { throw ServeError("cannot start a worker (\(executable)): \(String(cString: strerror(result)))") }
        return pid
    }
}
