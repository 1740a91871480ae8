import NIOCore
import PosternCore

/// How a protocol says "busy" to a connection over `--max-connections`, without reading its
/// request: SCGI and uwsgi answer 503 with `Retry-After` in their framing, HTTP the same as an
/// HTTP/1.1 response, FastCGI FCGI_END_REQUEST with FCGI_OVERLOADED (§5.5) for the request id in
/// the first record's header. A refused connection costs a few bytes and no task; it is not
/// registered, and it never reaches a decoder (an attacker's heads are not buffered).
public protocol BusyRefusal: Sendable {
    /// The answer, given the first bytes the connection has sent (empty at first).
    func busyAnswer(prefix: ByteBufferView) -> BusyAnswer
}

public enum BusyAnswer: Sendable {
    /// The answer depends on bytes still to come (FastCGI's request id).
    case needMore
    /// Send these bytes, then close.
    case send(ByteBuffer)
    /// Close without an answer.
    case close
}

/// Turns a connection away with its protocol's ``BusyRefusal``: the answer as soon as it can be
/// made, then our half of the connection closed (a front-end reading a close-delimited answer
/// sees its end), then whatever the peer still sends read and dropped until it closes, for at
/// most ``lingerTime``: closing on unread bytes would reset the connection and could destroy
/// the answer in flight (as Apache's lingering close avoids).
public final class BusyRefusalHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer

    /// The longest a refused connection is kept.
    public static let lingerTime: TimeAmount = .seconds(2)
    /// The most prefix bytes an answer may ask for.
    static let maxPrefix = 16

    private let refusal: any BusyRefusal
    private var prefix = ByteBuffer()
    private var answered = false
    private var timer: Scheduled<Void>?

    public init(_ refusal: any BusyRefusal) {
        self.refusal = refusal
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }  // dropped
        var bytes = unwrapInboundIn(data)
        if let slice = bytes.readSlice(length: min(bytes.readableBytes, Self.maxPrefix - prefix.readableBytes)) {
            var slice = slice
            prefix.writeBuffer(&slice)
        }
        answer(context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {}

    private func start(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: Self.lingerTime) { channel.close(promise: nil) }
        answer(context)
    }

    private func answer(_ context: ChannelHandlerContext) {
        guard !answered else { return }
        var result = refusal.busyAnswer(prefix: prefix.readableBytesView)
        if case .needMore = result, prefix.readableBytes >= Self.maxPrefix { result = .close }
        switch result {
        case .needMore:
            return
        case .send(let bytes):
            answered = true
            let channel = context.channel
            context.writeAndFlush(NIOAny(bytes)).whenComplete { _ in
                channel.close(mode: .output, promise: nil)
            }
        case .close:
            answered = true
            context.close(promise: nil)
        }
    }
}

extension BusyRefusal {
    /// The 503 that SCGI, uwsgi and HTTP send, framed by its length, with `Retry-After: 1` and,
    /// for HTTP, `Connection: close`; `encodeHead` writes it in the protocol's framing.
    public static func busyResponse(
        connectionClose: Bool = false,
        encodeHead: (Response, inout ByteBuffer) throws(ResponseError) -> Void
    ) -> BusyAnswer {
        var response = CloseDelimitedResponse.framedByLength(.text("503 Service Unavailable: too many connections\n", status: .serviceUnavailable))
        response.headers.add(name: "Retry-After", value: "1")
        if connectionClose { response.headers.add(name: "Connection", value: "close") }
        var bytes = ByteBuffer()
        do {
            try encodeHead(response, &bytes)
        } catch {
            return .close
        }
        if case .bytes(var body) = response.body.storage { bytes.writeBuffer(&body) }
        return .send(bytes)
    }
}
