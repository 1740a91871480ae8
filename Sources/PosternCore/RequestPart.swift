import NIOCore

/// What a one-request-per-connection decoder (SCGI, uwsgi) yields: the head, the body in chunks,
/// then the end of the body.
///
/// The decoders frame the body by CONTENT_LENGTH themselves, so ``end`` comes exactly after the
/// declared number of body bytes; a connection that closes earlier is a decoding error.
public enum RequestPart<Head: Sendable>: Sendable {
    case head(Head)
    case body(ByteBuffer)
    case end
}
