import Logging
import NIOCore
import NIOHTTP1
import PosternCore

/// HTTP/1.1 server side (RFC 9112) on SwiftNIO's NIOHTTP1: the development default and the
/// listener a load balancer can talk to directly.
///
/// Keep-alive and pipelined requests are served in order; `Content-Length` and chunked bodies
/// stream into the application; a response without a known length goes out chunked (HTTP/1.1)
/// or close-delimited (HTTP/1.0). A malformed request gets 400, a body over the limit 413,
/// and a request with both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3: a smuggling
/// vector) is refused with 400; each of these closes the connection.
public struct HTTPProtocolServer: ProtocolServer {
    public typealias Inbound = HTTPServerRequestPart
    public typealias Outbound = HTTPServerResponsePart

    public let configuration: GatewayConfiguration
    public var gatewayProtocol: GatewayProtocol { .http }

    public init(configuration: GatewayConfiguration) {
        self.configuration = configuration
    }

    public func configure(_ channel: any Channel) throws -> NIOAsyncChannel<Inbound, Outbound> {
        let sync = channel.pipeline.syncOperations
        try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
        try sync.addHandler(IdleStateHandler(readTimeout: .milliseconds(Int64(configuration.limits.idleTimeoutSeconds * 1000))))
        try sync.addHandler(HTTPIdleCloseHandler())
        try sync.addHandler(HTTPHeadTimeoutHandler(
            headerTimeoutSeconds: configuration.limits.headerTimeoutSeconds, idleTimeoutSeconds: configuration.limits.idleTimeoutSeconds))
        return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
    }

    public func serve(_ connection: NIOAsyncChannel<Inbound, Outbound>, context: ConnectionContext) async {
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
                    let drained = context.endRequest()
                    if !keepAlive || drained { return }
                }
            }
        } catch {
            context.logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }
}

/// Closes a connection that has been idle (no bytes read) for the idle timeout while no request
/// is in progress: keep-alive connections do not pile up, and a client that stops half-way
/// through its head is dropped.
final class HTTPIdleCloseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var busy = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { busy = true }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { busy = false }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, !busy {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
