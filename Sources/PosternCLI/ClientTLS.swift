import NIOCore
import NIOSSL
import PosternClient
import PosternRuntime

/// `postern request`'s side of a TLS listener (`https://`, `suwsgi://`, `fastcgi-tls://`): the
/// CA that signed the server's certificate (`--cacert`; without it, the system's roots), and a
/// client certificate and key for a server that requires one (`--cert`, `--key`). The server's
/// name is checked: the URL's host against the certificate's names (an IP address against its
/// IP entries), and a host name is sent as SNI.
public struct ClientTLS: Sendable, Equatable {
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// The channel setup that adds the TLS handler for a server at `host`.
    public func setup(host: String?) throws -> ClientChannelSetup {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile {
            configuration.trustRoots = .certificates(try TLSSettings.certificates(in: caFile, option: "--cacert"))
        }
        if let certificateFile {
            guard let keyFile else { throw ClientError.tls("--cert needs --key") }
            configuration.certificateChain = try TLSSettings.certificates(in: certificateFile, option: "--cert").map { .certificate($0) }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: try TLSSettings.contents(of: keyFile, option: "--key"), format: .pem))
            } catch let error as TLSError {
                throw error
            } catch {
                throw ClientError.tls("--key \(keyFile): not an unencrypted PEM private key")
            }
        }
        let context = try NIOSSLContext(configuration: configuration)
        // SNI carries a name, never an address; an address is checked against the certificate's
        // IP entries instead.
        let serverName = host.flatMap { Self.isAddress($0) ? nil : $0 }
        return { channel in
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
        }
    }

    /// A failed handshake's error in words, from BoringSSL's reason code and SwiftNIO SSL's
    /// own errors; nil for an error that is not about TLS.
    static func reason(_ error: any Error, host: String?) -> String? {
        let text = "\(error)"
        let reasons: [(code: String, meaning: String)] = [
            ("CERTIFICATE_REQUIRED", "the server requires a client certificate (--cert FILE --key FILE)"),
            ("CERTIFICATE_VERIFY_FAILED", "the server's certificate is not signed by a CA this client trusts (--cacert FILE)"),
            ("failedToValidateHostname", "the server's certificate does not name \(host ?? "the host")"),
            ("ALERT_UNKNOWN_CA", "the server does not trust the client certificate's CA"),
            ("ALERT_BAD_CERTIFICATE", "the server refused the client certificate"),
            ("WRONG_VERSION_NUMBER", "the server did not answer in TLS (a plaintext listener?)"),
            ("PROTOCOL_VERSION", "no TLS version in common (the server's --tls-min-version?)"),
        ]
        if let known = reasons.first(where: { text.contains($0.code) }) { return known.meaning }
        return text.contains("SSL") || text.contains("handshake") ? "the TLS handshake failed: \(text)" : nil
    }

    static func isAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }
}
