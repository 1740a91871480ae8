import Logging
import NIOCore
import PosternCore

/// A request that arrived whole in a connection's first read, decoded by a protocol's
/// ``WholeRequestCodec``: everything the engine's fast path needs to answer it without a channel.
public struct WholeRequest: Sendable {
    /// The variables through the normalizer, or why they broke one of its rules (answered 400).
    public var variables: Result<EnvironBuilder.Result, NormalizationError>
    /// The whole body: exactly CONTENT_LENGTH bytes.
    public var body: ByteBuffer
    /// Where `wsgi.errors` goes: FCGI_STDERR over FastCGI; `nil` for the connection's log.
    public var errors: ErrorStream?
    /// How the response goes back in this protocol's framing.
    public var framing: any ResponseFraming

    public init(
        variables: Result<EnvironBuilder.Result, NormalizationError>,
        body: ByteBuffer,
        errors: ErrorStream? = nil,
        framing: any ResponseFraming
    ) {
        self.variables = variables
        self.body = body
        self.errors = errors
        self.framing = framing
    }
}

/// A protocol's one hook for the engine's fast path (see `ConnectionAcceptor` in Postern): the
/// bytes of a connection's first read in, a ``WholeRequest`` out, with no I/O.
///
/// The rule that keeps the fast path honest: it only takes what it fully understands. Anything
/// else — a head or body still on its way, a FastCGI KEEP_CONN, a management record, an abort,
/// bytes after the request, a malformed request — answers `nil`, and the connection goes, with
/// the bytes already read, to the full engine, which handles it exactly as if it had read them
/// itself (its decoder, its timeouts, its errors).
public protocol WholeRequestCodec: Sendable {
    var gatewayProtocol: GatewayProtocol { get }

    /// The request held whole by `bytes` (the first read of a new connection), or `nil` when
    /// the full engine must serve the connection.
    func wholeRequest(in bytes: ByteBuffer, connection: ConnectionContext) -> WholeRequest?

    /// Whether a peer may half-close (`shutdown(SHUT_WR)`) after its request and still expect
    /// the response (SCGI and uwsgi clients do); where it may not (FastCGI), the end of its input
    /// means it has gone, and a waiting application is cancelled.
    var peerMayHalfClose: Bool { get }
}

extension WholeRequestCodec {
    public var peerMayHalfClose: Bool { true }
}

/// How a protocol frames a response on a connection that carries one request. A per-request
/// value: FastCGI's knows its request id and the FCGI_STDERR lines still to send.
public protocol ResponseFraming: Sendable {
    /// Appends the response head: status, fields and the blank line, framed (a CGI-style block
    /// for SCGI and FastCGI, an HTTP status line for uwsgi).
    func writeHead(_ response: Response, into buffer: inout ByteBuffer) throws(ResponseError)
    /// Appends body bytes, framed (FastCGI: FCGI_STDOUT records).
    func writeBody(_ bytes: ByteBuffer, into buffer: inout ByteBuffer)
    /// Appends what ends the response (FastCGI: the stream ends and FCGI_END_REQUEST).
    func writeEnd(into buffer: inout ByteBuffer)
    /// The whole response of a byte body, head, body and end, as it leaves in one write.
    func writeWhole(_ response: Response, body: ByteBuffer, into buffer: inout ByteBuffer) throws(ResponseError)
    /// Appends why a streamed response stops short, where the protocol has a place for it
    /// (FastCGI: FCGI_STDERR); the connection then closes without the response's end.
    func writeFailure(_ reason: String, into buffer: inout ByteBuffer)
}

extension ResponseFraming {
    /// SCGI, uwsgi: no channel for it; the cut itself is the signal.
    public func writeFailure(_ reason: String, into buffer: inout ByteBuffer) {}

    public func writeWhole(_ response: Response, body: ByteBuffer, into buffer: inout ByteBuffer) throws(ResponseError) {
        try writeHead(response, into: &buffer)
        writeBody(body, into: &buffer)
        writeEnd(into: &buffer)
    }

    /// The whole response of a byte body; if its head is unsafe, a plain 500 instead, logged.
    /// (``GatewayConfiguration/respond(to:logger:)`` already refuses unsafe heads: this is the
    /// last guard.)
    public func writeWholeOrRefuse(_ response: Response, body: ByteBuffer, into buffer: inout ByteBuffer, logger: Logger) {
        do {
            try writeWhole(response, body: body, into: &buffer)
        } catch {
            refuse(error, into: &buffer, logger: logger)
        }
    }

    /// Replaces what `buffer` holds with a plain 500, and logs why.
    public func refuse(_ error: ResponseError, into buffer: inout ByteBuffer, logger: Logger) {
        logger.error("unsafe response refused", metadata: ["error": "\(error)"])
        buffer.clear()
        let fallback = Response.error(.internalServerError)
        if case .bytes(let bytes) = fallback.body.storage { try? writeWhole(fallback, body: bytes, into: &buffer) }
    }
}

/// The framing of SCGI, uwsgi and a CGI program's stdout: a head, the body as it is, and the
/// close (the end of the output) that ends it.
public struct CloseDelimitedFraming: ResponseFraming {
    /// `true`: an HTTP status line (uwsgi); `false`: a CGI-style `Status:` block (SCGI, CGI).
    public let statusLine: Bool
    /// Whether a body of known length gets the `Content-Length` the application did not give,
    /// so the front-end need not chunk it for its client (SCGI, uwsgi); a CGI program's output
    /// is the application's own (RFC 3875 §6: the server frames it).
    public let addsContentLength: Bool

    public init(statusLine: Bool, addsContentLength: Bool = true) {
        self.statusLine = statusLine
        self.addsContentLength = addsContentLength
    }

    /// A CGI program's stdout (RFC 3875 §6.2): a `Status:` block, nothing added.
    public static let cgiProgram = CloseDelimitedFraming(statusLine: false, addsContentLength: false)

    /// The head (see ``addsContentLength``; the close still ends the body).
    public func writeHead(_ response: Response, into buffer: inout ByteBuffer) throws(ResponseError) {
        let response = addsContentLength ? CloseDelimitedResponse.framedByLength(response) : response
        if statusLine {
            try response.encodeHTTPHead(into: &buffer)
        } else {
            try response.encodeCGIHead(into: &buffer)
        }
    }

    public func writeBody(_ bytes: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeImmutableBuffer(bytes)
    }

    public func writeEnd(into buffer: inout ByteBuffer) {}
}

extension WholeRequestCodec {
    /// The head and the whole body from a one-request decoder (SCGI, uwsgi), when `bytes` hold
    /// exactly one complete request and nothing after it; `nil` otherwise (more to come, or an
    /// error the full engine will report).
    @inlinable
    public static func decodeWhole<Decoder: NIOSingleStepByteToMessageDecoder, Head>(
        _ bytes: ByteBuffer,
        with decoder: Decoder
    ) -> (head: Head, body: ByteBuffer)? where Decoder.InboundOut == RequestPart<Head> {
        var decoder = decoder
        var buffer = bytes
        guard case .head(let head, let bodyLength)? = try? decoder.decode(buffer: &buffer) else { return nil }
        // The body must be all there, and nothing after it (SCGI and uwsgi carry one request).
        guard buffer.readableBytes == bodyLength else { return nil }
        return (head, buffer)
    }
}
