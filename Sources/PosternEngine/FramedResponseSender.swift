import Logging
import NIOCore
import PosternCore

/// The response half of the request cycle on a channel that carries one request: the engine's
/// fast path when it hands a response to a channel (`ResponseHandOver`) and SCGI and uwsgi on
/// the full engine (``SingleRequestHandler``), in the protocol's ``ResponseFraming``.
///
/// - A body in hand: head, body and end in one write (``ResponseFraming/writeWholeOrRefuse(_:body:into:logger:)``).
/// - A streamed body: the head leaves with the first non-empty chunk, or with the end if there
///   is none (PEP 3333's rule for a WSGI server's headers), so a one-chunk stream is one write;
///   each chunk is awaited until the socket has taken it (a slow reader slows the application
///   instead of growing a queue).
/// - Errors are classified once: cancelled (nothing more is written), the peer gone (`notice`),
///   anything else mid-body (`error`, the protocol's failure note, and no end: the peer sees the
///   response cut off rather than complete).
///
/// The caller closes the channel afterwards.
public enum FramedResponseSender {
    public static func send(_ response: Response, framing: any ResponseFraming, to channel: any Channel, logger: Logger) async {
        var head = ByteBuffer()
        if case .bytes(let body) = response.body.storage {
            framing.writeWholeOrRefuse(response, body: body, into: &head, logger: logger)
            _ = try? await channel.writeAndFlush(head).get()
            return
        }
        do {
            try framing.writeHead(response, into: &head)
        } catch {
            framing.refuse(error, into: &head, logger: logger)
            _ = try? await channel.writeAndFlush(head).get()
            return
        }
        do {
            channel.write(head, promise: nil)
            try await response.body.write(to: FramedChannelBodyWriter(channel: channel, framing: framing))
        } catch is CancellationError {
            return
        } catch where PeerGone.describes(error) {
            logger.notice("the client went away mid-response", metadata: ["error": "\(error)"])
            return
        } catch {
            logger.error("response failed mid-body; closing without its end", metadata: ["error": "\(error)"])
            var reason = ByteBuffer()
            framing.writeFailure("\(error)", into: &reason)
            _ = try? await channel.writeAndFlush(reason).get()
            return
        }
        var end = ByteBuffer()
        framing.writeEnd(into: &end)
        // Flushed even when empty: it carries the head of a body that wrote nothing.
        _ = try? await channel.writeAndFlush(end).get()
    }
}

/// A streamed body's chunks, framed by the protocol, each awaited until the socket has taken it.
struct FramedChannelBodyWriter: ResponseBodyWriter {
    let channel: any Channel
    let framing: any ResponseFraming

    func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        try Task.checkCancellation()
        var out = ByteBuffer()
        framing.writeBody(buffer, into: &out)
        try await channel.writeAndFlush(out).get()
    }
}
