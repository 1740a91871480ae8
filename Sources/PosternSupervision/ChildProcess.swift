import CPosternSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a child process (a worker, an app, a binary checked before an upgrade) with
/// posix_spawn(3), never `fork`: a multithreaded Swift process must not fork. The listening
/// sockets a child is to inherit are those without FD_CLOEXEC (``InheritedDescriptors``). The
/// child starts with an empty signal mask and default dispositions, whatever the parent blocks
/// or ignores, but for the routine signals (``SignalEvents/routine``), which stay ignored until
/// it listens for them.
package enum ChildProcess {
    /// The path the binary was started from, made absolute (against the starting directory, or
    /// found on PATH) but with its symlinks kept: a deploy that renames a new file over the old
    /// one (install(1), dpkg) or swaps a symlink is what a reload then starts. Computed at start.
    package static func startedFrom(_ argument0: String = CommandLine.arguments.first ?? "", environment: [String: String]) -> String? {
        if argument0.contains("/") {
            if argument0.hasPrefix("/") { return argument0 }
            var buffer = [CChar](repeating: 0, count: 4096)
            guard getcwd(&buffer, buffer.count) != nil else { return nil }
            let directory = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            return String(decoding: directory, as: UTF8.self) + "/" + argument0
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") where directory.hasPrefix("/") {
            let candidate = "\(directory)/\(argument0)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// What to start now: the path the binary was started from while an executable file is
    /// there, else the image this process runs (`/proc/self/exe`: the old binary, even deleted).
    package static func executable(startedFrom: String?) -> String {
        if let startedFrom, access(startedFrom, X_OK) == 0 { return startedFrom }
        return "/proc/self/exe"
    }

    /// - Parameters:
    ///   - standardInputNull: standard input on /dev/null (else inherited).
    ///   - standardOutput, standardError: descriptors to give the child as 1 and 2 (else inherited).
    ///   - closingOthers: every descriptor from 3 up closed in the child (a check needs none:
    ///     SwiftNIO opens its sockets, a status connection included, without close-on-exec, and a
    ///     child holding one keeps it open after the parent has answered).
    ///   - keeping: descriptors the child inherits under the same numbers, close-on-exec here or
    ///     not (a `dup2` onto itself clears the flag in the child alone: POSIX.1-2024, glibc 2.29),
    ///     so a parent that starts several children gives each only its own sockets.
    ///   - passing: descriptors the child gets as 3, 4, … (``passedNumbers(_:)``), and nothing else
    ///     from 3 up, whatever this process opens meanwhile on other threads (a sweep that marks
    ///     descriptors close-on-exec before the spawn misses a connection accepted after it).
    package static func spawn(
        executable: String, arguments: [String], environment: [String: String], standardInputNull: Bool = false, standardOutput: Int32? = nil,
        standardError: Int32? = nil, closingOthers: Bool = false, keeping: [Int32] = [], passing: [Int32] = []
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if standardInputNull { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        if let standardOutput { posix_spawn_file_actions_adddup2(&actions, standardOutput, 1) }
        if let standardError { posix_spawn_file_actions_adddup2(&actions, standardError, 2) }
        if closingOthers { _ = postern_spawn_close_from(&actions, 3) }
        for fd in keeping { posix_spawn_file_actions_adddup2(&actions, fd, fd) }
        if !passing.isEmpty {
            // In the child: each copied above every descriptor passed (so no copy lands on one
            // not yet copied), then onto 3, 4, …, then everything above those closed.
            var limit = rlimit()
            getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
            let top = Int32(clamping: min(limit.rlim_cur, 1 << 20)) - 1
            guard let highest = passing.max(), top - Int32(passing.count) > max(highest, Int32(2 + passing.count)) else {
                throw ProcessStartError.cannotSpawn(executable: executable, errno: EMFILE)
            }
            for (index, fd) in passing.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, top - Int32(index)) }
            for index in passing.indices { posix_spawn_file_actions_adddup2(&actions, top - Int32(index), 3 + Int32(index)) }
            let closed = postern_spawn_close_from(&actions, 3 + Int32(passing.count))
            guard closed == 0 else { throw ProcessStartError.cannotSpawn(executable: executable, errno: closed) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        // The routine signals keep the parent's disposition (ignored, SignalEvents): a SIGUSR1
        // passed on while the child starts is lost, not the child's death.
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

    /// The numbers `count` descriptors passed with `spawn(…passing:)` have in the child.
    package static func passedNumbers(_ count: Int) -> [Int32] { (0..<count).map { 3 + Int32($0) } }

    /// A pipe whose two ends are close-on-exec (a child gets one end through a file action).
    package static func makePipe(_ ends: inout [Int32]) -> Bool {
        ends.withUnsafeMutableBufferPointer { postern_pipe_cloexec($0.baseAddress) } == 0
    }
}
