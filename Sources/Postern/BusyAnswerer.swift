import Logging
import NIOCore
import NIOPosix
import PosternCore
import PosternEngine
import PosternFastCGI
import PosternHTTP
import PosternSCGI
import PosternSupervision
import PosternUWSGI
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A master's answer while none of its workers serves (a crash loop after a successful start):
/// every connection on every listener gets its protocol's busy answer (503 with `Retry-After`;
/// FastCGI's FCGI_OVERLOADED, ``BusyRefusal``) and is closed, instead of waiting in the backlog
/// until the front-end's own timeout. Accepts on copies of the listening sockets, so closing
/// it leaves the sockets to the workers. A TLS listener's connections are left in its backlog:
/// the master holds no certificate, and an answer in plaintext would be no answer.
final class BusyAnswerer: Sendable {
    private let channels = Box()

    private final class Box: Sendable {
        let state = Mutex<(open: [any Channel], closed: Bool)>(([], false))
        func withLock<T>(_ body: (inout (open: [any Channel], closed: Bool)) -> T) -> T { state.withLock { body(&$0) } }
    }

    /// - Parameter backlog: `--backlog`, set again on each listening socket: SwiftNIO's
    ///   `listen` on the copy (128) changes the socket itself.
    init(listeners: [InheritedListeners.Listener], backlog: Int32, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        let channels = self.channels
        let configuration = GatewayConfiguration(application: ApplicationFunction { _ in .error(.serviceUnavailable) }, logger: logger)
        for (listenerProtocol, fd) in listeners where !listenerProtocol.isTLS {
            let refusal: any BusyRefusal
            switch listenerProtocol {
            case .fastcgi: refusal = FastCGIProtocolServer(configuration: configuration)
            case .scgi: refusal = SCGIProtocolServer(configuration: configuration)
            case .uwsgi: refusal = UWSGIProtocolServer(configuration: configuration)
            default: refusal = HTTPProtocolServer(configuration: configuration)
            }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
            guard copy >= 0 else {
                logger.error("cannot answer busy on fd \(fd): \(String(cString: strerror(errno)))")
                continue
            }
            // Not waited for: the master's loop may run on an event loop.
            ServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(BusyRefusalHandler(refusal)) }
                }
                .withBoundSocket(copy)
                .whenComplete { [channels] result in
                    switch result {
                    case .success(let channel):
                        _ = listen(fd, backlog)
                        let closed = channels.withLock { state in
                            if !state.closed { state.open.append(channel) }
                            return state.closed
                        }
                        if closed { channel.close(promise: nil) }
                    case .failure(let error):
                        Glibc.close(copy)
                        logger.error("cannot answer busy on fd \(fd): \(error)")
                    }
                }
        }
    }

    /// Stops answering; the listening sockets themselves stay open.
    func close() {
        let open = channels.withLock { state in
            state.closed = true
            return state.open
        }
        for channel in open { channel.close(promise: nil) }
    }
}
