import Logging
import NIOCore

/// The server side of a protocol that carries one request per connection and frames the response
/// by closing it (SCGI, uwsgi): read the head, stream the body into the application while it
/// runs, write the response with backpressure, then close.
///
/// ```
///  connection task                         child task
///  ───────────────                         ──────────
///  head ─► variables ─► Environ ────────►  app.respond(environ)
///  body chunks ─► RequestBodySource ─────► environ.body (backpressure: yield suspends)
///  last chunk ─► source.finish()           encode head, write body ─► close
///  (keeps reading to the last chunk after the response, so the peer sees no reset)
/// ```
/// A decoding error (malformed head, body shorter than declared) is logged with its reason at
/// `notice` and closes this connection only.
public struct SingleRequestConnection<Head: Sendable>: Sendable {
    public typealias Connection = NIOAsyncChannel<RequestPart<Head>, ByteBuffer>

    public let gatewayProtocol: GatewayProtocol
    /// Builds the normalized CGI variables for a head (through ``EnvironBuilder``).
    public let makeVariables: @Sendable (Head, ConnectionContext) throws(NormalizationError) -> EnvironBuilder.Result
    /// Writes the response head in the protocol's framing (CGI-style or HTTP status line).
    public let encodeHead: @Sendable (Response, inout ByteBuffer) throws(ResponseError) -> Void

    public init(
        gatewayProtocol: GatewayProtocol,
        makeVariables: @escaping @Sendable (Head, ConnectionContext) throws(NormalizationError) -> EnvironBuilder.Result,
        encodeHead: @escaping @Sendable (Response, inout ByteBuffer) throws(ResponseError) -> Void
    ) {
        self.gatewayProtocol = gatewayProtocol
        self.makeVariables = makeVariables
        self.encodeHead = encodeHead
    }

