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
