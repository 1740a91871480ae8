import Logging
import NIOCore
import NIOHTTP1
import PosternCore
import PosternEngine

/// HTTP/1.1 server side (RFC 9112) on SwiftNIO's NIOHTTP1: the development default and the
/// listener a load balancer can talk to directly.
///
/// Keep-alive and pipelined requests are served in order; `Content-Length` and chunked bodies
/// stream into the application; a response without a known length goes out chunked (HTTP/1.1)
/// or close-delimited (HTTP/1.0). A malformed request gets 400, a body over the limit 413,
/// and a request with both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3: a smuggling
/// vector) is refused with 400; each of these closes the connection.
public struct HTTPProtocolServer: ProtocolServer {
    public typealias Connection = NIOAsyncChannel<Inbound, Outbound>
    public typealias Inbound = HTTPServerRequestPart
    public typealias Outbound = HTTPServerResponsePart

    public let configuration: GatewayConfiguration
    public var gatewayProtocol: GatewayProtocol { .http }

    public init(configuration: GatewayConfiguration) {
        self.configuration = configuration
    }

    public func setup(_ channel: any Channel, context: ConnectionContext) throws -> Connection {
        let sync = channel.pipeline.syncOperations
        let timeouts = ConnectionTimeoutHandler(limits: ConnectionTimeouts.Limits(configuration.limits), firstHeadAtOpen: true)
        try sync.addHandler(timeouts)
        // No outbound header validator: every response has passed HeaderSafety.check in
        // GatewayConfiguration.respond already (the same rules), and the validator costs a handler
        // hop per write.
        try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true, withOutboundHeaderValidation: false)
        try sync.addHandler(HTTPTimeoutObserver(timeouts))
        return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
    }

    public func handle(_ connection: Connection, context: ConnectionContext) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                while let part = try await iterator.next() {
                    guard case .head(let head) = part else {
                        context.logger.debug("request body part without a head; closing")
                        return
                    }
                    guard context.beginRequest() else { return }
                    let exchange = HTTPExchange(head: head, context: context, outbound: outbound)
                    let keepAlive = await exchange.run(reading: &iterator)
                    let drained = context.endRequest(keptAlive: keepAlive)
                    if !keepAlive || drained { return }
                }
            }
        } catch let error as HTTPParserError {
            // SwiftNIO's error handler has answered 400 and closes: counted and access-logged
            // here, as every other answer is.
            context.logger.notice("malformed request refused", metadata: ["status": "400", "reason": "\(error)"])
            context.configuration.observer?.requestRefused(HTTPRefusal.record(status: 400, context: context))
        } catch {
            context.logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }
}
