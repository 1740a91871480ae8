import Logging
import NIOCore
import PosternCore

/// Where a framed response goes: a channel (``FramedResponseSender/send(_:framing:to:logger:)``),
/// a CGI program's stdout.
public protocol FramedResponseOutput: Sendable {
    /// Sends framed bytes and returns once the output has taken them, so a slow reader slows
    /// the application instead of growing a queue.
    func send(_ bytes: ByteBuffer) async throws
}

/// The response half of the request cycle, in the protocol's ``ResponseFraming``: every
/// protocol but the HTTP listener (whose framing is SwiftNIO's `HTTPResponseEncoder`) writes its
/// responses here — SCGI and uwsgi, FastCGI with and without KEEP_CONN, the engine's fast path
/// when it hands a response to a channel, and a CGI program's stdout.
///
/// - A body in hand: head, body and end in one write (``ResponseFraming/writeWholeOrRefuse(_:body:into:logger:)``).
/// - A streamed body: the head leaves with the first non-empty chunk, or with the end if there
///   is none (PEP 3333's rule for a WSGI server's headers), so a one-chunk stream is one write;
///   each chunk is awaited until the output has taken it.
/// - Errors are classified once: cancelled (nothing more is written), the peer gone (`notice`),
///   anything else mid-body (`error`, the protocol's failure note, and no end: the peer sees the
///   response cut off rather than complete).
public enum FramedResponseSender {
    /// How the head and body went.
    public enum Outcome: Sendable {
        /// Everything but the end is out; `end` holds what ends the response (with the head
        /// when no body bytes were written, the whole response when the body was in hand), not
        /// yet sent, so that a caller may add to it and send it in one write (a kept FastCGI
        /// connection's FCGI_END_REQUEST, once the request's input is in).
        case finished(end: ByteBuffer)
        /// The task was cancelled (the peer went away, FCGI_ABORT_REQUEST): nothing more written.
        case cancelled
        /// A write failed because the peer has gone (logged as a notice).
        case peerGone
        /// The body failed mid-stream (logged as an error; the framing's failure note was sent):
        /// the response must end cut off, by closing the connection without its end.
        case failed
    }

    /// Writes `response` to `channel` and flushes its end. The caller closes the channel afterwards.
    public static func send(_ response: Response, framing: any ResponseFraming, to channel: any Channel, logger: Logger) async {
        guard case .finished(let end) = await sendUpToEnd(response, framing: framing, to: ChannelOutput(channel: channel), logger: logger) else { return }
        // Flushed even when empty: it carries the head of a body that wrote nothing.
        _ = try? await channel.writeAndFlush(end).get()
    }

    /// Writes `response` up to its end, which it returns unsent (see ``Outcome/finished(end:)``).
    public static func sendUpToEnd(_ response: Response, framing: any ResponseFraming, to output: some FramedResponseOutput, logger: Logger) async -> Outcome {
        var head = ByteBuffer()
        if case .bytes(let body) = response.body.storage {
            framing.writeWholeOrRefuse(response, body: body, into: &head, logger: logger)
            return .finished(end: head)
        }
        do {
            try framing.writeHead(response, into: &head)
        } catch {
            framing.refuse(error, into: &head, logger: logger)
            return .finished(end: head)
        }
        let writer = FramedBodyWriter(output: output, framing: framing, head: head)
        do {
            try await response.body.write(to: writer)
        } catch is CancellationError {
            return .cancelled
        } catch  where PeerGone.describes(error) {
            logger.notice("the client went away mid-response", metadata: ["error": "\(error)"])
            return .peerGone
        } catch {
            logger.error("response failed mid-body; closing without its end", metadata: ["error": "\(error)"])
            var reason = ByteBuffer()
            framing.writeFailure("\(error)", into: &reason)
            if reason.readableBytes > 0 { try? await output.send(reason) }
            return .failed
        }
        var end = writer.takePendingHead() ?? ByteBuffer()
        framing.writeEnd(into: &end)
        return .finished(end: end)
    }
}

/// A streamed body's chunks, framed by the protocol, each awaited until the output has taken
/// it; the head goes out in the first chunk's write.
final class FramedBodyWriter<Output: FramedResponseOutput>: ResponseBodyWriter, @unchecked Sendable {
    // Used by one task at a time: the request's own.
    let output: Output
    let framing: any ResponseFraming
    private var pendingHead: ByteBuffer?

    init(output: Output, framing: any ResponseFraming, head: ByteBuffer) {
        self.output = output
        self.framing = framing
        self.pendingHead = head
    }

    func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        try Task.checkCancellation()
        var out = takePendingHead() ?? ByteBuffer()
        framing.writeBody(buffer, into: &out)
        try await output.send(out)
    }

    /// The head, if no chunk has carried it out yet.
    func takePendingHead() -> ByteBuffer? {
        defer { pendingHead = nil }
        return pendingHead
    }
}

/// A channel as a ``FramedResponseOutput``: each write flushed and awaited.
public struct ChannelOutput: FramedResponseOutput {
    let channel: any Channel

    public init(channel: any Channel) {
        self.channel = channel
    }

    public func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }
}
