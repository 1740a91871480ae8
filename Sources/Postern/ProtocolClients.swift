import NIOCore
import NIOPosix
import PosternCore
import PosternSCGI
import PosternUWSGI

/// Sends one request with the client of the target's protocol.
public enum ProtocolClients {
    public static func send(
        _ request: ClientRequest,
        to target: ClientTarget,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ClientResponse {
        switch target.gatewayProtocol {
        case .scgi:
            return try await SCGIClient.send(request, to: try target.address.clientSocketAddress(), group: group)
        case .uwsgi:
            return try await UWSGIClient.send(request, to: try target.address.clientSocketAddress(), group: group)
        case .fastcgi, .http:
            throw ServeError("the \(target.gatewayProtocol) client is not built yet")
        case .cgi:
            throw ServeError("CGI has no client: run the program with GATEWAY_INTERFACE set")
        }
    }
}
