import Logging
import NIOCore
import PosternCore

/// The server side of a protocol that carries one request per connection and frames the
/// response by closing it (SCGI, uwsgi), as a channel handler: the connection is served in its
/// pipeline, and only the application runs in a task of its own.
///
/// ```
///  event loop (this handler)                       application task
///  ─────────────────────────                       ────────────────
///  .head ─► variables ─► Environ ────────────────► app.respond(environ)
///  .body ─► RequestBodySource.offer ─────────────► environ.body
///     .full: stop reading until the app reads     (backpressure through `read`)
///  last chunk ─► source.finish()                   head + body ─► channel writes
///  response written and request read ─► close  ◄── done
/// ```
/// The request is always read to its end before the close, so the peer sees no reset that
/// could cost it the response. A decoding error (malformed head, body shorter than declared)
/// is logged with its reason at `notice` and closes this connection only; the application's
/// task is cancelled when the request breaks or the peer goes away, and nothing is written.
///
/// One task per request and no per-connection async sequences: a connection costs what the
/// protocol needs.
public final class CloseDelimitedRequestHandler<Head: Sendable>: ChannelDuplexHandler {
    public typealias InboundIn = RequestPart<Head>
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// What the handler needs of a protocol.
    public struct Framing: Sendable {
        public let gatewayProtocol: GatewayProtocol
        /// Builds the normalized CGI variables for a head (through ``EnvironBuilder``).
        public let makeVariables: @Sendable (Head, ConnectionContext) throws(NormalizationError) -> EnvironBuilder.Result
        /// The response in the protocol's framing (a CGI-style block or an HTTP status line).
        public let response: CloseDelimitedFraming

        public init(
            gatewayProtocol: GatewayProtocol,
            makeVariables: @escaping @Sendable (Head, ConnectionContext) throws(NormalizationError) -> EnvironBuilder.Result,
            response: CloseDelimitedFraming
        ) {
            self.gatewayProtocol = gatewayProtocol
            self.makeVariables = makeVariables
            self.response = response
        }
    }

    /// Sets up a one-request connection's pipeline: the protocol's decoder, the head and idle
    /// timeouts (``ConnectionTimeoutHandler`` in front of the decoder, told of the head and the
    /// body's end by ``RequestPartTimeoutObserver``), then this handler.
    public static func install<Decoder: NIOSingleStepByteToMessageDecoder>(
        on channel: any Channel,
        decoder: Decoder,
        framing: Framing,
        connection: ConnectionContext
    ) throws where Decoder.InboundOut == RequestPart<Head> {
        let limits = connection.configuration.limits
        // A client may half-close after its request (shutdown(SHUT_WR)); the response still goes out.
        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
        let sync = channel.pipeline.syncOperations
        let timeouts = ConnectionTimeoutHandler(limits: ConnectionTimeouts.Limits(limits), firstHeadAtOpen: true)
        try sync.addHandler(timeouts)
        try sync.addHandler(ByteToMessageHandler(decoder))
        try sync.addHandler(RequestPartTimeoutObserver<Head>(timeouts))
        try sync.addHandler(CloseDelimitedRequestHandler(framing: framing, connection: connection))
    }

    private enum State {
        /// Waiting for the head.
        case awaitingHead
        /// The application runs; body chunks go to `source` until the last one.
        case streaming(RequestBodySource)
        /// The request is read to its end; waiting for the response to be written.
        case requestRead
        /// The response is out (or refused); reading the rest of the request, then closing.
        case draining
        case closed
    }

    private let framing: Framing
    private let connection: ConnectionContext
    private var state: State = .awaitingHead
    private var task: Task<Void, Never>?
    private var requestStarted = false
    /// The body queue is full: a `read` from the channel waits here until the application reads.
    private var readsPaused = false
    private var readPending = false
    private var context: ChannelHandlerContext?

