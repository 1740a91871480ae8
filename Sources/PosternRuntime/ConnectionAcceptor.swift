import CPosternSocket
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The engine's front door on one listening socket: threads of its own accept, and each
/// accepted connection is either served on the spot by the fast path (``WholeRequestCycle``), or
/// handed over, with the bytes already read, to the full engine (SwiftNIO channels) through
/// ``accepted``, or, once ``handOver(to:)`` is called, to its closure on the accepting thread.
///
/// ```
///  accept4(listener, NONBLOCK|CLOEXEC) ──► fast path? read ─► whole request ─► app ─► one send ─► close
///     │ EAGAIN                                   │ not whole, not simple, or no fast path
///     ▼                                          ▼
///  epoll_wait(listener EXCLUSIVE, stop)      accepted  ─► a channel with the prefetched bytes
/// ```
/// A one-request connection costs accept4, read, send and close when the front-end sends its
/// request at once, as nginx, lighttpd and Apache do (uWSGI's sync worker costs the same, plus
/// its epoll_wait).
///
/// The same loop serves a socket shared with other worker processes: each thread waits in its
/// own epoll set with EPOLLEXCLUSIVE, so a new connection wakes one waiter instead of all, and a
/// lost race is an `EAGAIN`. (swift-nio's server channel must not accept on a shared socket:
/// when another process wins, its `assert(readResult == .some)` kills a debug build.) Stopping
/// never shuts the socket down: only this process's copy is closed, so connections still in the
/// backlog stay there for the other workers.
final class ConnectionAcceptor: Sendable {
    /// A connection for the full engine: the socket (non-blocking, close-on-exec) and what the
    /// fast path read from it already.
    struct AcceptedConnection: Sendable {
        let socket: CInt
        let prefetched: ByteBuffer
    }

    /// Connections for the full engine; finishes once every accept thread has stopped.
    let accepted: AsyncStream<AcceptedConnection>
    /// Set by ``handOver(to:)``: connections go to it, on the accept thread, instead of
    /// ``accepted``. (In a struct: a bare function value read through the mutex's `inout` is
    /// re-abstracted, and written back wrapped in one more thunk at every read.)
    private let directHandOver = Mutex<HandOver?>(nil)
    private struct HandOver: Sendable {
        let make: @Sendable (AcceptedConnection) -> Void
    }
    private let continuation: AsyncStream<AcceptedConnection>.Continuation
    private let listener: CInt
    private let wake: CInt
    private let threadCount: Int
    private let running: Atomic<Int>
    private let stopped = Atomic<Bool>(false)
    private let cycle: WholeRequestCycle?
    private let stalled: (@Sendable () -> Bool)?
    private let logger: Logger
    private let resourceWarning = ResourceWarning()

    /// - Parameters:
    ///   - threads: accept threads (the core count is a good number: each serves whole
    ///     requests itself, and never waits on a client).
    ///   - cycle: the fast path; `nil` hands every connection over (HTTP).
    ///   - stalled: in a worker, whether one of its event loops is blocked (an application
    ///     that blocks its thread); while it is, this process leaves new connections to the
    ///     other workers (see ``run()``).
    init(listeningSocket: CInt, threads: Int, cycle: WholeRequestCycle?, stalled: (@Sendable () -> Bool)? = nil, logger: Logger) throws {
        let wake = postern_wake_create()
        guard wake >= 0 else {
            throw SocketError.failed("cannot create the accept threads' wake-up descriptor", errno: errno)
        }
        let flags = fcntl(listeningSocket, F_GETFL)
        guard flags >= 0, fcntl(listeningSocket, F_SETFL, flags | O_NONBLOCK) == 0 else {
            close(wake)
            throw SocketError.failed("fd \(listeningSocket): cannot make it non-blocking", errno: errno)
        }
        self.listener = listeningSocket
        self.wake = wake
        self.threadCount = max(1, threads)
        self.running = Atomic(max(1, threads))
        self.cycle = cycle
        self.stalled = stalled
        self.logger = logger
        (accepted, continuation) = AsyncStream.makeStream(of: AcceptedConnection.self)
    }

    deinit {
        close(wake)
    }

    func start() {
        for _ in 0..<threadCount {
            PosixThread.start(name: "postern-accept") { [self] in
                Self.blockAsynchronousSignals()
                // Each request the fast path serves here has the thread to itself until it is
                // answered or goes on elsewhere (``InlineTaskExecutor``).
                postern_set_request_thread(1)
                run()
            }
        }
    }

