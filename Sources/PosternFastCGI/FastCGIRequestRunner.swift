import Logging
import NIOCore
import PosternCore
import PosternEngine

/// Runs one FastCGI request: the application, then FCGI_STDOUT/FCGI_STDERR, then
/// FCGI_END_REQUEST (FastCGI 1.0 §5.3, §5.5) once all input has been read.
///
/// The small-response path writes STDOUT, the empty STDOUT and END_REQUEST as one buffer with
/// one flush.
struct FastCGIRequestRunner: Sendable {
    let connection: FastCGIConnection
    let handle: FastCGIRequestHandle
    let logger: Logger

    var id: UInt16 { handle.requestID }

    /// - Parameters:
    ///   - environ: the request, or `nil` when its variables broke a normalizer rule (400).
    ///   - refused: the server is draining: END_REQUEST with FCGI_OVERLOADED.
    func run(environ: Environ?, refused: Bool) async {
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
        if let environ {
            response = try? await handle.runCancellable {
                try await configuration.respond(to: environ, logger: logger)
            }
        } else {
            response = configuration.errorResponse(.badRequest)
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

    /// Writes the response and END_REQUEST; returns whether the connection stays open.
    private func send(_ response: Response) async -> Bool {
        var head = ByteBuffer()
        do {
            try response.encodeCGIHead(into: &head)
        } catch {
            // respond(to:) already checked HeaderSafety; this is the belt to its braces.
            logger.error("unsafe response head", metadata: ["error": "\(error)"])
            head.clear()
            try? connection.context.configuration.errorResponse(.internalServerError).encodeCGIHead(into: &head)
        }
        let writer = FastCGIResponseWriter(handle: handle, outbound: connection.outbound, head: head)
        var out = ByteBuffer()
        if case .bytes(let body) = response.body.storage {
            out.reserveCapacity(head.readableBytes + body.readableBytes + 64)
            if let stderr = handle.takeStderr() {
                FastCGIRecordEncoder.writeStream(type: .stderr, requestID: id, content: stderr, into: &out)
                FastCGIRecordEncoder.writeStreamEnd(type: .stderr, requestID: id, into: &out)
            }
            FastCGIResponseWriter.frameBytes(requestID: id, head: head, body: body, into: &out)
            FastCGIRecordEncoder.writeStreamEnd(type: .stdout, requestID: id, into: &out)
        } else {
            do {
                // The stream is the application's too: ABORT_REQUEST cancels it mid-body.
                try await handle.runCancellable { try await response.body.write(to: writer) }
            } catch is CancellationError {
                logger.debug("response stream cancelled", metadata: ["aborted": "\(handle.wasAborted)"])
            } catch where PeerGone.describes(error) {
                logger.notice("the front-end went away mid-response", metadata: ["error": "\(error)"])
            } catch {
                // END_REQUEST would tell the front-end the response is complete (§5.5), and it
                // would end its own response to the client as if it were: close the connection
                // instead, as a crashed application would, so the cut shows (nginx: "upstream
                // prematurely closed FastCGI stdout"). The reason goes to FCGI_STDERR first.
                logger.error("response body failed mid-stream; closing the connection without END_REQUEST", metadata: ["error": "\(error)"])
                var stderr = ByteBuffer()
                FastCGIRecordEncoder.writeStream(type: .stderr, requestID: id, content: ByteBuffer(string: "postern: response body failed: \(error)\n"), into: &stderr)
                connection.finish(id)
                connection.writeAndClose(stderr)
                return false
            }
            writer.finish(into: &out)
        }
        return await end(out, appStatus: 0)
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
                try? await connection.outbound.write(out)
                out = ByteBuffer()
            }
            await handle.waitForInputComplete()
        }
        connection.finish(id)
        FastCGIRecordEncoder.writeEndRequest(requestID: id, appStatus: appStatus, protocolStatus: .requestComplete, into: &out)
        if handle.keepConnection && !connection.context.isDraining {
            if handle.wasAborted {
                // This task was cancelled by the abort: write through the channel, which does
                // not look at cancellation, so END_REQUEST still goes out.
                do {
                    try await connection.channel.writeAndFlush(out).get()
                    return true
                } catch {
                    return false
                }
            }
            do {
                try await connection.outbound.write(out)
                return true
            } catch {
                return false
            }
        }
        connection.writeAndClose(out)
        return false
    }
}
