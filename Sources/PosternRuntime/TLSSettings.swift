import CPosternTLS
import NIOCore
import NIOSSL
import PosternCore

#if canImport(Glibc)
import Glibc
#endif

/// What every TLS listener of a process serves with: `--tls-certificate` (PEM, the leaf first,
/// then its chain), `--tls-key` (PEM, unencrypted), `--tls-client-ca` (PEM: given, every TLS
/// listener requires a client certificate signed by one of these and trusts nothing else, never
/// the system's roots) and `--tls-min-version` (1.2 or 1.3; SwiftNIO SSL's own server default,
/// TLS 1.0, is never used).
///
/// ``makeContext()`` reads the files each time it is called: a process reads them as it starts,
/// so a reload (a single process executed again, a master's new workers) serves the files as
/// they are then, and a bad file fails the reload's check instead of the running server.
/// BoringSSL refuses renegotiation on a server, so a client cannot start one.
public struct TLSSettings: Sendable, Equatable {
    public enum MinimumVersion: String, Sendable, Equatable, CaseIterable {
        case v1_2 = "1.2"
        case v1_3 = "1.3"
    }

    public var certificate: String
    public var key: String
    public var clientCA: String?
    public var minimumVersion: MinimumVersion

    public init(certificate: String, key: String, clientCA: String? = nil, minimumVersion: MinimumVersion = .v1_2) {
        self.certificate = certificate
        self.key = key
        self.clientCA = clientCA
        self.minimumVersion = minimumVersion
    }

    /// A context made from the files, and when the certificate it serves expires.
    public struct Loaded: Sendable {
        public let context: NIOSSLContext
        /// The leaf certificate's notAfter, seconds since the epoch (the status page's expiry).
        public let notValidAfter: Int
        /// Its session tickets are sealed with the keys this process shares with the server's
        /// others (``TLSTicketKeys``); false: with BoringSSL's key of this process alone.
        public let sharesTicketKeys: Bool
    }

    /// The server context, made from the files as they are now; each failure names the option,
    /// the file and the reason.
    public func makeContext() throws(TLSError) -> NIOSSLContext {
        try load().context
    }

    /// ``makeContext()``, with the expiry of the certificate it serves (read from the same bytes).
    public func load() throws(TLSError) -> Loaded {
        let chain = try Self.certificates(in: certificate, option: "--tls-certificate")
        let keyBytes = try Self.contents(of: key, option: "--tls-key")
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw .notAPrivateKey(path: key)
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = minimumVersion == .v1_3 ? .tlsv13 : .tlsv12
        configuration.renegotiationSupport = .none
        // After its close_notify the TLS handler waits this long for the peer's before it lets
        // the connection go (5 s by default), and a peer that closes without one (nginx does, to
        // its upstreams) does not end that wait: each connection's handler, BoringSSL object and
        // buffers stayed alive 5 s after the socket closed, and a suwsgi backend at 2,000
        // connections a second held some 10,000 of them (about 300 MB). The wait also drains
        // what a client still sends after an early answer (an HTTPS upload refused with 413)
        // for that long, so that the close does not reset the answer away; a one-request
        // protocol's connections need none of it (``closingAtOnce(_:)``).
        configuration.shutdownTimeout = .milliseconds(100)
        if let clientCA {
            // A client certificate is required (SSL_VERIFY_FAIL_IF_NO_PEER_CERT) and checked
            // against these roots alone.
            configuration.trustRoots = .certificates(try Self.certificates(in: clientCA, option: "--tls-client-ca"))
            configuration.certificateVerification = .noHostnameVerification
            configuration.sendCANameList = true
        } else {
            configuration.certificateVerification = .none
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            // The files each parsed alone: what is left is the pair (BoringSSL checks the key
            // against the leaf certificate as it loads it).
            throw .keyDoesNotMatch(key: key, certificate: certificate, reason: "\(error)")
        }
        if let pointer = context.boringSSLContext { _ = postern_tls_server_defaults(UnsafeMutableRawPointer(pointer)) }
        return Loaded(context: context, notValidAfter: Int(chain[0].notValidAfter), sharesTicketKeys: TLSTicketKeys.attach(to: context))
    }

    /// Every certificate in a PEM file: at least one.
    /// `context`'s settings for a one-request protocol (suwsgi), whose connection closes as soon
    /// as its close_notify is written: the request was read whole before the response, so no
    /// unread byte turns the close into a reset, and a server owes its peer nothing after its own
    /// close_notify (RFC 8446 §6.1: the initiator "need not wait for the responding
    /// close_notify alert before closing the read side"). Waiting for nginx's end (it sends
    /// none) cost each suwsgi connection a timer, a wake-up and a read: about 9 % of the
    /// backend's CPU a request. `nil` if the context cannot be made again (never, in practice:
    /// the same configuration made `context`).
    package static func closingAtOnce(_ context: NIOSSLContext) -> NIOSSLContext? {
        var configuration = context.configuration
        configuration.shutdownTimeout = .zero
        guard let closing = try? NIOSSLContext(configuration: configuration) else { return nil }
        if let pointer = closing.boringSSLContext { _ = postern_tls_server_defaults(UnsafeMutableRawPointer(pointer)) }
        _ = TLSTicketKeys.attach(to: closing)
        return closing
    }

    package static func certificates(in path: String, option: String) throws(TLSError) -> [NIOSSLCertificate] {
        let bytes = try contents(of: path, option: option)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw .notACertificate(option: option, path: path)
        }
        guard !certificates.isEmpty else { throw .noCertificate(option: option, path: path) }
        return certificates
    }

    /// A file's bytes, or the reason it cannot be read.
    package static func contents(of path: String, option: String) throws(TLSError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotRead(option: option, path: path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        while true {
            guard let chunk = FileDescriptorIO.readChunk(fd, upTo: 16384) else { throw .cannotRead(option: option, path: path, errno: errno) }
            if chunk.isEmpty { break }
            bytes += chunk
            guard bytes.count <= 1 << 20 else { throw .tooLarge(option: option, path: path) }
        }
        guard !bytes.isEmpty else { throw .empty(option: option, path: path) }
        return bytes
    }
}
