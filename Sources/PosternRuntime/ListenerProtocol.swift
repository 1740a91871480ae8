import PosternCore

/// The protocol a listening socket speaks, named as its option (`--fastcgi`), systemd's
/// `FileDescriptorName=` and the inherited-listener hand-over (``InheritedListeners``) name it.
/// Every one has a protocol server. A CGI request comes without a listener, so this is
/// ``GatewayProtocol`` without `.cgi`, and with the TLS listeners beside the plaintext ones:
/// `https` (HTTP/1.1 over TLS), `suwsgi` (uwsgi over TLS, nginx's `uwsgi_pass suwsgi://`) and
/// `fastcgi-tls` (FastCGI over TLS, HAProxy's `proto fcgi ssl`).
public enum ListenerProtocol: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case http
    case fastcgi
    case scgi
    case uwsgi
    case https
    case suwsgi
    case fastcgiTLS = "fastcgi-tls"

    /// Whether the listener's connections begin with a TLS handshake.
    public var isTLS: Bool { plain != self }

    /// The protocol spoken inside the TLS session (itself for a plaintext listener).
    public var plain: ListenerProtocol {
        switch self {
        case .https: .http
        case .suwsgi: .uwsgi
        case .fastcgiTLS: .fastcgi
        case .http, .fastcgi, .scgi, .uwsgi: self
        }
    }

    /// What the environ of a request that came in on such a listener records.
    public var gatewayProtocol: GatewayProtocol {
        switch plain {
        case .fastcgi: .fastcgi
        case .scgi: .scgi
        case .uwsgi: .uwsgi
        default: .http
        }
    }

    public var description: String { rawValue }
}
