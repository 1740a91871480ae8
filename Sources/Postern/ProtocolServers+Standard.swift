import NIOCore
import NIOPosix
import NIOSSL
import PosternEngine
import PosternFastCGI
import PosternHTTP
import PosternSCGI
import PosternUWSGI

extension ProtocolServers {
    /// HTTP/1.1, FastCGI, SCGI and uwsgi, in plaintext or inside TLS (the runtime adds the TLS
    /// handler before the protocol's own).
    public static let standard = ProtocolServers { listenerProtocol, configuration in
        switch listenerProtocol.plain {
        case .fastcgi: FastCGIProtocolServer(configuration: configuration)
        case .scgi: SCGIProtocolServer(configuration: configuration)
        case .uwsgi: UWSGIProtocolServer(configuration: configuration)
        default: HTTPProtocolServer(configuration: configuration)
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
        stalled: (@Sendable () -> Bool)? = nil,
        tls: NIOSSLContext? = nil
    ) {
        self.init(
            listeners: listeners, configuration: configuration, protocols: .standard, group: group, sharedSockets: sharedSockets,
            acceptThreads: acceptThreads, onReady: onReady, stalled: stalled, tls: tls)
    }
}
