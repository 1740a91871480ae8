import NIOCore
import PosternCore
import PosternEngine

/// Tells a FastCGI connection's ``ConnectionTimeoutHandler`` where each request is, from the
/// records themselves: its head (the PARAMS stream, §5.1) begins with FCGI_BEGIN_REQUEST and ends
/// with the empty PARAMS record; its input ends with the empty STDIN record (and, for a FILTER,
/// the empty DATA record too; an AUTHORIZER has none, §6.3); it ends when its FCGI_END_REQUEST is
/// written, whether it ran, was aborted or was refused.
///
/// Every outbound buffer starts at a record boundary and holds whole records (§3.3), so walking
/// its 8-byte headers finds the END_REQUESTs. Sits after ``FastCGIRecordDecoder``.
final class FastCGITimeoutObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = FastCGIRecord
    typealias InboundOut = FastCGIRecord
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The input streams each begun request still has open.
    private struct OpenInput {
        var stdin: Bool
        var data: Bool
    }

    private let timeouts: ConnectionTimeoutHandler
    private var input: [UInt16: OpenInput] = [:]

    init(_ timeouts: ConnectionTimeoutHandler) {
        self.timeouts = timeouts
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        if !record.isManagement {
            let id = record.requestID
            switch record.type {
            case .beginRequest where input[id] == nil:
                let role = (try? FastCGIBeginRequest(parsing: record.content))?.role ?? .responder
                input[id] = OpenInput(stdin: role != .authorizer, data: role == .filter)
                timeouts.headBegan(Int(id))
            case .params where record.content.readableBytes == 0:
                if let open = input[id] { timeouts.headCompleted(Int(id), inputComplete: !open.stdin && !open.data) }
            case .stdin where record.content.readableBytes == 0, .data where record.content.readableBytes == 0:
                if var open = input[id] {
                    if record.type == .stdin { open.stdin = false } else { open.data = false }
                    input[id] = open
                    if !open.stdin && !open.data { timeouts.inputCompleted(Int(id)) }
                }
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
            if type == FastCGIRecordType.endRequest.rawValue, requestID != 0 {
                input[requestID] = nil
                timeouts.requestEnded(Int(requestID))
            }
            index += FastCGIRecord.headerLength + Int(contentLength) + Int(padding)
        }
        context.write(data, promise: promise)
    }
}
