import NIOCore

/// Closes a FastCGI connection that has read nothing for the idle timeout while no request is
/// in progress, so idle keep-alive connections (or a peer that never sends a record) cannot hold
/// the connection limit.
///
/// It counts requests from the records themselves: +1 for each BEGIN_REQUEST read, −1 for each
/// END_REQUEST written. Every outbound buffer starts at a record boundary and holds whole
/// records (FastCGI 1.0 §3.3), so walking its 8-byte headers finds the END_REQUESTs.
final class FastCGIIdleCloseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = FastCGIRecord
    typealias InboundOut = FastCGIRecord
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var activeRequests = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        if record.type == .beginRequest && !record.isManagement { activeRequests += 1 }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        var index = buffer.readerIndex
        while let type = buffer.getInteger(at: index + 1, as: UInt8.self),
            let contentLength = buffer.getInteger(at: index + 4, as: UInt16.self),
            let padding = buffer.getInteger(at: index + 6, as: UInt8.self)
        {
            if type == FastCGIRecordType.endRequest.rawValue { activeRequests = max(0, activeRequests - 1) }
            index += FastCGIRecord.headerLength + Int(contentLength) + Int(padding)
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, activeRequests == 0 {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
