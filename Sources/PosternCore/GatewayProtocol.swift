/// The wire protocol that carried a request to the gateway.
public enum GatewayProtocol: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case http
    case fastcgi
    case scgi
    case uwsgi
    case cgi

    public var description: String { rawValue }
}
