import CPosternSocket
import CPosternTLS
import NIOSSL
import PosternCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The keys that seal the TLS listeners' session tickets, shared by a server's processes: a
/// master makes a secret, hands it to each worker it starts (through a pipe, never a file or
/// the environment), and every process derives the same keys from it, rotated every
/// ``periodSeconds`` (CPosternTLS.h has the derivation). So a session nginx resumes
/// (`uwsgi_ssl_session_reuse on`) resumes on whichever worker accepts the connection, and after a
/// reload, whose new workers have the same master. A process that executes its next image (a
/// master's SIGUSR2 upgrade, a single process's reload in place) hands the secret on the same
/// way, so sessions outlive those too. BoringSSL's default, one key each process makes for
/// itself, makes a ticket issued by one worker a full handshake on every other.
///
/// swift-nio-ssl has no API for ticket keys and keeps its `SSL_CTX` private: ``attach(to:)``
/// finds it by reflection (`NIOSSLContext.boringSSLContext`). If a release of swift-nio-ssl
/// moves it, the context keeps BoringSSL's own key (sessions resume on the process that issued
/// them) and the server says so in its log; `TLSListenerTests`' ticket-key test fails first.
public enum TLSTicketKeys {
    /// How long a key seals new tickets; a ticket is opened for one more period, then renewed.
    public static let periodSeconds: UInt32 = 3600
    public static let secretBytes = 32

    private static let secret = Mutex<[UInt8]?>(nil)

    /// A new secret from the kernel's random source (`SystemRandomNumberGenerator`: getrandom(2)
    /// on Linux, cryptographically secure).
    public static func makeSecret() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<secretBytes).map { _ in generator.next() }
    }

    /// Makes `secret` this process's, for every context made from now on. The first call wins (a
    /// process has one secret); false when `secret` is not ``secretBytes`` long.
    @discardableResult
    public static func use(secret bytes: [UInt8]) -> Bool {
        guard bytes.count == secretBytes else { return false }
        return secret.withLock { secret in
            if secret == nil {
                secret = bytes
                _ = postern_tls_ticket_secret_set(bytes, bytes.count, periodSeconds)
            }
            return true
        }
    }

    /// This process's secret, to hand to a worker; nil when none is in use.
    public static var currentSecret: [UInt8]? { secret.withLock { $0 } }

    /// Seals and opens `context`'s tickets with the shared keys. False when this process has no
    /// secret, or swift-nio-ssl's context no longer holds its `SSL_CTX` where this looks.
    public static func attach(to context: NIOSSLContext) -> Bool {
        guard currentSecret != nil, let pointer = context.boringSSLContext else { return false }
        return postern_tls_ticket_keys_attach(UnsafeMutableRawPointer(pointer)) == 0
    }

    /// The key material (name, HMAC key, AES key: 16 bytes each) of period `epoch`; nil without a
    /// secret.
    package static func keyMaterial(epoch: UInt64) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 48)
        return postern_tls_ticket_key(epoch, &bytes) == 0 ? bytes : nil
    }

    /// Tickets this process opened with one of the shared keys: sessions resumed.
    public static var ticketsOpened: UInt64 { postern_tls_tickets_opened() }

    /// The environment variable that names the descriptor holding the secret a process was
    /// handed: by its master (a worker), or by its previous image (an upgraded master, a single
    /// process reloaded in place).
    public static let environmentKey = "POSTERN_TICKET_SECRET_FD"

    /// The secret this process was handed, read from the descriptor ``environmentKey`` names
    /// (then closed, and the variable removed); nil when it was handed none.
    public static func takeInherited() -> [UInt8]? {
        guard let text = getenv(environmentKey).map({ String(cString: $0) }) else { return nil }
        unsetenv(environmentKey)
        guard let fd = Int32(text), fd > 2 else { return nil }
        return readSecret(from: fd)
    }

    /// Hands this process's secret to the image it is about to execute: a pipe holding it, not
    /// close-on-exec, named in the environment. Returns the descriptor to keep across the exec,
    /// or nil without a secret; ``cancelPassing(_:)`` if the exec failed.
    public static func passAcrossExec() -> Int32? {
        guard let secret = currentSecret, let fd = pipe(holding: secret) else { return nil }
        _ = fcntl(fd, F_SETFD, 0)
        setenv(environmentKey, String(fd), 1)
        return fd
    }

    /// Takes back what ``passAcrossExec()`` set up, once the exec has failed.
    public static func cancelPassing(_ fd: Int32?) {
        guard let fd else { return }
        close(fd)
        unsetenv(environmentKey)
    }

    /// The secret read from descriptor `fd` (a pipe holding it), which is then closed.
    public static func readSecret(from fd: Int32) -> [UInt8]? {
        defer { close(fd) }
        var bytes: [UInt8] = []
        while bytes.count < secretBytes {
            guard let chunk = FileDescriptorIO.readChunk(fd, upTo: secretBytes - bytes.count), !chunk.isEmpty else { return nil }
            bytes += chunk
        }
        return bytes
    }

    /// A pipe holding `secret` for a child: its read end (close-on-exec here; the child gets it
    /// through a spawn's file actions), or nil when no pipe could be made. The caller closes it
    /// once the child is started.
    public static func pipe(holding secret: [UInt8]) -> Int32? {
        var ends: [Int32] = [-1, -1]
        guard ends.withUnsafeMutableBufferPointer({ postern_pipe_cloexec($0.baseAddress) }) == 0 else { return nil }
        defer { close(ends[1]) }
        // 32 bytes fit any pipe's buffer: the write never blocks.
        guard secret.withUnsafeBytes({ FileDescriptorIO.writeAll(ends[1], $0) }) else {
            close(ends[0])
            return nil
        }
        return ends[0]
    }
}
