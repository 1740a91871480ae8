import CPosternSocket
import Synchronization

/// The CGI host's one thread that waits for the kernel: scripts' exits and their pipes' data.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Waits, on one thread (`postern-cgi-io`) and one epoll set, for what a script run would
/// otherwise poll for or hand to an event loop: the script's exit, through its pidfd
/// (pidfd_open(2), Linux 5.3: readable once the process has exited), and data on its stdout and
/// stderr (``CGIPipeReader`` reads them itself and arms the reactor only when a pipe is empty).
/// Each arming is one-shot: a callback runs once, on the reactor's thread, and must be quick.
///
/// It never reaps: an exit callback runs while the script is a zombie, and its run reaps it
/// (``CGIChildProcess/tryReap()`` then succeeds at once), so the process group id stays the
/// script's until the run has signalled the group.
final class CGIReactor: Sendable {
    /// The process's reactor, started by the first script run; nil when it cannot be (no
    /// descriptor or thread left: that run fails with 500, and the next one tries again).
    static var shared: CGIReactor? {
        started.withLock { reactor in
            if reactor == nil { reactor = CGIReactor() }
            return reactor
        }
    }

    private static let started = Mutex<CGIReactor?>(nil)

    private let epoll: Int32
    /// pidfd_open works here (Linux 5.3; a seccomp filter may refuse it): without it, runs poll
    /// for their script's exit.
    private let hasPidfd: Bool
    private let callbacks = Mutex<[Int32: @Sendable () -> Void]>([:])

    private init?() {
        let probe = postern_pidfd_open(getpid())
        hasPidfd = probe >= 0
        if probe >= 0 { close(probe) }
        epoll = postern_watch_create()
        guard epoll >= 0 else { return nil }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        guard
            pthread_create(
                &thread, nil,
                { context in
                    let reactor = Unmanaged<CGIReactor>.fromOpaque(context!).takeRetainedValue()
                    reactor.waitForEvents()
                    return nil
                }, context) == 0
        else {
            Unmanaged<CGIReactor>.fromOpaque(context).release()
            close(epoll)
            return nil
        }
        pthread_detach(thread)
    }

    /// Calls `callback` once `fd` is readable (or its writers are gone). `add`: the first arming
    /// of `fd`; later ones re-arm it. False when the kernel refused (the callback is dropped).
    func arm(_ fd: Int32, add: Bool, _ callback: @escaping @Sendable () -> Void) -> Bool {
        callbacks.withLock { $0[fd] = callback }
        guard postern_watch_arm(epoll, fd, add ? 1 : 0) == 0 else {
            callbacks.withLock { _ = $0.removeValue(forKey: fd) }
            return false
        }
        return true
    }

    /// Takes `fd` out of the set and drops its callback; call it before closing `fd`.
    func forget(_ fd: Int32) {
        callbacks.withLock { _ = $0.removeValue(forKey: fd) }
        _ = postern_watch_remove(epoll, fd)
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

    private func waitForEvents() {
        _ = postern_set_thread_name("postern-cgi-io")
        // Signals are for the threads that handle them, as on the accept threads.
        var blocked = sigset_t()
        sigfillset(&blocked)
        for fault in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] { sigdelset(&blocked, fault) }
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        // A buffer of its own for the thread's life, not an array: an array passed as `&ready`
        // and then sliced for the loop is copied at every wait, and those copies leak.
        let ready = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        while true {
            let count = Int(postern_watch_wait(epoll, ready, 64))
            guard count > 0 else { continue }  // EINTR
            for index in 0..<count {
                let fd = ready[index]
                callbacks.withLock { $0.removeValue(forKey: fd) }?()
            }
        }
    }
}
