import NIOCore

/// Closes a connection whose request stalls: the head must be complete within
/// ``GatewayLimits/headerTimeoutSeconds`` of the connection opening, and while the body is
/// incomplete a read the server asks for must bring bytes within
/// ``GatewayLimits/idleTimeoutSeconds``. The idle timer runs only while a read is pending, so a
/// slow application (backpressure: the server stops reading) is not mistaken for a slow client.
/// A client that trickles bytes (slowloris) or stops half-way through its body cannot hold a
/// connection slot for ever. Once the last body chunk is in, the handler is disarmed: a long
/// response (a download, an event stream) is not cut off.
///
/// Sits after the protocol's decoder (SCGI, uwsgi), which yields ``RequestPart``s.
public final class RequestReadTimeoutHandler<Head: Sendable>: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = RequestPart<Head>
    public typealias InboundOut = RequestPart<Head>
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case awaitingHead(Scheduled<Void>?)
        case readingBody(Scheduled<Void>?)
        case complete
    }

    private let headTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var state: State = .awaitingHead(nil)

    public init(headerTimeoutSeconds: Double, idleTimeoutSeconds: Double) {
        self.headTimeout = .milliseconds(Int64(max(headerTimeoutSeconds, 0.001) * 1000))
        self.idleTimeout = .milliseconds(Int64(max(idleTimeoutSeconds, 0.001) * 1000))
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armHeadTimer(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        armHeadTimer(context)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (state, unwrapInboundIn(data)) {
        case (.awaitingHead(let timer), .head(_, let bodyLength)):
            timer?.cancel()
            state = bodyLength == 0 ? .complete : .readingBody(nil)
        case (.readingBody(let timer), .body(_, let isLast)):
            timer?.cancel()
            state = isLast ? .complete : .readingBody(nil)
        default:
            break
        }
        context.fireChannelRead(data)
    }

    /// The server wants more bytes: from now the client has the idle timeout to send some.
    public func read(context: ChannelHandlerContext) {
        if case .readingBody(nil) = state {
            state = .readingBody(schedule(idleTimeout, context))
        }
        context.read()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        switch state {
        case .awaitingHead(let timer), .readingBody(let timer): timer?.cancel()
        case .complete: break
        }
        state = .complete
    }

    private func armHeadTimer(_ context: ChannelHandlerContext) {
        guard case .awaitingHead(nil) = state else { return }
        state = .awaitingHead(schedule(headTimeout, context))
    }

    private func schedule(_ timeout: TimeAmount, _ context: ChannelHandlerContext) -> Scheduled<Void> {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        return context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }
}
