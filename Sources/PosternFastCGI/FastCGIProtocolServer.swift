import Logging
import NIOCore
import PosternCore
import PosternEngine

/// FastCGI 1.0 application side (the role Open Market's spec calls "the application"): the
/// server that Apache mod_fcgid / mod_proxy_fcgi / mod_authnz_fcgi, lighttpd, nginx and
/// cgi-fcgi connect to.
///
/// Served in the channel pipeline: records are decoded by ``FastCGIRecordDecoder``, and
/// ``FastCGIRequestHandler`` runs the ``FastCGIConnectionStateMachine`` on the event loop and one
/// task per request. RESPONDER, AUTHORIZER and FILTER roles; KEEP_CONN; multiplexing up to
/// FCGI_MAX_REQS; GET_VALUES; ABORT_REQUEST. A connection idle for `idleTimeoutSeconds` with no
/// request in progress is closed.
public struct FastCGIProtocolServer: ProtocolServer {
    public let configuration: GatewayConfiguration
    public var gatewayProtocol: GatewayProtocol { .fastcgi }

    public init(configuration: GatewayConfiguration) {
        self.configuration = configuration
    }

    /// A connection without KEEP_CONN whose request arrived whole (``wholeRequest(in:connection:)``).
    public var fastPath: (any WholeRequestCodec)? { self }

    public func setup(_ channel: any Channel, context: ConnectionContext) throws {
        let sync = channel.pipeline.syncOperations
        let timeouts = ConnectionTimeoutHandler(limits: ConnectionTimeouts.Limits(configuration.limits), firstHeadAtOpen: false)
        try sync.addHandler(timeouts)
        try sync.addHandler(ByteToMessageHandler(FastCGIRecordDecoder()))
        try sync.addHandler(FastCGITimeoutObserver(timeouts))
        try sync.addHandler(FastCGIRequestHandler(connection: FastCGIConnection(context: context, channel: channel)))
    }
}
