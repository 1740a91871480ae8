import NIOSSL

extension NIOSSLContext {
    /// The BoringSSL `SSL_CTX` inside the context, for the settings swift-nio-ssl has no API for
    /// (``TLSTicketKeys``, `postern_tls_server_defaults`): its stored property `sslContext`,
    /// found by reflection, read before the context serves its first connection. Nil if a
    /// release of swift-nio-ssl moves it (`TLSListenerTests` fails first).
    var boringSSLContext: OpaquePointer? {
        Mirror(reflecting: self).children.first { $0.label == "sslContext" }?.value as? OpaquePointer
    }
}
