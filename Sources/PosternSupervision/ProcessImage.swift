import PosternRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// This process becomes a new image of the binary: the in-place upgrade of a master (SIGUSR2)
/// and the reload in place of a single process (``InPlaceReload``).
package enum ProcessImage {
    /// Executes `executable` with this process's arguments, keeping only the descriptors in
    /// `keep` (the rest are marked close-on-exec) and the session-ticket secret
    /// (``TLSTicketKeys/passAcrossExec()``: sessions outlive the exec), with the routine signals
    /// ignored until the new image listens for them and an empty signal mask. Returns only when
    /// `execv` failed: its error.
    package static func replace(with executable: String, keeping keep: Set<Int32>) -> String {
        SignalEvents.ignoreRoutineSignalsAcrossExec()
        let arguments = ([executable] + CommandLine.arguments.dropFirst()).map { strdup($0) } + [nil]
        let secret = TLSTicketKeys.passAcrossExec()
        // Just before execv: what other threads open meanwhile (a status connection SwiftNIO
        // accepts without close-on-exec) has the shortest window to pass into the new image.
        InheritedDescriptors.closeOnExec(except: secret.map { keep.union([$0]) } ?? keep)
        // The new image starts with this thread's signal mask: an empty one (last, so that no
        // handler runs on this thread in between and leaves its own mask behind).
        var empty = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, nil)
        execv(executable, arguments)
        let reason = String(cString: strerror(errno))
        TLSTicketKeys.cancelPassing(secret)
        for argument in arguments { free(argument) }
        return reason
    }
}
