#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a worker: the binary again (never `fork` — a multithreaded Swift process must not
/// fork), the same arguments, the environment plus the worker marker. The listening sockets are
/// inherited (they have no FD_CLOEXEC). The child starts with an empty signal mask and default
/// dispositions, whatever the master blocks or ignores, but for the routine signals
/// (``SignalEvents/routine``), which stay ignored until it listens for them.
enum WorkerProcess {
    /// The path the binary was started from, made absolute (against the starting directory, or
    /// found on PATH) but with its symlinks kept: a deploy that renames a new file over the old
    /// one (install(1), dpkg) or swaps a symlink is what a reload then starts. Computed at start.
    static func startedFrom(_ argument0: String = CommandLine.arguments.first ?? "", environment: [String: String]) -> String? {
        if argument0.contains("/") {
            if argument0.hasPrefix("/") { return argument0 }
            var buffer = [CChar](repeating: 0, count: 4096)
            guard getcwd(&buffer, buffer.count) != nil else { return nil }
            return String(cString: buffer) + "/" + argument0
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") where directory.hasPrefix("/") {
            let candidate = "\(directory)/\(argument0)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// What to start now: the path the binary was started from while an executable file is
    /// there, else the image this process runs (`/proc/self/exe`: the old binary, even deleted).
    static func executable(startedFrom: String?) -> String {
        if let startedFrom, access(startedFrom, X_OK) == 0 { return startedFrom }
        return "/proc/self/exe"
    }

    /// - Parameters:
    ///   - standardInputNull: standard input on /dev/null (else inherited).
    ///   - standardOutput, standardError: descriptors to give the child as 1 and 2 (else inherited).
    static func spawn(
        executable: String, arguments: [String], environment: [String: String], standardInputNull: Bool = false, standardOutput: Int32? = nil,
        standardError: Int32? = nil
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if standardInputNull { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        if let standardOutput { posix_spawn_file_actions_adddup2(&actions, standardOutput, 1) }
        if let standardError { posix_spawn_file_actions_adddup2(&actions, standardError, 2) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        // The routine signals keep the master's disposition (ignored, SignalEvents): a SIGUSR1
        // the master passes on while the worker starts is lost, not the worker's death.
        for number in SignalEvents.routine { sigdelset(&all, number) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let env = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for variable in env { free(variable) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, env)
        guard result == 0 else { throw ProcessStartError.cannotSpawn(executable: executable, errno: result) }
        return pid
    }
}

/// This process becomes a new image of the binary: the in-place upgrade of a master (SIGUSR2)
/// and the reload in place of a single process (``InPlaceReload``).
enum ProcessImage {
    /// Executes `executable` with this process's arguments, keeping only the descriptors in
    /// `keep` (the rest are marked close-on-exec), with the routine signals ignored until the new
    /// image listens for them and an empty signal mask. Returns only when `execv` failed: its
    /// error.
    static func replace(with executable: String, keeping keep: Set<Int32>) -> String {
        InheritedDescriptors.closeOnExec(except: keep)
        SignalEvents.ignoreRoutineSignalsAcrossExec()
        // The new image starts with this thread's signal mask: an empty one.
        var empty = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, nil)
        let arguments = ([executable] + CommandLine.arguments.dropFirst()).map { strdup($0) } + [nil]
        execv(executable, arguments)
        let reason = String(cString: strerror(errno))
        for argument in arguments { free(argument) }
        return reason
    }
}

/// Descriptors a master must not hand on.
enum InheritedDescriptors {
    /// Marks every open descriptor from 3 up close-on-exec, but `keep`: SwiftNIO's sockets (the
    /// master's `--status` listener, its event loops' epoll and event descriptors) are created
    /// without it and would otherwise pass into every worker and into an upgraded master, where
    /// a listening socket nobody accepts on holds its port and queues connections for ever.
    static func closeOnExec(except keep: Set<Int32>) {
        guard let directory = opendir("/proc/self/fd") else { return }
        defer { closedir(directory) }
        let own = dirfd(directory)
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            guard let fd = Int32(name), fd >= 3, fd != own, !keep.contains(fd) else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
