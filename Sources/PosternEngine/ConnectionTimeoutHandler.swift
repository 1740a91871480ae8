import NIOCore
import PosternCore

/// Runs a connection's ``ConnectionTimeouts`` in a SwiftNIO pipeline: the one timer, the clock,
/// and the close when a deadline passes.
///
/// It sits in front of the protocol's decoder, where it sees every read the server asks for and
/// every byte that arrives; the protocol's own observer, after the decoder, tells it where
/// requests begin and end (``RequestPartTimeoutObserver`` for SCGI and uwsgi, and one each in
/// the HTTP and FastCGI modules). Everything runs on the channel's event loop.
public final class ConnectionTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var machine: ConnectionTimeouts
    private let firstHeadAtOpen: Bool
    private var started = false
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?

    /// - Parameter firstHeadAtOpen: the first request's head starts with the connection (SCGI,
    ///   uwsgi, HTTP), or requests say when they begin (FastCGI's BEGIN_REQUEST).
    public init(limits: ConnectionTimeouts.Limits, firstHeadAtOpen: Bool) {
        self.machine = ConnectionTimeouts(limits: limits, openedAt: .now())
        self.firstHeadAtOpen = firstHeadAtOpen
    }

    public var limits: ConnectionTimeouts.Limits { machine.limits }

    /// No request is in progress.
    public var isQuiet: Bool { machine.isQuiet }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start() }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        perform(machine.bytesRead(at: .now()))
        context.fireChannelRead(data)
    }

    public func read(context: ChannelHandlerContext) {
        perform(machine.readRequested(at: .now()))
        context.read()
    }

    // MARK: What the protocol's observer reports

    public func headBegan(_ request: Int, allowance: TimeAmount? = nil) {
        perform(machine.headBegan(request, at: .now(), allowance: allowance))
    }

    public func headCompleted(_ request: Int, inputComplete: Bool) {
        perform(machine.headCompleted(request, inputComplete: inputComplete))
    }

    public func inputCompleted(_ request: Int) {
        perform(machine.inputCompleted(request))
    }

    public func requestEnded(_ request: Int) {
        perform(machine.requestEnded(request))
    }

    // MARK: The timer

    private func start() {
        guard !started else { return }
        started = true
        if firstHeadAtOpen { headBegan(0) }
    }

    private func perform(_ action: ConnectionTimeouts.Action) {
        switch action {
        case .none:
            break
        case .schedule(let deadline):
            timer?.cancel()
            guard let context else { return }
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            timer = context.eventLoop.scheduleTask(deadline: deadline) { handler.value.timerFired() }
        case .close:
            timer?.cancel()
            timer = nil
            context?.close(promise: nil)
        }
    }

    private func timerFired() {
        timer = nil
        perform(machine.timerFired(at: .now()))
    }
}

/// Tells a one-request connection's ``ConnectionTimeoutHandler`` when the head and the body are in
/// (SCGI, uwsgi: it sits after the decoder, which yields ``RequestPart``s).
public final class RequestPartTimeoutObserver<Head: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = RequestPart<Head>
    public typealias InboundOut = RequestPart<Head>

    private let timeouts: ConnectionTimeoutHandler

    public init(_ timeouts: ConnectionTimeoutHandler) {
        self.timeouts = timeouts
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(_, let bodyLength):
            timeouts.headCompleted(0, inputComplete: bodyLength == 0)
        case .body(_, let isLast):
            if isLast { timeouts.inputCompleted(0) }
        }
        context.fireChannelRead(data)
    }
}
