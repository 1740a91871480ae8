import Logging
import NIOCore
import NIOSSL
import NIOTLS
import PosternEngine

/// Next to the TLS handler of a TLS listener's connection. When the handshake completes it
/// records what the environ may say of it (``TransportSecurity``: mod_ssl's `HTTPS`,
/// `SSL_PROTOCOL` and `SSL_CLIENT_*`). A handshake that fails (a plaintext client, a client
/// certificate no `--tls-client-ca` signed, none at all, a version below `--tls-min-version`)
/// is logged at most once a second per listener, and the connection closes; the protocol's own
/// handlers never see it, as they never see a byte before the handshake is done. Once the
/// handshake is recorded it leaves the pipeline: a connection's reads then skip it.
package final class TLSHandshakeRecorder: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private let security: TransportSecurity
    /// The connection's TLS handler, asked for what the handshake settled; `nil` once recorded.
    private var tls: NIOSSLServerHandler?
    private let failures: ResourceWarning
    private let logger: Logger
    private let observer: (any RequestObserver)?
    private let recordsCipher: Bool
    private var completed = false
    private var failed = false

    /// - Parameters:
    ///   - observer: told of each handshake's end (the status page's counts).
    ///   - recordsCipher: record the cipher suite too (``TLSCipher``; `--https`, whose environ
    ///     has mod_ssl's `SSL_CIPHER`).
    init(
        security: TransportSecurity, tls: NIOSSLServerHandler, failures: ResourceWarning, logger: Logger, observer: (any RequestObserver)? = nil,
        recordsCipher: Bool = false
    ) {
        self.security = security
        self.tls = tls
        self.failures = failures
        self.logger = logger
        self.observer = observer
        self.recordsCipher = recordsCipher
    }

    /// A TLS listener's connection set up: the TLS handler, then the recorder; returns what the
    /// handshake will say of the connection (empty until it completes). The fuzz target
    /// `fuzz-tls` sets up its connections through here too.
    /// - Parameter corked: a ``FlushCork`` below the TLS handler, for a one-request protocol
    ///   whose response's end and close_notify leave together (suwsgi).
    package static func addTLSHandlers(
        to pipeline: ChannelPipeline, context: NIOSSLContext, failures: ResourceWarning, logger: Logger, observer: (any RequestObserver)?,
        recordsCipher: Bool = false, corked: Bool = false
    ) throws -> TransportSecurity {
        let recorded = TransportSecurity()
        if corked { try pipeline.syncOperations.addHandler(FlushCork()) }
        let tls = NIOSSLServerHandler(context: context)
        try pipeline.syncOperations.addHandlers(
            tls, TLSHandshakeRecorder(security: recorded, tls: tls, failures: failures, logger: logger, observer: observer, recordsCipher: recordsCipher))
        return recorded
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted = event as? TLSUserEvent, let tls else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        completed = true
        self.tls = nil
        observer?.tlsHandshakeEnded(succeeded: true)
        let cipher = recordsCipher ? TLSCipher.negotiated(by: tls) : nil
        security.record(Self.variables(version: tls.tlsVersion, cipher: cipher, peer: tls.peerCertificate))
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !completed else {
            context.fireErrorCaught(error)
            return
        }
        if !failed {
            failed = true
            observer?.tlsHandshakeEnded(succeeded: false)
        }
        if failures.isDue() {
            logger.notice(
                "TLS handshake failed; the connection is closed (logged at most once a second)",
                metadata: ["peer": "\(context.channel.remoteAddress?.ipAddress ?? "?")", "reason": "\(Self.reason(error))", "error": "\(error)"])
        }
        context.close(promise: nil)
    }

    /// mod_ssl's variables for a completed handshake: `HTTPS=on`, `SSL_PROTOCOL`, the cipher
    /// when given (`SSL_CIPHER`, `SSL_CIPHER_USEKEYSIZE`, `SSL_CIPHER_ALGKEYSIZE`), and
    /// `SSL_CLIENT_VERIFY` with, for a client that presented a certificate (verified, or the
    /// handshake would have failed), its subject and issuer (RFC 2253, as mod_ssl writes them)
    /// and serial number (hexadecimal).
    static func variables(version: TLSVersion?, cipher: TLSCipher? = nil, peer: NIOSSLCertificate?) -> [(name: String, value: String)] {
        var variables: [(name: String, value: String)] = [("HTTPS", "on")]
        if let version { variables.append(("SSL_PROTOCOL", protocolName(version))) }
        if let cipher {
            variables.append(("SSL_CIPHER", cipher.name))
            variables.append(("SSL_CIPHER_USEKEYSIZE", String(cipher.bits)))
            variables.append(("SSL_CIPHER_ALGKEYSIZE", String(cipher.algorithmBits)))
        }
        guard let peer else {
            variables.append(("SSL_CLIENT_VERIFY", "NONE"))
            return variables
        }
        variables.append(("SSL_CLIENT_VERIFY", "SUCCESS"))
        variables.append(("SSL_CLIENT_S_DN", DistinguishedName.rfc2253(peer.subjectName.map { (DistinguishedName.shortName($0.type), $0.value) })))
        variables.append(("SSL_CLIENT_I_DN", DistinguishedName.rfc2253(peer.issuerName.map { (DistinguishedName.shortName($0.type), $0.value) })))
        variables.append(("SSL_CLIENT_M_SERIAL", DistinguishedName.serial(peer.serialNumber)))
        return variables
    }

    /// What a failed handshake's error means, in words, from BoringSSL's reason code.
    static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        let reasons: [(code: String, meaning: String)] = [
            ("HTTP_REQUEST", "the client spoke plaintext HTTP"),
            ("WRONG_VERSION_NUMBER", "the client did not speak TLS"),
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "the client presented no certificate (--tls-client-ca requires one)"),
            ("CERTIFICATE_VERIFY_FAILED", "the client's certificate is not signed by --tls-client-ca"),
            ("UNSUPPORTED_PROTOCOL", "the client's TLS version is below --tls-min-version"),
            ("NO_SHARED_CIPHER", "no cipher in common"),
            ("TLSV1_ALERT", "the client refused the handshake (does it trust the server's certificate?)"),
            ("SSLV3_ALERT", "the client refused the handshake (does it trust the server's certificate?)"),
        ]
        // The codes are words of the text (`…:OPENSSL_internal:WRONG_VERSION_NUMBER`), an alert's
        // at the start of its word (`TLSV1_ALERT_UNKNOWN_CA`). Words, not a substring search: that
        // is the regex engine's (`_StringProcessing`), a megabyte in every binary.
        let words = text.split { !($0.isLetter || $0.isNumber || $0 == "_") }
        return reasons.first { reason in words.contains { $0.hasPrefix(reason.code) } }?.meaning ?? "the handshake failed"
    }

    static func protocolName(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }
}
