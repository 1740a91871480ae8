import Logging
import NIOCore
import PosternCore
import Synchronization

/// One accepted connection as the runtime sees it: who is on the other end, the configuration,
/// and whether the server is draining (graceful shutdown).
///
/// A protocol server calls ``beginRequest()`` when a request head is complete and
/// ``endRequest()`` when its response is written; between requests the connection is idle. A
/// draining server closes a busy connection after its response, and gives an idle one a grace
/// for the request its client may be sending (``drain()``).
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
        /// Draining began between two requests: the next one, if it comes within the grace, is
        /// still served (and the connection closed after it).
        var oneMore = false
        /// That grace has been given (once per connection).
        var graceGiven = false
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
            guard !state.draining || state.startedRequests == 0 || state.oneMore else { return false }
            state.oneMore = false
            state.activeRequests += 1
            state.startedRequests += 1
            return true
        }
    }

    /// A request has finished; `true` when the connection should now close (the server drains).
    ///
    /// - Parameter keptAlive: its response told the client the connection stays open (an HTTP
    ///   response without `Connection: close`, written before draining began): the client may
    ///   send its next request at once, so the connection gets the grace ``drain()`` gives an
    ///   idle one instead of a close that would reset that request.
    @discardableResult
    public func endRequest(keptAlive: Bool = false) -> Bool {
        let (close, started) = state.withLock { state -> (Bool, Int?) in
            state.activeRequests -= 1
            guard state.draining && state.activeRequests == 0 else { return (false, nil) }
            guard keptAlive, !state.graceGiven else { return (true, nil) }
            state.graceGiven = true
            state.oneMore = true
            return (false, state.startedRequests)
        }
        if let started { closeIfStillIdle(after: started) }
        return close
    }

    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Starts draining: closes the connection after its last response if a request runs. An
    /// idle one gets ``GatewayLimits/drainGraceSeconds`` to send its next request (its first,
    /// or, on a kept connection, the one its client may be sending this very moment: under load
    /// a kept connection is idle for microseconds between a response and the next request, and
    /// closing it then resets that request), which is served (over HTTP with `Connection:
    /// close`) before the connection closes; still idle after the grace, it closes.
    public func drain() {
        let (idle, started) = state.withLock { state in
            state.draining = true
            if state.activeRequests == 0 && state.startedRequests > 0 && !state.graceGiven {
                state.graceGiven = true
                state.oneMore = true
            }
            return (state.activeRequests == 0, state.startedRequests)
        }
        guard idle, let channel else { return }
        guard started == 0 else {
            closeIfStillIdle(after: started)
            return
        }
        let grace = TimeAmount.milliseconds(Int64(configuration.limits.drainGraceSeconds * 1000))
        channel.eventLoop.scheduleTask(in: grace) { [self] in
            let stillFresh = state.withLock { $0.activeRequests == 0 && $0.startedRequests == 0 }
            if stillFresh { channel.close(promise: nil) }
        }
    }

    /// After the drain's grace: if no request has started since the `started`-th, the connection's
    /// input ends, so that its handler (or its task's read loop) sees the end and closes the
    /// connection itself, after what it has written (a close from here could overtake a response
    /// a request's task is still writing: its client got an empty reply).
    private func closeIfStillIdle(after started: Int) {
        guard let channel else { return }
        let grace = TimeAmount.milliseconds(Int64(configuration.limits.drainGraceSeconds * 1000))
        channel.eventLoop.scheduleTask(in: grace) { [self] in
            let stillIdle = state.withLock { state -> Bool in
                guard state.activeRequests == 0, state.startedRequests == started else { return false }
                state.oneMore = false
                return true
            }
            if stillIdle { channel.close(mode: .input).whenFailure { _ in channel.close(promise: nil) } }
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
