import Logging
import NIOCore
import NIOHTTP1
import PosternCore
import PosternEngine

/// An HTTP/1.1 connection served in its channel pipeline (RFC 9112), as SCGI and uwsgi are
/// (``CloseDelimitedRequestHandler``): requests one after another on a kept connection, each
/// application call in a task of its own, everything else on the event loop, with no async
/// sequence between the two.
///
/// ```
///  event loop (this handler)                                request task
///  ─────────────────────────                                ────────────
///  .head ─► checks, variables, Environ ───────────────────► app.respond(environ)
///  .body ─► RequestBodySource.offer (.full: reads held) ───► environ.body
///  .end  ─► source.finish()                                 body in hand ─┐  streamed body:
///  response written in one flush ◄─────────────────────────────────────────┘  written here,
///  request read and response out: the next request, or the close            each chunk awaited
/// ```
/// Pipelined requests (RFC 9112 §9.3.2) are answered in order: parts that arrive after a
/// request's end while its response is pending are held, and reads stop until it is out. A
/// request with both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3: a smuggling
/// vector) gets 400, an unknown transfer coding 501, a request the normalizer refuses its
/// status; each closes the connection. A body over `--max-body-bytes` fails the application's
/// read (413) and the connection closes after the response. The application's task is cancelled
/// when the client goes away.
final class HTTPRequestHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Where the current request's body is.
    private enum Body {
        /// Its parts go to the application's stream.
        case streaming(RequestBodySource)
        /// Dropped until `.end`: none was announced, or it broke (too large, too long).
        case skipping
        /// `.end` has come.
        case read
    }

    /// The request being served.
    private struct Exchange {
        let head: HTTPRequestHead
        var body: Body
        /// The request's framing held to its end: the connection may carry another.
        var intact = true
        /// Set when the response is out: whether it keeps the connection.
        var keepAlive: Bool?
    }

    private let connection: ConnectionContext
    private var exchange: Exchange?
    /// Parts of pipelined requests, held while an earlier response is pending.
    private var held = CircularBuffer<HTTPServerRequestPart>()
    private var task: Task<Void, Never>?
    private var closing = false
    /// The input ended (a drain's grace ran out) while a request ran: close after its response.
    private var closeAfterResponse = false
    /// The body queue is full: reads wait until the application reads.
    private var bodyFull = false
    /// Parts are held (pipelining), or the socket takes no more of the responses: reads wait.
    private var readsHeld = false
    private var readPending = false
    private var context: ChannelHandlerContext?

    init(connection: ConnectionContext) {
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard !closing else { return }
        if readsHeld || exchange.map({ if case .read = $0.body { true } else { false } }) == true {
            held.append(part)
            readsHeld = true
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            guard exchange == nil else { return }  // NIOHTTP1 ends a request before the next head
            start(head, context: context)
        case .body(let buffer):
            guard let current = exchange, case .streaming(let source) = current.body else { return }
            // Counted also once the application has answered and the rest is dropped.
            let limit = connection.configuration.limits.maxBodyBytes
            if source.receivedBytes + buffer.readableBytes > limit {
                connection.logger.notice("request body over --max-body-bytes; closing", metadata: ["limit": "\(limit)"])
                source.fail(RequestBodyError.tooLarge(limit: limit))
                bodyBroke(context: context)
                return
            }
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            switch source.offer(buffer, whenReady: { eventLoop.execute { loopBound.value.bodyRead() } }) {
            case .accepted, .dropped:
                break
            case .full:
                bodyFull = true
            case .lengthExceeded:
                bodyBroke(context: context)
            }
        case .end:
            guard var current = exchange else { return }
            if case .streaming(let source) = current.body, source.finish() != nil { current.intact = false }
            current.body = .read
            exchange = current
            bodyRead()
            if current.keepAlive != nil { finish(context: context) }
        }
    }

    /// The body broke (over `--max-body-bytes`, longer than announced): the rest is not read, and
    /// the connection closes once the response is out (at once when it is).
    private func bodyBroke(context: ChannelHandlerContext) {
        guard var current = exchange else { return }
        current.body = .skipping
        current.intact = false
        exchange = current
        if current.keepAlive != nil { finish(context: context) }
    }

    /// The peer's input ended: our drain's grace ran out (``ConnectionContext/drain()`` closes an
    /// idle connection's input), or the peer half-closed.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent {
            if exchange == nil && held.isEmpty {
                close(context: context)
            } else {
                closeAfterResponse = true
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The decoder reports a broken stream again as the connection closes: one answer, one record.
        guard !closing else { return }
        if let error = error as? HTTPParserError {
            // SwiftNIO's error handler has answered 400 and closes: counted and access-logged
            // here, as every other answer is.
            connection.logger.notice("malformed request refused", metadata: ["status": "400", "reason": "\(error)"])
            connection.configuration.observer?.requestRefused(HTTPRefusal.record(status: 400, context: connection))
        } else {
            connection.logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
        close(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        if let current = exchange {
            if case .streaming(let source) = current.body { source.fail(RequestBodyError.disconnected) }
            exchange = nil
            connection.endRequest()
        }
        task?.cancel()
        task = nil
        held.removeAll()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, exchange == nil, readsHeld {
            serveHeld(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    /// Holds the channel's reads while the body queue is full or parts are held; a held read is
    /// not a stalled client, so the idle timer is not armed either.
    func read(context: ChannelHandlerContext) {
        if bodyFull || readsHeld {
            readPending = true
        } else {
            context.read()
        }
    }

    private func resumeReads() {
        guard !bodyFull, !readsHeld, readPending, let context else { return }
        readPending = false
        context.read()
    }

    private func bodyRead() {
        guard bodyFull else { return }
        bodyFull = false
        resumeReads()
    }

    // MARK: The request

    private func start(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard connection.beginRequest() else {
            close(context: context)
            return
        }
        exchange = Exchange(head: head, body: .skipping)
        let configuration = connection.configuration
        let limits = configuration.limits
        let isChunked = head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        if head.headers.contains(name: "transfer-encoding") && head.headers.contains(name: "content-length") {
            return refuse(RequestRefusal(.badRequest, "both Transfer-Encoding and Content-Length (RFC 9112 §6.3)"), context: context)
        }
        if head.headers.contains(name: "transfer-encoding") && !isChunked {
            return refuse(RequestRefusal(.init(code: 501), "unsupported Transfer-Encoding"), context: context)
        }
        let connection = self.connection
        let variables = Result { () throws(NormalizationError) in try HTTPRequestVariables.variables(for: head, connection: connection) }
        let normalized: EnvironBuilder.Result
        switch RequestBeginning.check(variables, maxBodyBytes: limits.maxBodyBytes) {
        case .failure(let refusal):
            return refuse(refusal, context: context)
        case .success(let result):
            normalized = result
        }
        let contentLength = normalized.contentLength
        let hasBody = isChunked || (contentLength ?? 0) > 0
        if hasBody, head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        let (body, source) = RequestBody.makeStream(expectedLength: isChunked ? nil : (contentLength ?? 0), highWatermark: limits.bodyBufferBytes)
        let logger = connection.logger
        let environ = Environ(
            normalized,
            gatewayProtocol: .http,
            body: body,
            errors: .logger(logger),
            flags: configuration.flags,
            connectionEntries: connection.transportSecurity?.connectionEntries ?? [:]
        )
        if hasBody {
            exchange?.body = .streaming(source)
        } else {
            source.finish()  // the request's end comes with its head
        }
        let channel = context.channel
        let eventLoop = context.eventLoop
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        let onLoop: @Sendable (@escaping @Sendable (HTTPRequestHandler) -> Void) -> Void = { work in
            if eventLoop.inEventLoop {
                work(loopBound.value)
            } else {
                eventLoop.execute { work(loopBound.value) }
            }
        }
        task = Task {
            let response: Response
            do {
                response = try await configuration.respond(to: environ, logger: logger)
            } catch {
                source.discardUnread()
                onLoop { $0.responded(keepAlive: false) }
                return
            }
            if case .bytes(let body) = response.body.storage {
                onLoop { $0.respondWhole(response, body: body) }
                return
            }
            let plan = HTTPResponsePlan(response, answering: head, draining: connection.isDraining)
            let keepAlive = await HTTPStreamedResponse.send(response, plan: plan, channel: channel, logger: logger)
            source.discardUnread()
            onLoop { $0.responded(keepAlive: keepAlive) }
        }
    }

    /// Writes a response whose body is in hand: head, body and end in one flush, one write(2).
    private func respondWhole(_ response: Response, body: ByteBuffer) {
        guard let context, let current = exchange, current.keepAlive == nil else { return }
        let plan = HTTPResponsePlan(response, answering: current.head, draining: connection.isDraining)
        responded(keepAlive: write(plan, body: body, context: context) && plan.keepAlive)
    }

    /// Writes a whole response; `false` when it had to stop short (see ``HTTPResponsePlan/agrees(with:)``).
    private func write(_ plan: HTTPResponsePlan, body: ByteBuffer, context: ChannelHandlerContext) -> Bool {
        context.write(wrapOutboundOut(.head(plan.head)), promise: nil)
        if !plan.bodiless && body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let complete = plan.agrees(with: body)
        if complete { context.write(wrapOutboundOut(.end(nil)), promise: nil) }
        context.flush()
        if !complete {
            connection.logger.error(
                "response body length differs from Content-Length; closing",
                metadata: ["declared": "\(plan.declaredLength ?? body.readableBytes)", "written": "\(body.readableBytes)"])
        }
        return complete
    }

    /// The response is out (or the application failed: `false`); the exchange ends once the
    /// request is read too.
    private func responded(keepAlive: Bool) {
        task = nil
        guard let context, var current = exchange, current.keepAlive == nil else { return }
        current.keepAlive = keepAlive
        switch current.body {
        case .read:
            exchange = current
            finish(context: context)
        case .skipping where !current.intact:
            // The body broke (too large, too long): the connection closes now, unread.
            exchange = current
            finish(context: context)
        case .streaming(let source):
            // Answered before reading all the body: the rest is read and dropped (still within
            // --max-body-bytes), then the next request.
            source.discardUnread()
            exchange = current
            bodyRead()
        case .skipping:
            exchange = current
        }
    }

    /// Both halves are done: the next request (held, or read), or the close.
    private func finish(context: ChannelHandlerContext) {
        guard let current = exchange, let keepAlive = current.keepAlive else { return }
        exchange = nil
        let keep = keepAlive && current.intact && !closeAfterResponse
        let drained = connection.endRequest(keptAlive: keep)
        if !keep || drained {
            close(context: context)
            return
        }
        readsHeld = true
        if context.channel.isWritable { serveHeld(context: context) }
    }

    /// Serves the held parts until one request waits for its response again; reads resume
    /// once none is left.
    private func serveHeld(context: ChannelHandlerContext) {
        while let part = held.popFirst() {
            handle(part, context: context)
            if closing { return }
            if let current = exchange, case .read = current.body { return }
        }
        readsHeld = false
        resumeReads()
    }

    /// Answers with an error status and closes; logs why.
    private func refuse(_ refusal: RequestRefusal, context: ChannelHandlerContext) {
        guard let head = exchange?.head else { return }
        let configuration = connection.configuration
        let response = configuration.response(refusing: refusal, logger: connection.logger)
        configuration.observer?.requestRefused(
            HTTPRefusal.record(
                status: refusal.status.code, context: connection,
                method: head.method.rawValue, target: head.uri, serverProtocol: "HTTP/\(head.version.major).\(head.version.minor)"))
        let plan = HTTPResponsePlan(response, answering: head, forceClose: true, draining: true)
        if case .bytes(let body) = response.body.storage {
            _ = write(plan, body: body, context: context)
        }
        exchange = nil
        connection.endRequest()
        close(context: context)
    }

    /// Closes after what is written (``FlushBeforeCloseHandler`` holds the close for it).
    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        context.close(promise: nil)
    }
}
