import NIOCore
import PosternCore

/// What a one-request-per-connection decoder (SCGI, uwsgi) yields: the head, then the body in
/// chunks, framed by CONTENT_LENGTH.
///
/// The end of the body is marked on the chunk that completes it (`isLast`), not by a separate
/// message: a byte-to-message decoder is only called when bytes arrive, so a marker after the
/// last byte would never be delivered. A connection that closes before the last chunk is a
/// decoding error.
public enum RequestPart<Head: Sendable>: Sendable {
    /// The request head; `bodyLength` bytes of body follow (none when 0: the request is complete).
    case head(Head, bodyLength: Int)
    /// A chunk of the body; `isLast` when it completes `bodyLength`.
    case body(ByteBuffer, isLast: Bool)
}

/// A one-request protocol's decoder (SCGI, uwsgi), as a pure step function: `decode` is one
/// step, and the body phase they share is ``CloseDelimitedBody``.
public protocol CloseDelimitedDecoder: NIOSingleStepByteToMessageDecoder {
    /// One step: a part, or `nil` when more bytes are needed.
    mutating func step(_ buffer: inout ByteBuffer) throws -> InboundOut?
}

extension CloseDelimitedDecoder {
    @inlinable
    public mutating func decode(buffer: inout ByteBuffer) throws -> InboundOut? {
        try step(&buffer)
    }
}

/// The phase of a one-request decoder (SCGI, uwsgi) after its head: exactly CONTENT_LENGTH bytes
/// of body, in the chunks they arrive in, the last one marked; then nothing (the connection
/// carries one request: bytes after the body are discarded).
public enum CloseDelimitedBody: Sendable, Hashable {
    case body(remaining: Int)
    case done

    /// The phase that follows a head declaring `contentLength` bytes of body.
    public init(contentLength: Int) {
        self = contentLength == 0 ? .done : .body(remaining: contentLength)
    }

    /// The next part `buffer` holds, or `nil` when more bytes are needed (or the body is over).
    @inlinable
    public mutating func step<Head>(_ buffer: inout ByteBuffer) -> RequestPart<Head>? {
        switch self {
        case .body(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let chunk = buffer.readSlice(length: count)!
            self = count == remaining ? .done : .body(remaining: remaining - count)
            return .body(chunk, isLast: count == remaining)
        case .done:
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        }
    }

    /// The body bytes still missing when the connection ended here (0 when it was complete).
    public var missing: Int {
        if case .body(let remaining) = self { return remaining }
        return 0
    }
}