    /// Serves the connection's one request and closes it.
    public func serve(_ connection: Connection, context: ConnectionContext) async {
        let logger = context.logger
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                let head: Head
                let bodyLength: Int
                do {
                    switch try await iterator.next() {
                    case .head(let first, let length):
                        head = first
                        bodyLength = length
                    case nil:
                        logger.debug("connection closed before a request")
                        return
                    case .body:
                        logger.notice("malformed \(gatewayProtocol) request; closing", metadata: ["reason": "body before the head"])
                        return
                    }
                } catch {
                    logger.notice("malformed \(gatewayProtocol) request; closing", metadata: ["reason": "\(error)"])
                    return
                }
                guard context.beginRequest() else { return }
                defer { context.endRequest() }
                await exchange(head, bodyLength: bodyLength, iterator: &iterator, outbound: outbound, context: context)
            }
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    private func exchange(
        _ head: Head,
        bodyLength: Int,
        iterator: inout NIOAsyncChannelInboundStream<RequestPart<Head>>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        context: ConnectionContext
    ) async {
        let configuration = context.configuration
        let logger = context.logger
        let normalized: EnvironBuilder.Result
        do {
            normalized = try makeVariables(head, context)
        } catch {
            await refuse(error.description, bodyLength: bodyLength, iterator: &iterator, outbound: outbound, context: context)
            return
        }
        // The decoder framed the body by the same CONTENT_LENGTH; a disagreement would be a bug
        // that lets a body smuggle bytes, so it is refused rather than trusted.
        guard normalized.contentLength ?? 0 == bodyLength else {
            await refuse("CONTENT_LENGTH disagrees with the body's framing", bodyLength: bodyLength, iterator: &iterator, outbound: outbound, context: context)
            return
        }
        let (body, source) = RequestBody.makeStream(
            expectedLength: normalized.contentLength ?? 0,
            highWatermark: configuration.limits.bodyBufferBytes
        )
        let environ = Environ(
            normalized,
            gatewayProtocol: gatewayProtocol,
            body: body,
            errors: .logger(logger),
            flags: configuration.flags
        )
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                let response: Response
                do {
                    response = try await configuration.respond(to: environ, logger: logger)
                } catch {
                    source.discardUnread()
                    return
                }
                // Cancelled: the request broke (body short of CONTENT_LENGTH, peer gone); nothing
                // is written, the connection just closes.
                if !Task.isCancelled { await write(response, to: outbound, logger: logger) }
                source.discardUnread()
            }
            // Feed the body from this task, which owns the inbound iterator.
            if bodyLength == 0 {
                source.finish()
            } else {
                await feedBody(source: source, iterator: &iterator, logger: logger, group: &group)
            }
            await group.waitForAll()
        }
    }

    /// Answers 400, then reads (and drops) the rest of the body so the peer sees no reset.
    private func refuse(
        _ reason: String,
        bodyLength: Int,
        iterator: inout NIOAsyncChannelInboundStream<RequestPart<Head>>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        context: ConnectionContext
    ) async {
        context.logger.notice("request refused", metadata: ["status": "400", "reason": "\(reason)"])
        await write(context.configuration.errorResponse(.badRequest, detail: reason), to: outbound, logger: context.logger)
        guard bodyLength > 0 else { return }
        while let part = try? await iterator.next() {
            if case .body(_, true) = part { return }
        }
    }

    /// Moves body chunks into the source until the last one (also after the application has
    /// responded: reading the whole request avoids a reset that could cost the peer the response).
    private func feedBody(
        source: RequestBodySource,
        iterator: inout NIOAsyncChannelInboundStream<RequestPart<Head>>.AsyncIterator,
        logger: Logger,
        group: inout TaskGroup<Void>
    ) async {
        do {
            while let part = try await iterator.next() {
                switch part {
                case .body(let buffer, let isLast):
                    if await source.yield(buffer) == .lengthExceeded {
                        logger.notice("request body runs past CONTENT_LENGTH; closing")
                        group.cancelAll()
                        return
                    }
                    if isLast {
                        if let mismatch = source.finish() {
                            logger.notice("request body refused; closing", metadata: ["reason": "\(mismatch)"])
                        }
                        return
                    }
                case .head:
                    break  // the decoders never send a second head
                }
            }
            logger.notice("request body broken; closing", metadata: ["reason": "the connection ended inside the body"])
        } catch {
            // The decoder threw: the body ended short of CONTENT_LENGTH, or the peer reset.
            logger.notice("request body broken; closing", metadata: ["reason": "\(error)"])
        }
        group.cancelAll()
        source.fail(RequestBodyError.disconnected)
    }

    /// Writes the head and body; a failure mid-body can only be signalled by closing.
    ///
    /// A body of known length gets a `Content-Length` when the application gave none, so the
    /// front-end can frame it for its client without chunking (the close still ends it here).
    private func write(_ response: Response, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, logger: Logger) async {
        var response = response
        let code = response.status.code
        if let length = response.body.knownLength, !response.headers.contains("Content-Length"),
            code != 204, code != 304, !(100..<200).contains(code)
        {
            response.headers.add(name: "Content-Length", value: String(length))
        }
        var head = ByteBuffer()
        do {
            try encodeHead(response, &head)
        } catch {
            // GatewayConfiguration.respond already refused unsafe heads; this is the last guard.
            logger.error("unsafe response refused", metadata: ["error": "\(error)"])
            head.clear()
            try? encodeHead(.error(.internalServerError), &head)
            try? await outbound.write(head)
            return
        }
        do {
            if case .bytes(var bytes) = response.body.storage {
                head.writeBuffer(&bytes)
                try await outbound.write(head)
            } else {
                try await outbound.write(head)
                try await response.body.write(to: OutboundBodyWriter(outbound: outbound))
            }
        } catch is CancellationError {
            return
        } catch {
            logger.notice("response failed mid-body; closing", metadata: ["error": "\(error)"])
        }
    }
}
