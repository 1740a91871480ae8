import NIOCore
import NIOPosix
import PosternEngine
import PosternFastCGI
import PosternHTTP
import PosternSCGI
import PosternUWSGI

extension ProtocolServers {
    /// HTTP/1.1, FastCGI, SCGI and uwsgi; CGI is a launch mode, not a listener.
    public static let standard = ProtocolServers { gatewayProtocol, configuration in
        switch gatewayProtocol {
        case .http: HTTPProtocolServer(configuration: configuration)
        case .fastcgi: FastCGIProtocolServer(configuration: configuration)
        case .scgi: SCGIProtocolServer(configuration: configuration)
        case .uwsgi: UWSGIProtocolServer(configuration: configuration)
        case .cgi: nil
        }
    }
}

extension GatewayServer {
    /// A server of the standard protocols (``ProtocolServers/standard``).
    public convenience init(
        listeners: [ListenerSpec],
        configuration: GatewayConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        sharedSockets: Bool = false,
        acceptThreads: Int? = nil,
        onReady: (@Sendable ([SocketAddress?]) -> Void)? = nil,
        stalled: (@Sendable () -> Bool)? = nil
    ) {
        self.init(
            listeners: listeners, configuration: configuration, protocols: .standard, group: group, sharedSockets: sharedSockets,
            acceptThreads: acceptThreads, onReady: onReady, stalled: stalled)
    }
}
