#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import Synchronization

/// Accepts connections on a listening socket that other worker processes share, on a thread of
/// its own, and hands each accepted descriptor on through ``connections``.
///
/// swift-nio's server channel must not accept on a shared socket: when another process wins the
/// accept, NIO's `assert(readResult == .some)` (BaseSocketChannel) kills a debug build with the
/// connections it holds. Here a lost race is just `EAGAIN`.
///
/// ```
///   poll(listener, wake) ──► accept4(listener, CLOEXEC|NONBLOCK) until EAGAIN ──► yield fd
///        ▲                      EINTR, ECONNABORTED, EPROTO: again
///        └── stop(): a byte on the wake pipe; the thread closes its copy of the listener
/// ```
///
/// Stopping never shuts the socket down: the master keeps its copy open, so connections still in
/// the kernel's backlog stay there for the other workers.
final class SharedSocketAcceptor: Sendable {
    /// The accepted descriptors (non-blocking, close-on-exec); finishes once stopped.
    let connections: AsyncStream<CInt>
    private let continuation: AsyncStream<CInt>.Continuation
    private let listener: CInt
    private let wakeRead: CInt
    private let wakeWrite: CInt
    private let stopped = Atomic<Bool>(false)
    private let logger: Logger

    init(listeningSocket: CInt, logger: Logger) throws {
        var pipeEnds: [CInt] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            throw ServeError("cannot create the accept thread's wake-up pipe: \(String(cString: strerror(errno)))")
        }
        for end in pipeEnds {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        // Non-blocking, so that a connection another worker took between poll and accept is an
        // EAGAIN instead of a wait that stop() could not interrupt.
        let flags = fcntl(listeningSocket, F_GETFL)
        guard flags >= 0, fcntl(listeningSocket, F_SETFL, flags | O_NONBLOCK) == 0 else {
            close(pipeEnds[0])
            close(pipeEnds[1])
            throw ServeError("fd \(listeningSocket): cannot make it non-blocking: \(String(cString: strerror(errno)))")
        }
        self.listener = listeningSocket
        self.wakeRead = pipeEnds[0]
        self.wakeWrite = pipeEnds[1]
        self.logger = logger
        (connections, continuation) = AsyncStream.makeStream(of: CInt.self)
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    func start() {
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "postern-accept-\(listener)"
        thread.start()
    }

    /// Stops accepting; the connections already accepted are still delivered. Idempotent.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func acceptLoop() {
        defer {
            close(listener)
            continuation.finish()
        }
        var descriptors = [
            pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        while !stopped.load(ordering: .acquiring) {
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("accept thread: poll failed; this worker stops accepting", metadata: ["error": "\(String(cString: strerror(errno)))"])
                return
            }
            if descriptors[1].revents != 0 { return }
            if descriptors[0].revents & Int16(POLLNVAL) != 0 {
                logger.error("accept thread: the listening socket is gone; this worker stops accepting")
                return
            }
            guard acceptReady() else { return }
        }
    }

    /// Accepts until the backlog is empty (or taken by others). False on an unrecoverable error.
    private func acceptReady() -> Bool {
        while !stopped.load(ordering: .acquiring) {
            let client = Self.accept(listener)
            if client >= 0 {
                continuation.yield(client)
                continue
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK:
                return true
            case EINTR, ECONNABORTED, EPROTO:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors or memory: leave the connection queued a little while.
                logger.warning("accept thread: \(String(cString: strerror(errno))); retrying in 50 ms")
                usleep(50_000)
                return true
            default:
                logger.error("accept thread: accept failed; this worker stops accepting", metadata: ["error": "\(String(cString: strerror(errno)))"])
                return false
            }
        }
        return true
    }

    typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32

    /// glibc's `accept4`, which the Glibc module does not export (it is a GNU extension).
    private static let accept4: Accept4? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "accept4").map { unsafeBitCast($0, to: Accept4.self) }

    /// One accepted socket, non-blocking and close-on-exec from the start (a CGI script spawned
    /// at the same moment must not inherit it); -1 with `errno` set when none.
    private static func accept(_ listener: CInt) -> CInt {
        if let accept4 {
            return accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
        }
        let client = Glibc.accept(listener, nil, nil)
        if client >= 0 {
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, O_NONBLOCK)
        }
        return client
    }
}
