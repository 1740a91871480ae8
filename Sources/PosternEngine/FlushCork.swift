import NIOCore

/// Holds a channel's flushes while the handler above it writes several things that belong in
/// one system call: TCP_CORK in the pipeline, for the writes of one event-loop turn.
///
/// A one-request connection inside TLS (suwsgi) ends with the response's last record and then
/// the close_notify alert (RFC 8446 §6.1), which the TLS handler writes and flushes each on its
/// own: two `write`s and two segments for the front-end to read, on every request. With this
/// handler below the TLS handler, ``CloseDelimitedRequestHandler`` corks, writes the end, closes,
/// and uncorks: one `writev`.
///
/// ``Event/cork`` and ``Event/uncork`` travel as outbound user events, so a handler that sends
/// them needs no reference to this one; without it in the pipeline they are dropped at the
/// channel's head. Whoever corks uncorks in the same turn of the event loop: a flush held past
/// it would stall the connection.
public final class FlushCork: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public enum Event: Sendable {
        /// Hold flushes from now on.
        case cork
        /// Pass on a held flush, and flushes from now on.
        case uncork
    }

    private var corked = false
    private var flushHeld = false

    public init() {}

    public func flush(context: ChannelHandlerContext) {
        if corked {
            flushHeld = true
        } else {
            context.flush()
        }
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? Event else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch event {
        case .cork:
            corked = true
        case .uncork:
            corked = false
            if flushHeld {
                flushHeld = false
                context.flush()
            }
        }
        promise?.succeed(())
    }
}