    public init(framing: Framing, connection: ConnectionContext) {
        self.framing = framing
        self.connection = connection
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (state, unwrapInboundIn(data)) {
        case (.awaitingHead, .head(let head, let bodyLength)):
            start(head, bodyLength: bodyLength, context: context)
        case (.awaitingHead, .body):
            connection.logger.notice("malformed \(framing.gatewayProtocol) request; closing", metadata: ["reason": "body before the head"])
            close(context)
        case (.streaming(let source), .body(let buffer, let isLast)):
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            switch source.offer(buffer, whenReady: { eventLoop.execute { loopBound.value.resumeReads() } }) {
            case .accepted, .dropped:
                break
            case .full:
                readsPaused = true
            case .lengthExceeded:
                connection.logger.notice("request body runs past CONTENT_LENGTH; closing")
                abort(context)
                return
            }
            if isLast {
                if let mismatch = source.finish() {
                    connection.logger.notice("request body refused; closing", metadata: ["reason": "\(mismatch)"])
                }
                state = .requestRead
            }
        case (.draining, .body(_, let isLast)):
            if isLast { close(context) }
        default:
            break  // after the request: the decoders drop anything further
        }
    }

    /// The peer half-closed its side (SCGI/uwsgi clients may `shutdown(SHUT_WR)` after the
    /// request): fine once the request is in, a broken request before.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent {
            switch state {
            case .awaitingHead:
                connection.logger.debug("connection closed before a request")
                close(context)
            case .streaming:
                connection.logger.notice("request body broken; closing", metadata: ["reason": "the connection ended inside the body"])
                abort(context)
            case .draining:
                close(context)
            case .requestRead, .closed:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A decoding error (the decoder threw): malformed head, or a body short of its length.
    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .awaitingHead:
            connection.logger.notice("malformed \(framing.gatewayProtocol) request; closing", metadata: ["reason": "\(error)"])
            close(context)
        case .streaming:
            connection.logger.notice("request body broken; closing", metadata: ["reason": "\(error)"])
            abort(context)
        case .requestRead, .draining:
            connection.logger.debug("connection error", metadata: ["error": "\(error)"])
            abort(context)
        case .closed:
            break
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if case .streaming(let source) = state { source.fail(RequestBodyError.disconnected) }
        task?.cancel()
        task = nil
        finishRequest()
        state = .closed
        context.fireChannelInactive()
    }

    // MARK: Outbound