    /// A signal sent to the process (SIGCHLD of a CGI script, SIGHUP, SIGUSR1) goes to another
    /// thread, never to one that waits for a request's first bytes: `poll` and `epoll_wait` fail
    /// with `EINTR` after a handler runs, whatever `SA_RESTART` says (signal(7)). The faults a
    /// thread raises itself stay deliverable.
    private static func blockAsynchronousSignals() {
        var signals = sigset_t()
        sigfillset(&signals)
        for fault in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS] { sigdelset(&signals, fault) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    /// Stops accepting; the connections already accepted are still served or handed over, and
    /// so are those waiting in the backlog as the last thread leaves (``serveBacklog(_:)``).
    /// Idempotent.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    private func run() {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: WholeRequestCycle.firstReadBytes, alignment: 16)
        defer {
            // The last thread out serves the backlog and closes this process's copy of the listener.
            if running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                if stopped.load(ordering: .acquiring) { serveBacklog(scratch) }
                close(listener)
                continuation.finish()
            }
            scratch.deallocate()
        }
        let epoll = postern_accept_wait_create(listener, wake)
        guard epoll >= 0 else {
            logger.error("accept thread: cannot create its epoll set; this thread does not accept", metadata: ["error": "\(String(cString: strerror(errno)))"])
            return
        }
        defer { close(epoll) }
        var peer = sockaddr_storage()
        var pausedSince: ContinuousClock.Instant?
        while !stopped.load(ordering: .acquiring) {
            // A worker with a blocked event loop would take connections it cannot serve (and
            // EPOLLEXCLUSIVE keeps waking the same waiters): it stops accepting, and stops
            // waiting, so the kernel wakes another worker's thread instead; `--harakiri` ends
            // the block if it lasts.
            if let stalled, stalled() {
                if pausedSince == nil {
                    pausedSince = .now
                    logger.warning(
                        "an event loop is blocked (an application blocking its thread?); this worker leaves new connections to the others until it answers")
                }
                usleep(10_000)
                continue
            }
            if let since = pausedSince {
                pausedSince = nil
                logger.notice("the event loops answer again; accepting", metadata: ["paused": "\(ContinuousClock.now - since)"])
            }
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = postern_accept(listener, &peer, &length)
            if client >= 0 {
                serve(client, peer: peer, scratch: scratch)
                continue
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK:
                // A worker's thread waits at most 100 ms at a time: EPOLLEXCLUSIVE wakes one
                // waiter per connection, and a thread woken just as its worker stalled leaves
                // that connection queued; the other workers' threads look again within 100 ms
                // and take it (and a stalled thread stops being a waiter the kernel could pick).
                if postern_accept_wait(epoll, stalled == nil ? -1 : 100) < 0 && errno != EINTR {
                    logger.error("accept thread: epoll_wait failed; this thread stops accepting", metadata: ["error": "\(String(cString: strerror(errno)))"])
                    return
                }
            case EINTR, ECONNABORTED, EPROTO:
                continue
            case let code where ResourceWarning.isOutOfResources(code):
                // Out of descriptors or memory: leave the connection queued a little while, and
                // say so once a second at most, not once a connection.
                if resourceWarning.isDue() {
                    logger.warning("cannot accept: \(String(cString: strerror(code))); connections wait in the backlog, retrying every 50 ms")
                }
                usleep(50_000)
            default:
                logger.error("accept thread: accept failed; this thread stops accepting", metadata: ["error": "\(String(cString: strerror(errno)))"])
                return
            }
        }
    }

    /// At a stop, the connections already in the listening socket's backlog: the kernel
    /// completed their handshakes, and a front-end has sent its request on most of them (with
    /// `TCP_DEFER_ACCEPT`, on all the fast path sees). Closing the socket would reset them, and
    /// a front-end cannot retry a request it has sent when it is not idempotent (nginx's
    /// `*_next_upstream`), so they are served like the others. When this process held the last
    /// copy of the socket, a connection that arrives after this is refused (a balancer tries
    /// another member); one that arrives between the last `accept` and the `close` (a few
    /// microseconds) is reset. At most `limit`, what a full backlog holds (`net.core.somaxconn`,
    /// 4096 by default): more arrived after the stop, and a flood must not hold a stop forever.
    private func serveBacklog(_ scratch: UnsafeMutableRawBufferPointer, limit: Int = 4096) {
        var peer = sockaddr_storage()
        var served = 0
        while served < limit {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = postern_accept(listener, &peer, &length)
            guard client >= 0 else {
                if errno == EINTR || errno == ECONNABORTED || errno == EPROTO { continue }
                break
            }
            served += 1
            serve(client, peer: peer, scratch: scratch)
        }
        if served > 0 { logger.info("stopping: served the connections waiting in the backlog", metadata: ["connections": "\(served)"]) }
    }

    /// An accepted connection: served on the spot by the fast path, or handed over.
    private func serve(_ client: CInt, peer: sockaddr_storage, scratch: UnsafeMutableRawBufferPointer) {
        if let cycle {
            cycle.serve(client, peer: peer, scratch: scratch) { toFullEngine($0, $1) }
        } else {
            toFullEngine(client, ByteBuffer())
        }
    }

    /// From now on, connections for the full engine go to `make`, called on the accept thread,
    /// not through ``accepted``: for a protocol served in its channel's pipeline, whose channel
    /// the accept thread can make itself (SwiftNIO registers it on its event loop), a connection
    /// costs one hop between threads instead of three (accept thread, the task reading
    /// ``accepted``, the event loop and back). ``accepted`` still finishes when the threads stop.
    func handOver(to make: @escaping @Sendable (AcceptedConnection) -> Void) {
        directHandOver.withLock { $0 = HandOver(make: make) }
    }

    private func toFullEngine(_ socket: CInt, _ prefetched: ByteBuffer) {
        let connection = AcceptedConnection(socket: socket, prefetched: prefetched)
        if let handOver = directHandOver.withLock({ $0 }) {
            handOver.make(connection)
        } else if case .terminated = continuation.yield(connection) {
            close(socket)
        }
    }
}
