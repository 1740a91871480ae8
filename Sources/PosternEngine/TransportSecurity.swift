import Synchronization

/// What a TLS listener learnt of a connection in its handshake, for the environ: the variables
/// Apache's mod_ssl gives a CGI program (`HTTPS=on`, `SSL_PROTOCOL`, and for a client that
/// presented a certificate `SSL_CLIENT_VERIFY`, `SSL_CLIENT_S_DN`, `SSL_CLIENT_I_DN`,
/// `SSL_CLIENT_M_SERIAL`). Recorded once, when the handshake completes, which is before the
/// first byte of the first request can be read; a plaintext connection has none.
///
/// Only a listener whose TLS peer is the user adds them as variables (`--https`). Behind
/// `--suwsgi` and `--fastcgi-tls` the peer is the front-end, which sends its own `HTTPS` and
/// `SSL_*` for the user's connection: those are never overwritten, and the hop's handshake is
/// in ``connectionEntries`` instead (every TLS listener has them).
public final class TransportSecurity: Sendable {
    private let recorded = Mutex<[(name: String, value: String)]>([])

    public init() {}

    /// The variables, in the order recorded; empty until the handshake has completed.
    public var variables: [(name: String, value: String)] { recorded.withLock { $0 } }

    public func record(_ variables: [(name: String, value: String)]) {
        recorded.withLock { $0 = variables }
    }

    /// The same handshake as ``Environ/connectionEntries``, on every TLS listener: mod_ssl's
    /// names for its peer under `gateway.tls_*`, which no front-end's parameter can overwrite.
    public var connectionEntries: [String: String] {
        var entries: [String: String] = [:]
        for (name, value) in variables {
            guard let key = Self.entryNames[name] else { continue }
            entries[key] = value
        }
        return entries
    }

    private static let entryNames = [
        "SSL_PROTOCOL": "gateway.tls_protocol", "SSL_CLIENT_VERIFY": "gateway.tls_peer_verify", "SSL_CLIENT_S_DN": "gateway.tls_peer_s_dn",
        "SSL_CLIENT_I_DN": "gateway.tls_peer_i_dn", "SSL_CLIENT_M_SERIAL": "gateway.tls_peer_serial",
    ]
}