    /// Holds the channel's reads while the body queue is full (the application is slower than
    /// the peer); a held read is not a stalled client, so the idle timer is not armed either.
    public func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    private func resumeReads() {
        guard readsPaused else { return }
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    // MARK: The request

    private func start(_ head: Head, bodyLength: Int, context: ChannelHandlerContext) {
        guard connection.beginRequest() else {
            close(context)
            return
        }
        requestStarted = true
        let configuration = connection.configuration
        let logger = connection.logger
        let variables = Result { () throws(NormalizationError) in try framing.makeVariables(head, connection) }
        let normalized: EnvironBuilder.Result
        switch RequestBeginning.check(variables, framedBodyLength: bodyLength) {
        case .failure(let refusal):
            refuse(refusal, bodyLength: bodyLength, context: context)
            return
        case .success(let result):
            normalized = result
        }
        let (body, source) = RequestBody.makeStream(
            expectedLength: normalized.contentLength ?? 0,
            highWatermark: configuration.limits.bodyBufferBytes
        )
        let environ = Environ(
            normalized,
            gatewayProtocol: framing.gatewayProtocol,
            body: body,
            errors: .logger(logger),
            flags: configuration.flags,
            connectionEntries: connection.transportSecurity?.connectionEntries ?? [:]
        )
        if bodyLength == 0 {
            source.finish()
            state = .requestRead
        } else {
            state = .streaming(source)
        }
        let channel = context.channel
        let responseFraming = framing.response
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let onDone: @Sendable (ByteBuffer?) -> Void = { end in channel.eventLoop.execute { loopBound.value.responseWritten(end: end) } }
        task = Task {
            await CloseDelimitedResponse.run(
                environ, source: source, configuration: configuration, channel: channel,
                framing: responseFraming, logger: logger, onDone: onDone)
        }
    }

    /// Answers the refusal (400), then reads (and drops) the rest of the body so the
    /// peer sees no reset.
    private func refuse(_ refusal: RequestRefusal, bodyLength: Int, context: ChannelHandlerContext) {
        let response = connection.configuration.response(refusing: refusal, logger: connection.logger)
        var out = ByteBuffer()
        if case .bytes(let body) = response.body.storage {
            framing.response.writeWholeOrRefuse(response, body: body, into: &out, logger: connection.logger)
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        if bodyLength == 0 {
            close(context)
        } else {
            state = .draining
        }
    }

    /// The application's response is out but for `end` (its last bytes, `nil` when nothing more
    /// is to be written), written here with the close that follows it, flushed together: behind
    /// a ``FlushCork`` (inside TLS) the response's last record and the close_notify leave in one
    /// system call.
    private func responseWritten(end: ByteBuffer?) {
        guard let context else { return }
        task = nil
        context.triggerUserOutboundEvent(FlushCork.Event.cork, promise: nil)
        defer { context.triggerUserOutboundEvent(FlushCork.Event.uncork, promise: nil) }
        if let end { context.writeAndFlush(wrapOutboundOut(end), promise: nil) }
        switch state {
        case .requestRead:
            close(context)
        case .streaming(let source):
            // The application answered without reading all the body: drain it, then close.
            source.discardUnread()
            state = .draining
            resumeReads()
        case .awaitingHead, .draining, .closed:
            break
        }
    }

    /// The request broke: cancel the application (it writes nothing) and close.
    private func abort(_ context: ChannelHandlerContext) {
        if case .streaming(let source) = state { source.fail(RequestBodyError.disconnected) }
        task?.cancel()
        task = nil
        close(context)
    }

    private func close(_ context: ChannelHandlerContext) {
        if case .closed = state { return }
        state = .closed
        finishRequest()
        // Half-closure was for the request; from here the peer's end of input ends the
        // connection at once. Inside TLS the close is a close_notify, after which the TLS
        // handler waits for the peer's own (up to its shutdown timeout, 5 s); nginx closes its
        // upstream connections without one, and each would otherwise stay open that long (1,000
        // requests a second keep 5,000 connections open, past --max-connections).
        try? context.channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
        context.close(promise: nil)
    }

    private func finishRequest() {
        guard requestStarted else { return }
        requestStarted = false
        connection.endRequest()
    }
}

/// The application's side of a ``CloseDelimitedRequestHandler`` exchange: runs in the request's task.
enum CloseDelimitedResponse {
    /// The largest end handed to `onDone` unwritten. A larger one (a big body in hand) is
    /// written and awaited here, as a streamed body's chunks are: the close that follows must
    /// not start while most of it still waits for a slow reader, since the close is bounded in
    /// time (``FlushBeforeCloseHandler``) and a transfer is not.
    static let endWrittenWithTheClose = 64 * 1024

    /// Calls the application and writes its response (nothing when cancelled) but for its end
    /// when that is small, which it gives `onDone` to write with the close (`nil`: nothing more
    /// to write).
    static func run(
        _ environ: Environ,
        source: RequestBodySource,
        configuration: GatewayConfiguration,
        channel: any Channel,
        framing: CloseDelimitedFraming,
        logger: Logger,
        onDone: @Sendable (ByteBuffer?) -> Void
    ) async {
        let response: Response
        do {
            response = try await configuration.respond(to: environ, logger: logger)
        } catch {
            // Cancelled: the request broke (body short of CONTENT_LENGTH, peer gone).
            source.discardUnread()
            return
        }
        var end: ByteBuffer?
        if !Task.isCancelled,
            case .finished(let last) = await FramedResponseSender.sendUpToEnd(
                response, framing: framing, to: ChannelOutput(channel: channel), logger: logger)
        {
            // Written even when empty: it carries the head of a body that wrote nothing.
            if last.readableBytes <= endWrittenWithTheClose {
                end = last
            } else {
                _ = try? await channel.writeAndFlush(last).get()
            }
        }
        source.discardUnread()
        onDone(end)
    }

    /// A body of known length gets a `Content-Length` when the application gave none, so the
    /// front-end can frame it for its client without chunking (the close still ends it here).
    static func framedByLength(_ response: Response) -> Response {
        var response = response
        let code = response.status.code
        if let length = response.body.knownLength, !response.headers.contains("Content-Length"),
            code != 204, code != 304, !(100..<200).contains(code)
        {
            response.headers.add(name: "Content-Length", value: String(length))
        }
        return response
    }
}
