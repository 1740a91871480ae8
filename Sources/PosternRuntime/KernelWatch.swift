import CPosternSocket
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's one thread (`postern-watch`) and one epoll set that wait for the kernel on
/// behalf of requests that wait: a fast-path connection whose peer may go away while its
/// application works (``PeerWatch``), and a CGI script's exit (its pidfd) and its pipes' data
/// (the CGI host's reactor). Nothing here reads or writes: a callback wakes whoever does.
///
/// Each arming fires once; its callback runs on the watch's thread and must be quick. Events
/// carry a token, not the descriptor's number: a number can be closed and reused while an event
/// for it is on its way, and a stale event must never call another watch's callback.
package final class KernelWatch: Sendable {
    /// The process's watch, started by the first request that waits; nil when it cannot be (no
    /// descriptor or thread left).
    package static var shared: KernelWatch? {
        started.withLock { watch in
            if watch == nil { watch = KernelWatch() }
            return watch
        }
    }

    private static let started = Mutex<KernelWatch?>(nil)

    private let epoll: Int32
    private let callbacks = Mutex<(next: UInt64, byToken: [UInt64: @Sendable () -> Void])>((1, [:]))

    private init?() {
        epoll = postern_watch_create()
        guard epoll >= 0 else { return nil }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        guard
            pthread_create(
                &thread, nil,
                { context in
                    let watch = Unmanaged<KernelWatch>.fromOpaque(context!).takeRetainedValue()
                    watch.waitForEvents()
                    return nil
                }, context) == 0
        else {
            Unmanaged<KernelWatch>.fromOpaque(context).release()
            close(epoll)
            return nil
        }
        pthread_detach(thread)
    }

    /// Calls `onGone` once if the peer of `fd` resets or, with `endMeansGone`, ends its input.
    /// Returns the arming's token, or nil when the kernel refused.
    package func watchPeer(_ fd: Int32, endMeansGone: Bool, _ onGone: @escaping @Sendable () -> Void) -> UInt64? {
        arm(onGone) { token in postern_peer_watch_add(epoll, fd, endMeansGone ? 1 : 0, token) }
    }

    /// Calls `callback` once `fd` is readable (or its writers are gone). `add`: the first arming
    /// of `fd`; later ones re-arm it. Returns the arming's token, or nil when the kernel refused.
    package func whenReadable(_ fd: Int32, add: Bool, _ callback: @escaping @Sendable () -> Void) -> UInt64? {
        arm(callback) { token in postern_watch_arm(epoll, fd, add ? 1 : 0, token) }
    }

    /// Takes `fd` out of the set, and drops the callback of its arming `token` if it has not run;
    /// call it before closing `fd`.
    package func stop(_ fd: Int32, token: UInt64?) {
        if let token { drop(token) }
        _ = postern_watch_remove(epoll, fd)
    }

    /// Registers `callback` under a fresh token and gives the token to the kernel through
    /// `control` (an epoll_ctl: 0, or -1 with errno); on a refusal the callback is dropped.
    private func arm(_ callback: @escaping @Sendable () -> Void, _ control: (UInt64) -> Int32) -> UInt64? {
        let token = callbacks.withLock { callbacks in
            defer { callbacks.next += 1 }
            callbacks.byToken[callbacks.next] = callback
            return callbacks.next
        }
        guard control(token) == 0 else {
            drop(token)
            return nil
        }
        return token
    }

    private func drop(_ token: UInt64) {
        callbacks.withLock { _ = $0.byToken.removeValue(forKey: token) }
    }

    private func waitForEvents() {
        _ = postern_set_thread_name("postern-watch")
        // Signals are for the threads that handle them, as on the accept threads.
        var blocked = sigset_t()
        sigfillset(&blocked)
        for fault in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] { sigdelset(&blocked, fault) }
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        // A buffer for the thread's life, not an array: an array passed as `&ready` and then
        // sliced for the loop is copied at every wait, and those copies leak.
        let ready = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
        while true {
            let count = Int(postern_watch_wait(epoll, ready, 64))
            guard count > 0 else { continue }  // EINTR
            for index in 0..<count {
                let token = ready[index]
                callbacks.withLock { $0.byToken.removeValue(forKey: token) }?()
            }
        }
    }
}
