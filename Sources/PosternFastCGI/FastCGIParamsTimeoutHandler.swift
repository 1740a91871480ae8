import NIOCore

/// Closes a FastCGI connection on which a request's params stream (§5.1: FCGI_PARAMS records up
/// to the empty one) is not complete within `--header-timeout` of its FCGI_BEGIN_REQUEST: a
/// client trickling params records cannot hold a request slot for ever. The wait for the first
/// BEGIN_REQUEST is the idle timeout's (``FastCGIIdleCloseHandler``).
///
/// Sits after ``FastCGIRecordDecoder``; one timer per request id still reading its params.
final class FastCGIParamsTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = FastCGIRecord
    typealias InboundOut = FastCGIRecord

    private let timeout: TimeAmount
    private var timers: [UInt16: Scheduled<Void>] = [:]

    init(headerTimeoutSeconds: Double) {
        self.timeout = .milliseconds(Int64(max(headerTimeoutSeconds, 0.001) * 1000))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        if !record.isManagement {
            switch record.type {
            case .beginRequest:
                timers[record.requestID]?.cancel()
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                timers[record.requestID] = context.eventLoop.scheduleTask(in: timeout) {
                    loopBound.value.close(promise: nil)
                }
            case .params where record.content.readableBytes == 0, .abortRequest:
                timers.removeValue(forKey: record.requestID)?.cancel()
            default:
                break
            }
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        for timer in timers.values { timer.cancel() }
        timers = [:]
    }
}
