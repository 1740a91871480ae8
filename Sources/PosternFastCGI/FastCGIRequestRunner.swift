import Logging
import NIOCore
import PosternCore
import PosternEngine

/// Runs one FastCGI request on a connection the engine reads records from: the application,
/// then FCGI_STDOUT/FCGI_STDERR, then FCGI_END_REQUEST (FastCGI 1.0 §5.3, §5.5) once all input
/// has been read.
///
/// A response in hand leaves as one buffer with one flush: STDOUT, the empty records and
/// END_REQUEST.
struct FastCGIRequestRunner: Sendable {
    let connection: FastCGIConnection
    let handle: FastCGIRequestHandle
    let logger: Logger

    /// A request ready to run, as ``FastCGIConnection/start(id:begin:params:inputComplete:)``
    /// makes it for ``FastCGIRequestHandler``.
    struct Start: Sendable {
        let runner: FastCGIRequestRunner
        let request: Result<Environ, RequestRefusal>
        let refused: Bool

        func run() async {
            await runner.run(request, refused: refused)
        }
    }

    var id: UInt16 { handle.requestID }

    /// - Parameters:
    ///   - request: the request, or why it is refused (a normalizer rule broken: 400).
    ///   - refused: the server is draining: END_REQUEST with FCGI_OVERLOADED.
    func run(_ request: Result<Environ, RequestRefusal>, refused: Bool) async {
        let configuration = connection.context.configuration
        if refused {
            handle.body?.discardUnread()
            connection.finish(id)
            var out = ByteBuffer()
            FastCGIRecordEncoder.writeEndRequest(requestID: id, appStatus: 0, protocolStatus: .overloaded, into: &out)
            connection.writeAndClose(out)
            return
        }
        let response: Response?
        switch request {
        case .success(let environ):
            response = try? await handle.runCancellable {
                try await configuration.respond(to: environ, logger: logger)
            }
        case .failure(let refusal):
            response = configuration.response(refusing: refusal, logger: logger)
        }
        let keepOpen: Bool
        if let response {
            keepOpen = await send(response)
        } else {
            keepOpen = await sendAborted()
        }
        let drained = connection.context.endRequest()
        // A connection kept so far closes now if the server started draining meanwhile (after
        // the bytes already queued; writeAndClose has closed the others).
        if keepOpen && drained { connection.writeAndClose(ByteBuffer()) }
    }

    /// Writes the response (the engine's ``FramedResponseSender``, in FastCGI's framing) and
    /// END_REQUEST; returns whether the connection stays open.
    private func send(_ response: Response) async -> Bool {
        let framing = FastCGIResponseFraming(requestID: id, stderr: handle.stderr, endsRequest: false)
        // The stream is the application's too: ABORT_REQUEST cancels it mid-body.
        let outcome =
            (try? await handle.runCancellable {
                await FramedResponseSender.sendUpToEnd(response, framing: framing, to: ChannelOutput(channel: connection.channel), logger: logger)
            }) ?? .cancelled
        switch outcome {
        case .finished(let end):
            return await self.end(end, appStatus: 0)
        case .cancelled, .peerGone:
            // An aborted request still gets its END_REQUEST (§5.4); a gone peer gets nothing,
            // and the write just fails.
            logger.debug("response stream stopped", metadata: ["aborted": "\(handle.wasAborted)"])
            var end = ByteBuffer()
            framing.writeEnd(into: &end)
            return await self.end(end, appStatus: 0)
        case .failed:
            // END_REQUEST would tell the front-end the response is complete (§5.5), and it
            // would end its own response to the client as if it were: close the connection
            // instead, as a crashed application would, so the cut shows (nginx: "upstream
            // prematurely closed FastCGI stdout"). The reason went to FCGI_STDERR first.
            connection.finish(id)
            connection.writeAndClose(ByteBuffer())
            return false
        }
    }

    /// ABORT_REQUEST (or the connection closing) cancelled the application: END_REQUEST only.
    private func sendAborted() async -> Bool {
        logger.debug("request aborted")
        return await end(ByteBuffer(), appStatus: 0, waitForInput: false)
    }

    /// Drains unread input, then writes `out` followed by END_REQUEST.
    private func end(_ prefix: ByteBuffer, appStatus: UInt32, waitForInput: Bool = true) async -> Bool {
        var out = prefix
        handle.body?.discardUnread()
        handle.data?.discardUnread()
        if waitForInput && !handle.isInputComplete {
            // Send what we have, then wait for the front-end to finish sending its input.
            if out.readableBytes > 0 {
                connection.write(out)
                out = ByteBuffer()
            }
            await handle.waitForInputComplete()
        }
        connection.finish(id)
        FastCGIRecordEncoder.writeEndRequest(requestID: id, appStatus: appStatus, protocolStatus: .requestComplete, into: &out)
        if handle.keepConnection && !connection.context.isDraining {
            // Not awaited (the channel writes it whatever the task's cancellation, an abort's
            // included): the peer sends its next request once END_REQUEST is in.
            connection.write(out)
            return true
        }
        connection.writeAndClose(out)
        return false
    }
}
