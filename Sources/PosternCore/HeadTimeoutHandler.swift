import NIOCore

/// Closes a connection whose request head is not complete within a time limit
/// (``GatewayLimits/headerTimeoutSeconds``): a client that opens a socket and trickles bytes
/// (slowloris) cannot hold a connection slot for ever.
///
/// Sits after the protocol's decoder; the first ``RequestPart/head(_:)`` disarms it.
public final class HeadTimeoutHandler<Head: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = RequestPart<Head>
    public typealias InboundOut = RequestPart<Head>

    private let timeout: TimeAmount
    private var scheduled: Scheduled<Void>?

    public init(seconds: Double) {
        self.timeout = .milliseconds(Int64(max(seconds, 0.001) * 1000))
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            scheduled?.cancel()
            scheduled = nil
        }
        context.fireChannelRead(data)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        scheduled?.cancel()
        scheduled = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard scheduled == nil else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        scheduled = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }
}
