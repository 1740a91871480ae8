import NIOCore
import PosternCore

/// What SCGI and uwsgi share, written once: one request per connection, a decoder that splits
/// the head from the body, the normalizer, and a response framed by the connection's close. A
/// protocol supplies only its decoder, its variables (the head through ``EnvironBuilder``) and
/// its status style; from them come its pipeline on the full engine (``CloseDelimitedRequestHandler``),
/// its hook for the engine's fast path (``WholeRequestCodec/wholeRequest(in:connection:)``) and its
/// busy answer (503 with `Retry-After`).
public protocol CloseDelimitedProtocolServer: ProtocolServer, WholeRequestCodec where Connection == Void {
    associatedtype Head: Sendable
    associatedtype Decoder: NIOSingleStepByteToMessageDecoder where Decoder.InboundOut == RequestPart<Head>

    var configuration: GatewayConfiguration { get }
    /// The response's framing: an HTTP status line (uwsgi) or a CGI-style `Status:` block (SCGI).
    static var responseFraming: CloseDelimitedFraming { get }
    /// A decoder for one connection's request.
    func makeDecoder() -> Decoder
    /// The head's variables through the normalizer.
    static func variables(for head: Head, context: ConnectionContext) throws(NormalizationError) -> EnvironBuilder.Result
}

extension CloseDelimitedProtocolServer {
    public var fastPath: (any WholeRequestCodec)? { self }

    /// The connection is served in its pipeline: the decoder, the timeouts and a
    /// ``CloseDelimitedRequestHandler``.
    public func setup(_ channel: any Channel, context: ConnectionContext) throws {
        let framing = CloseDelimitedRequestHandler<Head>.Framing(
            gatewayProtocol: gatewayProtocol,
            makeVariables: { head, context throws(NormalizationError) in try Self.variables(for: head, context: context) },
            response: Self.responseFraming
        )
        try CloseDelimitedRequestHandler.install(on: channel, decoder: makeDecoder(), framing: framing, connection: context)
    }

    /// Busy: 503 with `Retry-After`, at once.
    public func busyAnswer(prefix: ByteBufferView) -> BusyAnswer {
        Self.busyResponse { response, buffer throws(ResponseError) in try Self.responseFraming.writeHead(response, into: &buffer) }
    }

    /// The fast path: the head and the whole body in the connection's first read, nothing after.
    /// Inlinable, so that each protocol's module specializes it for its own decoder and head.
    @inlinable
    public func wholeRequest(in bytes: ByteBuffer, connection: ConnectionContext) -> WholeRequest? {
        guard let (head, body) = Self.decodeWhole(bytes, with: makeDecoder()) as (Head, ByteBuffer)? else { return nil }
        let variables = Result { () throws(NormalizationError) in try Self.variables(for: head, context: connection) }
        return WholeRequest(variables: variables, body: body, framing: Self.responseFraming)
    }
}
