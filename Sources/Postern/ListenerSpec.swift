import PosternCore

/// One listener to open: which protocol, where, and who may connect.
public struct ListenerSpec: Sendable, Hashable, CustomStringConvertible {
    public var gatewayProtocol: GatewayProtocol
    public var address: ListenAddress
    /// Mode of a unix socket file this listener creates. Default 0660 (owner and group).
    public var socketMode: UInt16
    public var allow: AllowList

    public init(_ gatewayProtocol: GatewayProtocol, _ address: ListenAddress, socketMode: UInt16 = 0o660, allow: AllowList = AllowList()) {
        self.gatewayProtocol = gatewayProtocol
        self.address = address
        self.socketMode = socketMode
        self.allow = allow
    }

    public var description: String { "\(gatewayProtocol) on \(address)" }

    /// Whether the listener is a TCP address given by host and port.
    var isTCP: Bool {
        if case .tcp = address { return true }
        return false
    }
}
