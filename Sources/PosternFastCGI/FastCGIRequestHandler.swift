import Logging
import NIOCore
import PosternCore
import PosternEngine

/// A FastCGI connection served in its channel pipeline (FastCGI 1.0 §3.3, §5): the records
/// ``FastCGIRecordDecoder`` reads go through the ``FastCGIConnectionStateMachine`` on the event
/// loop, and only each request's application runs in a task of its own
/// (``FastCGIRequestRunner``), which writes to the channel.
///
/// ```
///  event loop (this handler)                          request tasks
///  ─────────────────────────                          ─────────────
///  record ─► state machine ─► .start ─► Environ ────► FastCGIRequestRunner.run
///                             .stdin ─► RequestBodySource.offer
///                                 .full: stop reading until the app reads
///                             .send  ─► write (GET_VALUES, refusals)
///                             .abort ─► cancel that request's application
///  input ended, malformed records ─► requests still owed input are aborted;
///                                    the connection closes after the last task
/// ```
/// FastCGI has no per-request flow control, so one request's full body holds the whole
/// connection's reads, and so does a channel that cannot take more writes: a peer that does not
/// read its answers cannot make the gateway queue them without bound.
final class FastCGIRequestHandler: ChannelDuplexHandler {
    typealias InboundIn = FastCGIRecord
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let connection: FastCGIConnection
    /// A body queue is full: reads wait until its application reads.
    private var bodyFull = false
    private var readPending = false
    private var inputEnded = false
    private var context: ChannelHandlerContext?

    init(connection: FastCGIConnection) {
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    private var logger: Logger { connection.logger }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !inputEnded else { return }
        let action = connection.shared.machine.withLock { $0.receive(unwrapInboundIn(data)) }
        switch action {
        case .none:
            break
        case .send(let bytes), .abortedBeforeStart(let bytes):
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        case .start(let id, let begin, let params, let inputComplete):
            let start: FastCGIRequestRunner.Start
            do {
                start = try connection.start(id: id, begin: begin, params: params, inputComplete: inputComplete)
            } catch {
                malformed(error)
                return
            }
            let connection = self.connection
            connection.taskStarted()
            Task {
                await start.run()
                connection.taskEnded()
            }
        case .stdin(let id, let bytes):
            feed(bytes, to: id, isData: false, context: context)
        case .data(let id, let bytes):
            feed(bytes, to: id, isData: true, context: context)
        case .endOfStream(let id, let isData, let inputComplete):
            guard let handle = connection.shared.handles.withLock({ $0[id] }) else { return }
            if let source = isData ? handle.data : handle.body, let mismatch = source.finish() {
                logger.notice("request stream ended badly", metadata: ["request": "\(id)", "reason": "\(mismatch)"])
            }
            if inputComplete { handle.markInputComplete() }
        case .abort(let id):
            connection.shared.handles.withLock { $0[id] }?.abort()
        case .close(let error):
            malformed(error)
        }
    }

    /// STDIN or DATA for a running request, within `--max-body-bytes`.
    private func feed(_ bytes: ByteBuffer, to id: UInt16, isData: Bool, context: ChannelHandlerContext) {
        guard let handle = connection.shared.handles.withLock({ $0[id] }), let source = isData ? handle.data : handle.body else { return }
        let limit = connection.context.configuration.limits.maxBodyBytes
        if source.receivedBytes + bytes.readableBytes > limit {
            logger.notice("request body over --max-body-bytes", metadata: ["request": "\(id)", "limit": "\(limit)"])
            source.fail(RequestBodyError.tooLarge(limit: limit))
            return
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        switch source.offer(bytes, whenReady: { eventLoop.execute { loopBound.value.bodyDrained() } }) {
        case .accepted, .dropped:
            break
        case .full:
            bodyFull = true
        case .lengthExceeded:
            logger.notice("FCGI_STDIN runs past CONTENT_LENGTH; the request fails", metadata: ["request": "\(id)"])
        }
    }

    /// The peer ended its input (or a drain ended it for an idle connection).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent { endInput() }
        context.fireUserInboundEventTriggered(event)
    }

    /// The decoder threw (malformed records), or the connection failed.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is FastCGIProtocolError {
            malformed(error)
        } else {
            logger.debug("connection read ended", metadata: ["error": "\(error)"])
            endInput()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        endInput()
        context.fireChannelInactive()
    }

    private func malformed(_ error: any Error) {
        logger.notice("closing the connection: malformed FastCGI input", metadata: ["reason": "\(error)"])
        endInput()
    }

    /// Nothing more is read: a request still owed input is cut off from it (its application
    /// cancelled); the others finish, and the connection closes after the last.
    private func endInput() {
        guard !inputEnded else { return }
        inputEnded = true
        let open = connection.shared.handles.withLock { Array($0.values) }
        for handle in open {
            if !handle.isInputComplete {
                handle.body?.fail(RequestBodyError.disconnected)
                handle.data?.fail(RequestBodyError.disconnected)
                handle.abort()
            }
            handle.markInputComplete()
        }
        connection.inputEnded()
    }

    // MARK: Outbound

    /// Holds the channel's reads while a body queue is full or the channel cannot take more
    /// writes; once the input has ended, nothing more is read.
    func read(context: ChannelHandlerContext) {
        guard !inputEnded else { return }
        if bodyFull || !context.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReads()
        context.fireChannelWritabilityChanged()
    }

    private func bodyDrained() {
        bodyFull = false
        resumeReads()
    }

    private func resumeReads() {
        guard readPending, !bodyFull, !inputEnded, let context, context.channel.isWritable else { return }
        readPending = false
        context.read()
    }
}
