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
/// step, and the body phase they share is ``RequestPart/nextBodySlice(remaining:from:)``.
public protocol OneRequestDecoder: NIOSingleStepByteToMessageDecoder {
    /// One step: a part, or `nil` when more bytes are needed.
    mutating func step(_ buffer: inout ByteBuffer) throws -> InboundOut?
}

extension OneRequestDecoder {
    @inlinable
    public mutating func decode(buffer: inout ByteBuffer) throws -> InboundOut? {
        try step(&buffer)
    }
}

extension RequestPart {
    /// The body phase of a one-request decoder: the next slice of the `remaining` body bytes
    /// that `buffer` holds, marked last when it completes the body, with what remains after it;
    /// `nil` when `buffer` holds nothing yet.
    @inlinable
    public static func nextBodySlice(remaining: Int, from buffer: inout ByteBuffer) -> (part: RequestPart, remaining: Int)? {
        guard buffer.readableBytes > 0 else { return nil }
        let count = min(remaining, buffer.readableBytes)
        let chunk = buffer.readSlice(length: count)!
        return (.body(chunk, isLast: count == remaining), remaining - count)
    }
}
