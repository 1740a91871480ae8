import Logging
import NIOCore
import PosternCore
import Synchronization

/// One accepted connection as the runtime sees it: who is on the other end, the configuration,
/// and whether the server is draining (graceful shutdown).
///
/// A protocol server calls ``beginRequest()`` when a request head is complete and
/// ``endRequest()`` when its response is written; between requests the connection is idle, and
/// a draining server closes idle connections at once and busy ones after their response.
public final class ConnectionContext: Sendable {
    public let configuration: GatewayConfiguration
    public let logger: Logger
    public let remoteAddress: SocketAddress?
    public let localAddress: SocketAddress?
    /// The addresses as text, made once per connection (not once per request of a kept one).
    public let remoteIP: String?
    public let localIP: String?
    /// A TLS listener's connection: what its handshake said (``TransportSecurity``); `nil` for
    /// a plaintext one.
    public let transportSecurity: TransportSecurity?
    /// `nil` for a connection the engine's fast path serves on its own thread: it is busy from
    /// its first moment to its close, so there is nothing to drain or close from outside.
    private let channel: (any Channel)?
    private let state = Mutex(State())

    private struct State {
        var activeRequests = 0
        var startedRequests = 0
        var draining = false
    }

    public init(channel: any Channel, configuration: GatewayConfiguration, logger: Logger, transportSecurity: TransportSecurity? = nil) {
        self.channel = channel
        self.transportSecurity = transportSecurity
        self.configuration = configuration
        self.logger = logger
        self.remoteAddress = channel.remoteAddress
        self.localAddress = channel.localAddress
        self.remoteIP = remoteAddress?.ipAddress
        self.localIP = localAddress?.ipAddress
    }

    /// A connection with no channel (yet): the engine's fast path, which reads the whole request
    /// before anything else happens on it.
    public init(remoteAddress: SocketAddress?, localAddress: SocketAddress?, configuration: GatewayConfiguration, logger: Logger) {
        self.channel = nil
        self.transportSecurity = nil
        self.configuration = configuration
        self.logger = logger
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.remoteIP = remoteAddress?.ipAddress
        self.localIP = localAddress?.ipAddress
    }

    /// A request has started; `false` if the server is draining and the request must be refused
    /// (close the connection; front-ends retry on another). The first request of a connection is
    /// served even while draining: the connection was accepted, so its client is owed an answer
    /// (a reload or a worker recycling drops no request).
    public func beginRequest() -> Bool {
        state.withLock { state in
            guard !state.draining || state.startedRequests == 0 else { return false }
            state.activeRequests += 1
            state.startedRequests += 1
            return true
        }
    }

    /// A request has finished; `true` when the connection should now close (the server drains).
    @discardableResult
    public func endRequest() -> Bool {
        state.withLock { state in
            state.activeRequests -= 1
            return state.draining && state.activeRequests == 0
        }
    }

    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Starts draining: closes the connection now if idle, else after its last response. A
    /// connection that has not sent its first request yet gets
    /// ``GatewayLimits/drainGraceSeconds`` to do so.
    public func drain() {
        let (idle, fresh) = state.withLock { state in
            state.draining = true
            return (state.activeRequests == 0, state.startedRequests == 0)
        }
        guard idle, let channel else { return }
        guard fresh else {
            // Idle after a request: end its input, so that its task leaves its read loop and
            // closes the connection itself, after what it has written. A close from here could
            // overtake a response still on its way through the channel's async writer (its
            // client got an empty reply: a worker that stops as it answers).
            channel.close(mode: .input).whenFailure { _ in channel.close(promise: nil) }
            return
        }
        let grace = TimeAmount.milliseconds(Int64(configuration.limits.drainGraceSeconds * 1000))
        channel.eventLoop.scheduleTask(in: grace) { [self] in
            let stillFresh = state.withLock { $0.activeRequests == 0 && $0.startedRequests == 0 }
            if stillFresh { channel.close(promise: nil) }
        }
    }

    /// Closes the connection.
    public func close() {
        channel?.close(promise: nil)
    }

    /// The peer's IP address as text (`REMOTE_ADDR`), or `nil` on a unix socket.
    public var remotePort: Int? { remoteAddress?.port }
    public var localPort: Int? { localAddress?.port }
}
