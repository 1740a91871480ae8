import NIOCore
import NIOHTTP1
import PosternCore
import PosternEngine

/// Tells an HTTP connection's ``ConnectionTimeoutHandler`` where its requests are (RFC 9112 §9.3:
/// a persistent connection carries one request after another): request *n*'s head is complete
/// with its `.head` part and its body with `.end`; its response ends with the outbound `.end`.
/// When every response has ended, the next head begins, and it gets the longer of the header and
/// idle timeouts from there (a kept connection may rest before its next request; trickling the
/// head does not extend that).
///
/// Sits after NIOHTTP1's codec. Pipelined heads that arrive before earlier responses end are
/// counted, so the next-head clock starts only when all of them are answered.
final class HTTPTimeoutObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let timeouts: ConnectionTimeoutHandler
    /// Heads received, and responses ended: request *n* is the *n*th head (from 0).
    private var heads = 0
    private var responsesEnded = 0

    init(_ timeouts: ConnectionTimeoutHandler) {
        self.timeouts = timeouts
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            timeouts.headCompleted(heads, inputComplete: false)
            heads += 1
        case .body:
            break
        case .end:
            timeouts.inputCompleted(heads - 1)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), responsesEnded < heads {
            timeouts.requestEnded(responsesEnded)
            responsesEnded += 1
            if responsesEnded == heads {
                let limits = timeouts.limits
                timeouts.headBegan(heads, allowance: max(limits.header, limits.idle))
            }
        }
        context.write(data, promise: promise)
    }
}
