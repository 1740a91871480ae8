/// Watches the fast path's connections whose application waits for something (a CGI script, a
/// database, a timer), so that a peer that goes away cancels the application's task without a
/// SwiftNIO channel made for the wait (``WholeRequestCycle``). A reset ends the wait on every
/// protocol; the end of the peer's input ends it where the protocol says a peer never
/// half-closes (FastCGI). The waiting is the process's ``KernelWatch``.
struct PeerWatch: Sendable {
    /// The process's watch; nil when the kernel watch cannot run (no descriptor or thread left:
    /// the request then waits on a channel).
    static var shared: PeerWatch? {
        KernelWatch.shared.map(PeerWatch.init)
    }

    private let kernel: KernelWatch

    /// One connection's watch: ``end()`` it before the descriptor is closed.
    struct Watch: Sendable {
        fileprivate let fd: Int32
        fileprivate let token: UInt64
        fileprivate let kernel: KernelWatch

        /// Stops watching: the callback is not called after this returns.
        func end() {
            kernel.stop(fd, token: token)
        }
    }

    /// Calls `onGone` once (on the watch's thread: it must be quick) if the peer of `fd` resets,
    /// or, with `endMeansGone`, ends its input. Nil when the kernel refused.
    func watch(_ fd: Int32, endMeansGone: Bool, _ onGone: @escaping @Sendable () -> Void) -> Watch? {
        kernel.watchPeer(fd, endMeansGone: endMeansGone, onGone).map { Watch(fd: fd, token: $0, kernel: kernel) }
    }
}
