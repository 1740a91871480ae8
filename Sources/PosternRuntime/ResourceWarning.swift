import Glibc
import Logging
import NIOCore
import Synchronization

/// A warning about running out of something (descriptors, memory) said once per interval, not
/// once per connection: a server out of descriptors is asked to accept thousands of times a
/// second, and a log line each time would fill the disk as well.
package final class ResourceWarning: Sendable {
    private let interval: Duration
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    package init(interval: Duration = .seconds(1)) {
        self.interval = interval
    }

    /// Whether a message is due now (and, if so, the next is not due for an interval).
    package func isDue() -> Bool {
        let now = ContinuousClock.now
        return last.withLock { last in
            if let last, now - last < interval { return false }
            last = now
            return true
        }
    }

    /// The accept errors that mean "out of resources" (accept(2)): the connection stays queued.
    static func isOutOfResources(_ errno: CInt) -> Bool {
        errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM
    }
}

/// Says so when a SwiftNIO server channel cannot accept for want of resources; SwiftNIO's own
/// `AcceptBackoffHandler` (after this one) pauses accepting for a second each time, silently.
final class AcceptErrorLogger: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any

    private let warning = ResourceWarning()
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError, ResourceWarning.isOutOfResources(error.errnoCode), warning.isDue() {
            logger.warning("cannot accept: \(error.description); connections wait in the backlog, retrying every second")
        }
        context.fireErrorCaught(error)
    }
}
