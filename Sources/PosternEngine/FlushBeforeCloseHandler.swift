import NIOCore
import PosternCore

/// Delays a full close until every byte written before it has reached the socket.
///
/// NIO's `close(mode: .all)` fails writes still queued in the channel, and a handler (or
/// `NIOAsyncChannel`'s `executeThenClose`) closes as soon as the last `write` has been handed
/// over, so the tail of a large response to a slow reader could be dropped: the front-end sees a
/// truncated body. This handler sits next to the socket: on close it queues an empty write
/// behind everything else and closes when that write completes (or fails). A peer that stops
/// reading cannot hold the connection open: after `timeout` it is closed anyway.
///
/// Every close promise is completed: one that arrives while the flush is pending completes with
/// the real close; one that arrives after the real close was passed on is passed on too (and
/// fails with `alreadyClosed`). Keeping such a late promise would leave whoever awaits it (for
/// example `executeThenClose` after its body threw) waiting forever.
public final class FlushBeforeCloseHandler: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case open
        /// The empty write is queued; these promises complete with the real close.
        case flushing([EventLoopPromise<Void>])
        /// The real close has been passed on.
        case closed
    }

    private let timeout: TimeAmount
    private var state = State.open

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all else {
            context.close(mode: mode, promise: promise)
            return
        }
        switch state {
        case .closed:
            context.close(mode: mode, promise: promise)
        case .flushing(var promises):
            if let promise { promises.append(promise) }
            state = .flushing(promises)
        case .open where !context.channel.isActive:
            // Not connected yet (closed while still being set up) or already gone: nothing can
            // be queued for the socket, and a write would wait for an activation that never comes.
            state = .closed
            context.close(mode: mode, promise: promise)
        case .open:
            state = .flushing(promise.map { [$0] } ?? [])
            let flushed = context.eventLoop.makePromise(of: Void.self)
            let deadline = context.eventLoop.scheduleTask(in: timeout) { flushed.succeed(()) }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: flushed)
            // Completed on this event loop: the handler and its context are used there only.
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            flushed.futureResult.whenComplete { _ in
                deadline.cancel()
                let (handler, context) = bound.value
                guard case .flushing(let promises) = handler.state else { return }
                handler.state = .closed
                let closed = context.eventLoop.makePromise(of: Void.self)
                closed.futureResult.whenComplete { result in for promise in promises { promise.completeWith(result) } }
                context.close(mode: .all, promise: closed)
            }
        }
    }
}
