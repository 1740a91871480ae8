import NIOCore

/// A wire protocol served entirely in a connection's channel pipeline, with no task per
/// connection: the one-request protocols (SCGI, uwsgi), whose connections are as short as their
/// request, so their setup cost is the protocol's cost (see ``SingleRequestHandler``). The
/// runtime registers each connection and unregisters it when its channel closes.
public protocol PipelineProtocolServer: Sendable {
    var gatewayProtocol: GatewayProtocol { get }

    /// Adds the handlers that serve a new connection; called on its event loop. With a
    /// `refusal` (503 over `--max-connections`), the request is read and answered with that
    /// status (with `Retry-After`) instead of reaching the application.
    func configure(_ channel: any Channel, context: ConnectionContext, refusal: ResponseStatus?) throws
}
