import NIOCore
import PosternCore

/// A wire protocol served entirely in a connection's channel pipeline, with no task per
/// connection: the one-request protocols (SCGI, uwsgi), whose connections are as short as their
/// request, so their setup cost is the protocol's cost (see ``SingleRequestHandler``). The
/// runtime registers each connection and unregisters it when its channel closes.
public protocol PipelineProtocolServer: BusyRefusal {
    var gatewayProtocol: GatewayProtocol { get }

    /// Adds the handlers that serve a new connection; called on its event loop.
    func configure(_ channel: any Channel, context: ConnectionContext) throws
}
