import CPosternSocket
import PosternRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Wakes a script's run for what it would otherwise poll for or hand to an event loop: the
/// script's exit, through its pidfd (pidfd_open(2), Linux 5.3: readable once the process has
/// exited), and data on its stdout and stderr (``CGIPipeReader`` reads them itself and arms the
/// reactor only when a pipe is empty). The waiting is the process's `KernelWatch`, the thread
/// and epoll set the runtime's waiting requests share. Each arming is one-shot: a callback runs
/// once, on the watch's thread, and must be quick.
///
/// It never reaps: an exit callback runs while the script is a zombie, and its run reaps it
/// (``CGIChildProcess/tryReap()`` then succeeds at once), so the process group id stays the
/// script's until the run has signalled the group.
final class CGIReactor: Sendable {
    /// The process's reactor, started by the first script run; nil when it cannot be (no
    /// descriptor or thread left: that run fails with 500, and the next one tries again).
    static var shared: CGIReactor? {
        started.withLock { reactor in
            if reactor == nil { reactor = KernelWatch.shared.map { CGIReactor(kernel: $0) } }
            return reactor
        }
    }

    private static let started = Mutex<CGIReactor?>(nil)

    private let kernel: KernelWatch
    /// pidfd_open works here (Linux 5.3; a seccomp filter may refuse it): without it, runs poll
    /// for their script's exit.
    private let hasPidfd: Bool
    /// Each armed descriptor's current arming, so that ``forget(_:)`` drops its callback.
    private let armings = Mutex<[Int32: UInt64]>([:])

    private init(kernel: KernelWatch) {
        self.kernel = kernel
        let probe = postern_pidfd_open(getpid())
        hasPidfd = probe >= 0
        if probe >= 0 { close(probe) }
    }

    /// Calls `callback` once `fd` is readable (or its writers are gone). `add`: the first arming
    /// of `fd`; later ones re-arm it. False when the kernel refused (the callback is dropped).
    func arm(_ fd: Int32, add: Bool, _ callback: @escaping @Sendable () -> Void) -> Bool {
        guard let token = kernel.whenReadable(fd, add: add, callback) else { return false }
        armings.withLock { $0[fd] = token }
        return true
    }

    /// Takes `fd` out of the set and drops its callback; call it before closing `fd`.
    func forget(_ fd: Int32) {
        kernel.stop(fd, token: armings.withLock { $0.removeValue(forKey: fd) })
    }

    /// Calls `onExit` once process `pid` has exited (at once if it has). False when it cannot
    /// be watched (no pidfd for it); the callback is then never called.
    func watchExit(of pid: pid_t, _ onExit: @escaping @Sendable () -> Void) -> Bool {
        guard hasPidfd else { return false }
        let pidfd = postern_pidfd_open(pid)
        guard pidfd >= 0 else { return false }
        @Sendable func exited() {
            // A descriptor number can be closed and reused between epoll_wait and the callback
            // table: act only on a pidfd that really is readable, else wait again.
            var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 0) == 1 else {
                if !arm(pidfd, add: false, exited) {
                    forget(pidfd)
                    close(pidfd)
                }
                return
            }
            forget(pidfd)
            close(pidfd)
            onExit()
        }
        guard arm(pidfd, add: true, exited) else {
            close(pidfd)
            return false
        }
        return true
    }
}
