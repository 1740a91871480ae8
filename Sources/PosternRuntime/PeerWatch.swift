import CPosternSocket
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Watches the fast path's connections whose application waits for something (a CGI script, a
/// database, a timer), on one thread (`postern-peers`) and one epoll set, so that a peer that
/// goes away cancels the application's task without a SwiftNIO channel made for the wait
/// (``WholeRequestCycle``). A reset ends the wait on every protocol; the end of the peer's input
/// ends it where the protocol says a peer never half-closes (FastCGI).
///
/// Each watch fires once. Its events carry a token, not the descriptor's number: a number can be
/// closed and reused while an event for it is on its way, and a stale event must never cancel
/// another connection's request.
final class PeerWatch: Sendable {
    /// The process's watch, started by the first waiting request; nil when it cannot be (no
    /// descriptor or thread left: the request then waits on a channel, as the engine did before).
    static var shared: PeerWatch? {
        started.withLock { watch in
            if watch == nil { watch = PeerWatch() }
            return watch
        }
    }

    private static let started = Mutex<PeerWatch?>(nil)

    private let epoll: Int32
    private let watches = Mutex<(next: UInt64, callbacks: [UInt64: @Sendable () -> Void])>((1, [:]))

    private init?() {
        epoll = postern_watch_create()
        guard epoll >= 0 else { return nil }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        guard
            pthread_create(
                &thread, nil,
                { context in
                    let watch = Unmanaged<PeerWatch>.fromOpaque(context!).takeRetainedValue()
                    watch.waitForEvents()
                    return nil
                }, context) == 0
        else {
            Unmanaged<PeerWatch>.fromOpaque(context).release()
            close(epoll)
            return nil
        }
        pthread_detach(thread)
    }

    /// One connection's watch: ``end()`` it before the descriptor is closed.
    struct Watch: Sendable {
        fileprivate let fd: Int32
        fileprivate let token: UInt64
        fileprivate let owner: PeerWatch

        /// Stops watching: the callback is not called after this returns.
        func end() {
            owner.watches.withLock { _ = $0.callbacks.removeValue(forKey: token) }
            _ = postern_watch_remove(owner.epoll, fd)
        }
    }

    /// Calls `onGone` once (on the watch's thread: it must be quick) if the peer of `fd` resets,
    /// or, with `endMeansGone`, ends its input. Nil when the kernel refused.
    func watch(_ fd: Int32, endMeansGone: Bool, _ onGone: @escaping @Sendable () -> Void) -> Watch? {
        let token = watches.withLock { watches in
            defer { watches.next += 1 }
            watches.callbacks[watches.next] = onGone
            return watches.next
        }
        guard postern_peer_watch_add(epoll, fd, endMeansGone ? 1 : 0, token) == 0 else {
            watches.withLock { _ = $0.callbacks.removeValue(forKey: token) }
            return nil
        }
        return Watch(fd: fd, token: token, owner: self)
    }

    private func waitForEvents() {
        _ = postern_set_thread_name("postern-peers")
        // Signals are for the threads that handle them, as on the accept threads.
        var blocked = sigset_t()
        sigfillset(&blocked)
        for fault in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] { sigdelset(&blocked, fault) }
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        // A buffer for the thread's life, not an array (see CGIReactor's loop: an array passed
        // as `&ready` and sliced was copied at every wait, the copies never freed).
        let ready = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
        while true {
            let count = Int(postern_peer_watch_wait(epoll, ready, 64))
            guard count > 0 else { continue }  // EINTR
            for index in 0..<count {
                let token = ready[index]
                watches.withLock { $0.callbacks.removeValue(forKey: token) }?()
            }
        }
    }
}
