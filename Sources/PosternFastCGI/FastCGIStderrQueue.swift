import NIOCore
import Synchronization

/// What a FastCGI request's application wrote to its error stream (`wsgi.errors`), waiting to
/// leave as FCGI_STDERR with the next STDOUT write or the end (FastCGI 1.0 §5.3), and whether
/// the stream was used at all (then it needs its own empty record to end it).
final class FastCGIStderrQueue: Sendable {
    private let state = Mutex<(pending: ByteBuffer, used: Bool)>((ByteBuffer(), false))

    init() {}

    func append(_ message: String) {
        state.withLock { state in
            state.pending.writeString(message)
            state.used = true
        }
    }

    /// Moves the queued bytes out (`nil` when there are none); `used` tells whether anything
    /// was ever queued.
    func take() -> (bytes: ByteBuffer?, used: Bool) {
        state.withLock { state in
            guard state.pending.readableBytes > 0 else { return (nil, state.used) }
            defer { state.pending = ByteBuffer() }
            return (state.pending, true)
        }
    }
}
