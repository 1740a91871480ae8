import Logging
import NIOCore
import NIOHTTP1
import PosternCore
import PosternEngine

/// HTTP/1.1 server side (RFC 9112) on SwiftNIO's NIOHTTP1: the development default and the
/// listener a load balancer can talk to directly.
///
/// Served in the channel pipeline (``HTTPRequestHandler``): keep-alive and pipelined requests in
/// order; `Content-Length` and chunked bodies stream into the application; a response without a
/// known length goes out chunked (HTTP/1.1) or close-delimited (HTTP/1.0). A malformed request
/// gets 400 (SwiftNIO's error handler), a body over the limit 413; each closes the connection.
public struct HTTPProtocolServer: ProtocolServer {
    public let configuration: GatewayConfiguration
    public var gatewayProtocol: GatewayProtocol { .http }

    public init(configuration: GatewayConfiguration) {
        self.configuration = configuration
    }

    public func setup(_ channel: any Channel, context: ConnectionContext) throws {
        let sync = channel.pipeline.syncOperations
        let timeouts = ConnectionTimeoutHandler(limits: ConnectionTimeouts.Limits(configuration.limits), firstHeadAtOpen: true)
        try sync.addHandler(timeouts)
        // No outbound header validator: every response has passed HeaderSafety.check in
        // GatewayConfiguration.respond already (the same rules), and the validator costs a handler
        // hop per write.
        try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true, withOutboundHeaderValidation: false)
        try sync.addHandler(HTTPTimeoutObserver(timeouts))
        try sync.addHandler(HTTPRequestHandler(connection: context))
    }
}
