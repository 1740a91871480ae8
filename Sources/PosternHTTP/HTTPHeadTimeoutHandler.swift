import NIOCore
import NIOHTTP1

/// Closes an HTTP connection whose request head does not arrive in time (slowloris): the first
/// head must be complete within `--header-timeout` of the connection opening, each later one
/// (keep-alive) within the longer of `--header-timeout` and `--idle-timeout` after the previous
/// response ended. Trickling header bytes does not reset the clock, unlike the idle timer.
///
/// Sits after NIOHTTP1's decoder; counts heads in and response ends out, so pipelined requests
/// keep it disarmed until every response has gone.
final class HTTPHeadTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let firstHeadTimeout: TimeAmount
    private let laterHeadTimeout: TimeAmount
    private var heads = 0
    private var responsesEnded = 0
    private var timer: Scheduled<Void>?

    init(headerTimeoutSeconds: Double, idleTimeoutSeconds: Double) {
        self.firstHeadTimeout = .milliseconds(Int64(max(headerTimeoutSeconds, 0.001) * 1000))
        self.laterHeadTimeout = .milliseconds(Int64(max(headerTimeoutSeconds, idleTimeoutSeconds, 0.001) * 1000))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(firstHeadTimeout, context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if heads == 0 && timer == nil { arm(firstHeadTimeout, context) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            heads += 1
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            responsesEnded += 1
            if responsesEnded >= heads { arm(laterHeadTimeout, context) }
        }
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func arm(_ timeout: TimeAmount, _ context: ChannelHandlerContext) {
        timer?.cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }
}
