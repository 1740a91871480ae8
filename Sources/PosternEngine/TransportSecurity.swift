import Synchronization

/// What a TLS listener learnt of a connection in its handshake, for the environ: the variables
/// Apache's mod_ssl gives a CGI program (`HTTPS=on`, `SSL_PROTOCOL`, and for a client that
/// presented a certificate `SSL_CLIENT_VERIFY`, `SSL_CLIENT_S_DN`, `SSL_CLIENT_I_DN`,
/// `SSL_CLIENT_M_SERIAL`). Recorded once, when the handshake completes, which is before the
/// first byte of the first request can be read; a plaintext connection has none.
///
/// Only a listener whose TLS peer is the user adds them (`--https`). Behind `--suwsgi` and
/// `--fastcgi-tls` the peer is the front-end, which sends its own `HTTPS` and `SSL_*` for the
/// user's connection: those are never overwritten.
public final class TransportSecurity: Sendable {
    private let recorded = Mutex<[(name: String, value: String)]>([])

    public init() {}

    /// The variables, in the order recorded; empty until the handshake has completed.
    public var variables: [(name: String, value: String)] { recorded.withLock { $0 } }

    public func record(_ variables: [(name: String, value: String)]) {
        recorded.withLock { $0 = variables }
    }
}
