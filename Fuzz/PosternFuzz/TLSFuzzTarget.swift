// The TLS listener's handshake: whatever a client sends first (garbage, a plaintext HTTP, FastCGI,
// SCGI or uwsgi request, a ClientHello cut short or mangled) fed to the handlers a TLS listener's
// connection gets (TLSHandshakeRecorder.addTLSHandlers: swift-nio-ssl's server handler and the
// recorder), on an EmbeddedChannel.
import Logging
import NIOCore
import NIOEmbedded
import NIOSSL
import PosternEngine
import PosternRuntime

public enum TLSFuzzTarget {
    /// A self-signed ECDSA P-256 certificate made for this target alone (`openssl req -x509
    /// -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 36500`); its key protects nothing.
    static let context: NIOSSLContext = {
        let certificate = """
            -----BEGIN CERTIFICATE-----
            MIIBhTCCASugAwIBAgIUKOaZ91ZyNcQul4Q/C9aNdSsxixswCgYIKoZIzj0EAwIw
            FzEVMBMGA1UEAwwMcG9zdGVybiBmdXp6MCAXDTI2MTIwNzAwMzgyNFoYDzIxMjYx
            MTEzMDAzODI0WjAXMRUwEwYDVQQDDAxwb3N0ZXJuIGZ1enowWTATBgcqhkjOPQIB
            BggqhkjOPQMBBwNCAAQQ8xzFLv5zj0rd1EG7yU2WGag3ed0LmkvZJ2ofljasvK7d
            Ie7mcRFQ3ptV/RfYxLkSfOBrESiPBhRrNYKjCDMJo1MwUTAdBgNVHQ4EFgQUH9qg
            ZGKyHCB+h41bgy9SQK6lU1MwHwYDVR0jBBgwFoAUH9qgZGKyHCB+h41bgy9SQK6l
            U1MwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBp+fHn7JmLe8xu
            hW1lI+X7tsyXzC9Qaf2XFAM+pqMngwIhAN78Hq6pkSfEOLM3+3tW1lR0H20naK9v
            0dgGrgjlj78U
            -----END CERTIFICATE-----
            """
        let key = """
            -----BEGIN PRIVATE KEY-----
            MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMfvm2ViHd/UF3HfI
            oehu9u/d22Pykq5hYyd9loORmVOhRANCAAQQ8xzFLv5zj0rd1EG7yU2WGag3ed0L
            mkvZJ2ofljasvK7dIe7mcRFQ3ptV/RfYxLkSfOBrESiPBhRrNYKjCDMJ
            -----END PRIVATE KEY-----
            """
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try! NIOSSLCertificate(bytes: Array(certificate.utf8), format: .pem))],
            privateKey: .privateKey(try! NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        return try! NIOSSLContext(configuration: configuration)
    }()

    static let logger: Logger = {
        var logger = Logger(label: "fuzz-tls")
        logger.logLevel = .critical
        return logger
    }()

    /// What reaches the protocol's handlers past TLS: nothing may, before a handshake that random
    /// bytes cannot finish (its Finished needs the server's fresh key share).
    final class ProtocolSide: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes = 0
        var errors = 0
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += unwrapInboundIn(data).readableBytes }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors += 1 }
    }

    public static func run(_ data: UnsafeBufferPointer<UInt8>) {
        let input = FuzzInput(data)
        let channel = EmbeddedChannel()
        let protocolSide = ProtocolSide()
        let security: TransportSecurity
        do {
            security = try TLSHandshakeRecorder.addTLSHandlers(
                to: channel.pipeline, context: context, failures: ResourceWarning(interval: .seconds(3600)), logger: logger, observer: nil)
            try channel.pipeline.syncOperations.addHandler(protocolSide)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            preconditionFailure("cannot set up the channel: \(error)")
        }
        for chunk in input.chunks where channel.isActive {
            do { try channel.writeInbound(chunk) } catch { break }
            // The server's answers (a ServerHello, an alert) are read and dropped, as a client would.
            while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        }
        // swift-nio-ssl's timers (its close_notify wait) hold the handler, and with it the TLS
        // session, until they run: run them, then drop the loop's.
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        precondition(protocolSide.bytes == 0, "bytes reached the protocol before a TLS handshake")
        precondition(protocolSide.errors == 0, "a handshake error reached the protocol (the recorder closes the connection instead)")
        precondition(security.variables.isEmpty, "a handshake completed on bytes a client could not have made")
        _ = try? channel.finish()
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        try? channel.embeddedEventLoop.syncShutdownGracefully()
    }
}
