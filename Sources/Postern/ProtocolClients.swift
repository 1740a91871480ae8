import NIOCore
import NIOPosix
import PosternCore

/// Sends one request with the client of the target's protocol.
public enum ProtocolClients {
    public static func send(
        _ request: ClientRequest,
        to target: ClientTarget,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ClientResponse {
        switch target.gatewayProtocol {
        case .fastcgi, .scgi, .uwsgi, .http:
            throw ServeError("the \(target.gatewayProtocol) client is not built yet")
        case .cgi:
            throw ServeError("CGI has no client: run the program with GATEWAY_INTERFACE set")
        }
    }
}
