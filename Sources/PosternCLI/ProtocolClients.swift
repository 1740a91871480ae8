import NIOCore
import NIOPosix
import Postern
import PosternClient
import PosternCore
import PosternFastCGI
import PosternHTTP
import PosternSCGI
import PosternUWSGI

/// Sends one request with the client of the target's protocol; on a TLS listener's, inside TLS
/// (``ClientTLS``).
public enum ProtocolClients {
    public static func send(
        _ request: ClientRequest,
        to target: ClientTarget,
        tls: ClientTLS = ClientTLS(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ClientResponse {
        guard target.listenerProtocol.isTLS else { return try await send(request, to: target, setup: nil, group: group) }
        var host: String?
        if case .tcp(let name, _) = target.address { host = name }
        do {
            return try await send(request, to: target, setup: try tls.setup(host: host), group: group)
        } catch let error as ClientError {
            throw error
        } catch let error as TLSError {
            throw error
        } catch {
            guard let reason = ClientTLS.reason(error, host: host) else { throw error }
            throw ClientError.unreachable(server: "\(target.listenerProtocol) server at \(target.address)", reason: reason)
        }
    }

    private static func send(
        _ request: ClientRequest, to target: ClientTarget, setup: ClientChannelSetup?, group: any EventLoopGroup
    ) async throws -> ClientResponse {
        switch target.listenerProtocol.plain {
        case .fastcgi:
            let endpoint: FastCGIClient.Endpoint
            switch target.address {
            case .tcp(let host, let port): endpoint = .tcp(host: host, port: port)
            case .unix(let path): endpoint = .unix(path: path)
            case .fd(let fd): throw ClientError.notAnAddress(fd: fd)
            }
            return try await FastCGIClient.send(request, to: endpoint, group: group, setup: setup)
        case .scgi:
            return try await SCGIClient.send(request, to: try target.address.clientSocketAddress(), group: group, setup: setup)
        case .uwsgi:
            return try await UWSGIClient.send(request, to: try target.address.clientSocketAddress(), group: group, setup: setup)
        default:
            let host: String
            switch target.address {
            case .tcp(let name, let port): host = name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)"
            default: host = "localhost"
            }
            return try await HTTPClient.send(
                request, target: target.requestTarget, to: try target.address.clientSocketAddress(), host: host, group: group, setup: setup)
        }
    }
}
