import PosternCore
import PosternEngine

/// The protocol servers a process serves with, one per listener protocol: given to the runtime
/// by the entry point, the one place that knows every protocol module (``standard``), so that
/// the runtime itself knows protocols only as ``ProtocolServer``s.
public struct ProtocolServers: Sendable {
    /// The server for a listener's protocol.
    public let server: @Sendable (ListenerProtocol, GatewayConfiguration) -> any ProtocolServer

    public init(_ server: @escaping @Sendable (ListenerProtocol, GatewayConfiguration) -> any ProtocolServer) {
        self.server = server
    }
}
