import NIOCore
import NIOPosix
import Postern
import PosternClient
import PosternCore
import PosternFastCGI
import PosternHTTP
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
        case .fastcgi:
            let endpoint: FastCGIClient.Endpoint
            switch target.address {
            case .tcp(let host, let port): endpoint = .tcp(host: host, port: port)
            case .unix(let path): endpoint = .unix(path: path)
            case .fd(let fd): throw ClientError.notAnAddress(fd: fd)
            }
            return try await FastCGIClient.send(request, to: endpoint, group: group)
        case .scgi:
            return try await SCGIClient.send(request, to: try target.address.clientSocketAddress(), group: group)
        case .uwsgi:
            return try await UWSGIClient.send(request, to: try target.address.clientSocketAddress(), group: group)
        case .http:
            let host: String
            switch target.address {
            case .tcp(let name, let port): host = name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)"
            default: host = "localhost"
            }
            return try await HTTPClient.send(
                request, target: target.requestTarget, to: try target.address.clientSocketAddress(), host: host, group: group)
        case .cgi:
            throw ClientError.noCGIClient
        }
    }
}
