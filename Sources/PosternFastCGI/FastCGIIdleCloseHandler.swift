import NIOCore

/// Closes a FastCGI connection that has read nothing for the idle timeout while no request is
/// running, so idle keep-alive connections, a peer that never sends a record, or one that stops
/// half-way through its PARAMS (a slow-loris) cannot hold the connection limit.
///
/// It follows requests from the records themselves: a request runs from the end of its PARAMS
/// stream (the application starts) until its END_REQUEST is written; a request still sending
/// PARAMS does not count. Every outbound buffer starts at a record boundary and holds whole
/// records (FastCGI 1.0 §3.3), so walking its 8-byte headers finds the END_REQUESTs.
final class FastCGIIdleCloseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = FastCGIRecord
    typealias InboundOut = FastCGIRecord
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Begun, PARAMS not yet ended.
    private var begun: Set<UInt16> = []
    /// PARAMS ended, END_REQUEST not yet written.
    private var running: Set<UInt16> = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        if !record.isManagement {
            switch record.type {
            case .beginRequest where !running.contains(record.requestID):
                begun.insert(record.requestID)
            case .params where record.content.readableBytes == 0 && begun.contains(record.requestID):
                begun.remove(record.requestID)
                running.insert(record.requestID)
            default:
                break
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        var index = buffer.readerIndex
        while let type = buffer.getInteger(at: index + 1, as: UInt8.self),
            let requestID = buffer.getInteger(at: index + 2, as: UInt16.self),
            let contentLength = buffer.getInteger(at: index + 4, as: UInt16.self),
            let padding = buffer.getInteger(at: index + 6, as: UInt8.self)
        {
            if type == FastCGIRecordType.endRequest.rawValue {
                running.remove(requestID)
                begun.remove(requestID)
            }
            index += FastCGIRecord.headerLength + Int(contentLength) + Int(padding)
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, running.isEmpty {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
