import CPosternTLS
import NIOSSL

/// The cipher suite a TLS connection's handshake settled on, as mod_ssl names it: `SSL_CIPHER`
/// (OpenSSL's name: `ECDHE-ECDSA-AES256-GCM-SHA384`, or `TLS_AES_256_GCM_SHA384` in TLS 1.3),
/// `SSL_CIPHER_USEKEYSIZE` and `SSL_CIPHER_ALGKEYSIZE` (its secret bits, and its algorithm's).
///
/// swift-nio-ssl does not say which cipher a connection uses: ``negotiated(by:)`` finds the
/// handler's BoringSSL `SSL` by reflection (the handler's `connection`, its `ssl`), about 3 µs
/// in a release build, so it is read for `--https` alone, where the environ carries it. If a
/// release of swift-nio-ssl moves them, the variables are left out (`TLSListenerTests` fails
/// first).
struct TLSCipher: Equatable, Sendable {
    let name: String
    let bits: Int
    let algorithmBits: Int

    /// The cipher of `handler`'s connection; nil before its handshake is done, or if
    /// swift-nio-ssl no longer keeps the `SSL` where this looks.
    static func negotiated(by handler: NIOSSLHandler) -> TLSCipher? {
        guard let ssl = sslPointer(of: handler) else { return nil }
        var bits: Int32 = 0
        var algorithmBits: Int32 = 0
        guard let name = postern_tls_cipher(UnsafeMutableRawPointer(ssl), &bits, &algorithmBits) else { return nil }
        return TLSCipher(name: String(cString: name), bits: Int(bits), algorithmBits: Int(algorithmBits))
    }

    /// The `SSL` of a handler: its stored `connection` (declared by `NIOSSLHandler`, a superclass
    /// of the server handler), whose stored `ssl` it is.
    static func sslPointer(of handler: NIOSSLHandler) -> OpaquePointer? {
        var mirror: Mirror? = Mirror(reflecting: handler)
        while let current = mirror {
            if let connection = current.children.first(where: { $0.label == "connection" })?.value {
                return Mirror(reflecting: connection).children.first { $0.label == "ssl" }?.value as? OpaquePointer
            }
            mirror = current.superclassMirror
        }
        return nil
    }
}
