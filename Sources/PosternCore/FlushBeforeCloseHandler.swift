import NIOCore

/// Delays a full close until every byte written before it has reached the socket.
///
/// NIO's `close(mode: .all)` fails writes still queued in the channel, and `NIOAsyncChannel`'s
/// `executeThenClose` closes as soon as the last `write` has been handed over, so the tail of a
/// large response to a slow reader could be dropped: the front-end sees a truncated body. This
/// handler sits next to the socket: on close it queues an empty write behind everything else and
/// closes when that write completes (or fails). A peer that stops reading cannot hold the
/// connection open: after `timeout` it is closed anyway.
public final class FlushBeforeCloseHandler: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var closing = false
    private var pendingPromises: [EventLoopPromise<Void>] = []

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all else {
            context.close(mode: mode, promise: promise)
            return
        }
        if let promise { pendingPromises.append(promise) }
        guard !closing else { return }
        closing = true
        let flushed = context.eventLoop.makePromise(of: Void.self)
        let deadline = context.eventLoop.scheduleTask(in: timeout) { flushed.succeed(()) }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: flushed)
        flushed.futureResult.whenComplete { _ in
            deadline.cancel()
            let promises = self.pendingPromises
            self.pendingPromises = []
            let closed = context.eventLoop.makePromise(of: Void.self)
            closed.futureResult.whenComplete { result in promises.forEach { $0.completeWith(result) } }
            context.close(mode: .all, promise: closed)
        }
    }
}
