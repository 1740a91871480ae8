import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PosternCore
import PosternEngine
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The server runtime: opens every listener, serves each connection with its protocol's
/// ``ProtocolServer``, and on graceful shutdown stops accepting, closes idle
/// connections and lets in-flight requests finish.
public final class GatewayServer: Service, Sendable {
    public let listeners: [ListenerSpec]
    public let configuration: GatewayConfiguration
    private let protocols: ProtocolServers
    private let group: any EventLoopGroup
    private let connections = ConnectionRegistry()
    private let boundAddresses = Mutex<[SocketAddress?]>([])
    private let onReady: (@Sendable ([SocketAddress?]) -> Void)?
    private let sharedSockets: Bool
    private let acceptThreads: Int?
    private let stalled: (@Sendable () -> Bool)?
    private let tls: NIOSSLContext?
    /// The suwsgi listeners' context: `tls`, closing as soon as its close_notify is written
    /// (``TLSSettings/closingAtOnce(_:)``).
    private let oneRequestTLS: NIOSSLContext?

    /// - Parameters:
    ///   - protocols: the server each listener's protocol gets (the entry point's switch over
    ///     protocols; ``ProtocolServers/standard``).
    ///   - sharedSockets: the `fd:N` listeners are shared with other processes (a worker's):
    ///     HTTP accepts on them with a ``ConnectionAcceptor`` too, instead of swift-nio's server
    ///     channel, and stopping closes only this process's copy.
    ///   - acceptThreads: accept threads per listener (default: the core count, or
    ///     `POSTERN_ACCEPT_THREADS`, which wins over both).
    ///   - stalled: a worker's blocked-event-loop test; its accept threads pause while it holds
    ///     (``ConnectionAcceptor``).
    ///   - onReady: called once every listener is bound, with their local addresses in
    ///     the order of `listeners` (tests bind port 0 and read the port here).
    ///   - tls: what the TLS listeners (`https`, `suwsgi`, `fastcgi-tls`) serve with
    ///     (``TLSSettings/makeContext()``); a TLS listener without it cannot be opened.
    public init(
        listeners: [ListenerSpec],
        configuration: GatewayConfiguration,
        protocols: ProtocolServers,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        sharedSockets: Bool = false,
        acceptThreads: Int? = nil,
        onReady: (@Sendable ([SocketAddress?]) -> Void)? = nil,
        stalled: (@Sendable () -> Bool)? = nil,
        tls: NIOSSLContext? = nil
    ) {
        self.stalled = stalled
        self.tls = tls
        self.oneRequestTLS =
            listeners.contains { $0.listenerProtocol == .suwsgi } ? tls.map { TLSSettings.closingAtOnce($0) ?? $0 } : tls
        self.listeners = listeners
        self.configuration = configuration
        self.protocols = protocols
        self.group = group
        self.sharedSockets = sharedSockets
        self.acceptThreads = acceptThreads
        self.onReady = onReady
    }

    /// The bound addresses, once ``run()`` has bound them.
    public var localAddresses: [SocketAddress?] { boundAddresses.withLock { $0 } }

    public func run() async throws {
        let logger = configuration.logger
        var bound: [BoundListener] = []
        do {
            for spec in listeners {
                do {
                    bound.append(try await bind(spec))
                } catch {
                    throw spec.failure(error)
                }
                var metadata: Logger.Metadata = ["protocol": "\(spec.listenerProtocol)", "address": "\(spec.address)"]
                if case .fd = spec.address, let local = bound.last?.localAddress {
                    // A socket opened before (by the process at start, a master, systemd): its address.
                    metadata["address"] = "\(local.listenerText)"
                }
                logger.info("listening", metadata: metadata)
            }
        } catch {
            for listener in bound { listener.close() }
            throw error
        }
        let addresses = bound.map(\.localAddress)
        boundAddresses.withLock { $0 = addresses }
        onReady?(addresses)

        let connections = self.connections
        let listeners = bound
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for listener in listeners {
                    group.addTask { await listener.run() }
                }
            }
        } onGracefulShutdown: {
            logger.info("graceful shutdown: no new connections; in-flight requests finish")
            for listener in listeners { listener.close() }
            connections.drainAll()
        }
        for spec in self.listeners {
            if case .unix(let path) = spec.address { try? UnixSocketFile.remove(path: path) }
        }
        logger.info("stopped")
    }

    // MARK: Binding

    struct BoundListener: Sendable {
        let localAddress: SocketAddress?
        let close: @Sendable () -> Void
        let run: @Sendable () async -> Void
    }

    /// Two bind paths, one admission path for all. A protocol with a fast path (FastCGI, SCGI,
    /// uwsgi) listens through a ``ConnectionAcceptor`` whose fast path serves one-request
    /// connections on its own threads and hands every other connection to its protocol server;
    /// one without (HTTP, whose common case is keep-alive) listens through an acceptor with no
    /// fast path on a socket it was given (`fd:N`: a worker's, a single process's, systemd's),
    /// and on a SwiftNIO server channel on an address it binds itself (the status page, an
    /// embedder's ``Gateway/serve``). A TLS listener is the latter kind whatever its protocol
    /// (its bytes are the TLS handler's before they are the protocol's): its connections get the
    /// TLS handler first. Only the acceptor serves what waits in the backlog when it stops
    /// (``ConnectionAcceptor/stop()``), which a member of a balancer needs.
    private func bind(_ spec: ListenerSpec) async throws -> BoundListener {
        if spec.listenerProtocol.isTLS && tls == nil { throw TLSError.noCertificateGiven(listener: spec.option) }
        return try await bind(spec, server: protocols.server(spec.listenerProtocol, configuration))
    }

    private func bind<Server: ProtocolServer>(_ spec: ListenerSpec, server: Server) async throws -> BoundListener {
        let givenDescriptor: Bool
        if case .fd = spec.address { givenDescriptor = true } else { givenDescriptor = false }
        let isTLS = spec.listenerProtocol.isTLS
        if (isTLS || server.fastPath == nil) && !givenDescriptor {
            return try await bindServerChannel(spec, server: server)
        }
        return try bind(spec, server: server, through: try openAcceptor(spec, codec: isTLS ? nil : server.fastPath))
    }

    /// A listener's acceptor, its address, and the channels it has open.
    struct Acceptor {
        let acceptor: ConnectionAcceptor
        let localAddress: SocketAddress?
        let open: OpenChannels
        let group: MultiThreadedEventLoopGroup
    }

    /// Opens the listening socket (or takes `fd:N`) and starts its accept threads.
    private func openAcceptor(_ spec: ListenerSpec, codec: (any WholeRequestCodec)?) throws -> Acceptor {
        guard let group = group as? MultiThreadedEventLoopGroup else {
            throw SocketError.needsMultiThreadedEventLoopGroup
        }
        let fd: CInt
        if case .fd(let given) = spec.address {
            guard isListeningSocket(given) else { throw SocketError.notListening(fd: given) }
            fd = given
        } else {
            fd = try ListeningSocket.open(spec)
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // a CGI script started meanwhile must not inherit it
        if codec != nil { ListeningSocket.deferAccept(fd) }
        let open = OpenChannels()
        var logger = configuration.logger
        logger[metadataKey: "protocol"] = "\(spec.listenerProtocol)"
        let cycle = codec.map {
            WholeRequestCycle(
                codec: $0, configuration: configuration, connections: connections, allow: spec.allow, group: group, open: open,
                logger: logger)
        }
        let threads = getenv("POSTERN_ACCEPT_THREADS").flatMap { Int(String(cString: $0)) } ?? acceptThreads ?? System.coreCount
        let acceptor = try ConnectionAcceptor(
            listeningSocket: fd, threads: threads, cycle: cycle, stalled: sharedSockets ? stalled : nil, logger: logger)
        let localAddress = sharedSockets ? nil : SocketAddress.local(of: fd)
        acceptor.start()
        return Acceptor(acceptor: acceptor, localAddress: localAddress, open: open, group: group)
    }

    /// What every connection goes through when its channel is made: the allow-list, the
    /// flush-before-close handler, on a TLS listener the TLS handler (and
    /// ``TLSHandshakeRecorder``), then `--max-connections` (turned away the protocol's way,
    /// without a task, inside TLS on a TLS listener), then the protocol's `setup`. A connection
    /// served in its pipeline is counted in `open` (a stop closes it) and unregistered when its
    /// channel closes; any other is unregistered when its `handle` returns.
    private func admission<Server: ProtocolServer>(_ spec: ListenerSpec, server: Server, open: OpenChannels?) -> (
        admit: @Sendable (any Channel) throws -> Admitted<Server.Connection>?,
        serve: @Sendable (Admitted<Server.Connection>) async -> Void
    ) {
        let logger = configuration.logger
        let configuration = self.configuration
        let connections = self.connections
        let allow = spec.allow
        let register = self.registration(spec)
        let tls = spec.listenerProtocol == .suwsgi ? oneRequestTLS : spec.listenerProtocol.isTLS ? self.tls : nil
        let handshakeFailures = ResourceWarning()
        let admit: @Sendable (any Channel) throws -> Admitted<Server.Connection>? = { channel in
            guard Self.admits(channel, allow, logger) else { return nil }
            // Next to the socket: a close waits for the bytes before it (a TLS session's last
            // records and close_notify among them).
            try channel.pipeline.syncOperations.addHandler(
                FlushBeforeCloseHandler(timeout: .seconds(Int64(max(1, configuration.limits.idleTimeoutSeconds)))))
            var security: TransportSecurity?
            if let tls {
                security = try TLSHandshakeRecorder.addTLSHandlers(
                    to: channel.pipeline, context: tls, failures: handshakeFailures, logger: logger, observer: configuration.observer,
                    recordsCipher: spec.listenerProtocol == .https, corked: spec.listenerProtocol == .suwsgi)
            }
            if Server.servesInPipeline {
                // Uncounted when it closes, whatever fails below (a failed initializer closes it).
                open?.opened(channel)
                channel.closeFuture.whenComplete { _ in open?.closed(channel) }
                guard let context = try register(channel, server, security) else { return nil }
                channel.closeFuture.whenComplete { _ in connections.remove(context) }
                return Admitted(connection: try server.setup(channel, context: context), context: context, closed: channel.closeFuture)
            }
            guard let context = try register(channel, server, security) else { return nil }
            do {
                return Admitted(connection: try server.setup(channel, context: context), context: context)
            } catch {
                connections.remove(context)
                throw error
            }
        }
        let serve: @Sendable (Admitted<Server.Connection>) async -> Void = { admitted in
            // A connection served in its pipeline (on a server channel: a TLS listener, HTTP)
            // is unregistered when it closes; its task waits for that, so that a stop waits for
            // its response as for any other.
            if let closed = admitted.closed {
                try? await closed.get()
                return
            }
            await server.handle(admitted.connection, context: admitted.context)
            connections.remove(admitted.context)
        }
        return (admit, serve)
    }

    /// `--max-connections` for a new channel of `spec`'s listener: its ``ConnectionContext``,
    /// registered, or `nil` when the limit is reached and the channel has been handed to a
    /// ``BusyRefusalHandler`` (answered the protocol's way at once, closed within 2 s; no
    /// decoder, no task, a few bytes). Refusals are logged once a second, not once each.
    private func registration(_ spec: ListenerSpec) -> @Sendable (any Channel, any BusyRefusal, TransportSecurity?) throws -> ConnectionContext? {
        let logger = configuration.logger
        let configuration = self.configuration
        let connections = self.connections
        let maxConnections = configuration.limits.maxConnections
        let protocolName = "\(spec.listenerProtocol)"
        let connectionIDs = Atomic<Int>(0)
        let refusals = ResourceWarning()
        return { channel, refusal, security in
            let id = connectionIDs.add(1, ordering: .relaxed).newValue
            var connectionLogger = logger
            connectionLogger[metadataKey: "protocol"] = "\(protocolName)"
            connectionLogger[metadataKey: "connection"] = "\(id)"
            let context = ConnectionContext(channel: channel, configuration: configuration, logger: connectionLogger, transportSecurity: security)
            guard connections.add(context, limit: maxConnections) else {
                configuration.observer?.connectionRefused()
                if refusals.isDue() {
                    logger.warning(
                        "turning connections away: \(maxConnections) open (--max-connections); each is told the server is busy",
                        metadata: ["protocol": "\(protocolName)"])
                }
                try channel.pipeline.syncOperations.addHandler(BusyRefusalHandler(refusal))
                return nil
            }
            return context
        }
    }

    /// A listener on a SwiftNIO server channel (HTTP, a TLS listener): a task per connection, which
    /// serves it (FastCGI over TLS) or waits for its pipeline to close.
    private func bindServerChannel<Server: ProtocolServer>(_ spec: ListenerSpec, server: Server) async throws -> BoundListener {
        let logger = configuration.logger
        let connections = self.connections
        let (admit, serveConnection) = admission(spec, server: server, open: nil)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Admitted<Server.Connection>?> = { channel in
            channel.eventLoop.makeCompletedFuture { try admit(channel) }
        }
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptErrorLogger(logger: logger)) }
            }
        if case .tcp = spec.address {
            bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        }
        let serverChannel: NIOAsyncChannel<Admitted<Server.Connection>?, Never>
        switch spec.address {
        case .tcp(let host, let port):
            serverChannel = try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
        case .unix(let path):
            try UnixSocketFile.prepare(path: path)
            serverChannel = try await UnixSocketFile.bindingPrivately {
                try await bootstrap.bind(unixDomainSocketPath: path, childChannelInitializer: initializer)
            }
            try UnixSocketFile.setMode(path: path, mode: spec.socketMode)
        case .fd(let fd):
            guard isListeningSocket(fd) else { throw SocketError.notListening(fd: fd) }
            serverChannel = try await bootstrap.bind(NIOBSDSocket.Handle(fd), childChannelInitializer: initializer)
        }
        let channel = serverChannel.channel
        // Stop accepting first, then close once the connections already accepted have reached
        // the serving loop: closing at once would drop them half-made (their clients would see
        // a reset, and a dropped NIOAsyncChannel traps the process).
        let closeListener: @Sendable () -> Void = {
            channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in
                channel.eventLoop.scheduleTask(in: .milliseconds(200)) { channel.close(promise: nil) }
            }
        }
        return BoundListener(
            localAddress: channel.localAddress,
            close: closeListener,
            run: {
                // The accept loop must not see a cancellation itself: connections already accepted
                // wait in its stream, and an NIOAsyncChannel dropped unserved traps the process
                // ("Deinited NIOAsyncWriter without calling finish()"). Cancelled, the listener
                // stops accepting and closes, the loop serves what was accepted, and every
                // connection drains (idle ones close at once, busy ones after their response).
                let acceptLoop = Task {
                    do {
                        try await serverChannel.executeThenClose { inbound in
                            try await withThrowingDiscardingTaskGroup { group in
                                for try await connection in inbound {
                                    guard let connection else { continue }
                                    group.addTask { await serveConnection(connection) }
                                }
                            }
                        }
                    } catch {
                        logger.error("listener failed", metadata: ["error": "\(error)"])
                    }
                }
                await withTaskCancellationHandler {
                    await acceptLoop.value
                } onCancel: {
                    closeListener()
                    connections.drainAll()
                }
            }
        )
    }

    /// A listener whose accept threads hand connections to its protocol server, each with the
    /// bytes the fast path already read. A protocol served in its pipeline (SCGI, uwsgi,
    /// FastCGI; HTTP on a shared socket) gets no task per connection: its channel is made here
    /// and the pipeline does the rest; a protocol with a connection type of its own is served in
    /// a task per connection. `run` returns once the acceptor has stopped and its last
    /// connection has closed.
    private func bind<Server: ProtocolServer>(_ spec: ListenerSpec, server: Server, through listener: Acceptor) throws -> BoundListener {
        let logger = configuration.logger
        let connections = self.connections
        let open = listener.open
        let (admit, serveConnection) = admission(spec, server: server, open: Server.servesInPipeline ? open : nil)
        let isTCP = spec.isTCP
        let initializer: @Sendable (any Channel, ConnectionAcceptor.AcceptedConnection) -> EventLoopFuture<Admitted<Server.Connection>?> = {
            channel, accepted in
            channel.eventLoop.makeCompletedFuture {
                try Self.prepareAccepted(channel, accepted, isTCP: isTCP)
                return try admit(channel)
            }
        }
        let acceptor = listener.acceptor
        let group = listener.group
        // A protocol served in its pipeline needs no task: the accept thread makes the channel,
        // counted in `open` until it is registered (its initializer counts it then), so a stop
        // waits for it.
        let makeChannel: @Sendable (ConnectionAcceptor.AcceptedConnection) -> Void = { accepted in
            // Cancelled (`open.closeAll()`): the connections still arriving are closed, as they
            // were once the accepted stream had ended.
            guard open.reserveUnlessClosing() else {
                close(accepted.socket)
                return
            }
            ClientBootstrap.forAcceptedSocket(group: group)
                .channelInitializer { initializer($0, accepted).map { _ in } }
                .withConnectedSocket(NIOBSDSocket.Handle(accepted.socket))
                .whenComplete { result in
                    if case .failure(let error) = result {
                        logger.warning("cannot serve an accepted connection", metadata: ["error": "\(error)"])
                    }
                    open.unreserve()
                }
        }
        if Server.servesInPipeline { acceptor.handOver(to: makeChannel) }
        return BoundListener(
            localAddress: listener.localAddress,
            close: { acceptor.stop() },
            run: {
                // Cancelled (not a graceful shutdown): stop at once, closing every connection.
                await withTaskCancellationHandler {
                    await withDiscardingTaskGroup { tasks in
                        for await accepted in acceptor.accepted {
                            // Accepted before the hand-over above was in place.
                            if Server.servesInPipeline {
                                makeChannel(accepted)
                                continue
                            }
                            tasks.addTask {
                                let connection: Admitted<Server.Connection>?
                                do {
                                    connection = try await ClientBootstrap.forAcceptedSocket(group: group)
                                        .withConnectedSocket(NIOBSDSocket.Handle(accepted.socket)) { initializer($0, accepted) }
                                } catch {
                                    logger.warning("cannot serve an accepted connection", metadata: ["error": "\(error)"])
                                    return
                                }
                                guard let connection else { return }
                                await serveConnection(connection)
                            }
                        }
                    }
                    await open.waitUntilNoneOpen()
                } onCancel: {
                    acceptor.stop()
                    open.closeAll()
                    if !Server.servesInPipeline { connections.drainAll() }
                }
            }
        )
    }

    /// Whether the allow-list lets the channel's peer in; a refused channel is closed and logged.
    private static func admits(_ channel: any Channel, _ allow: AllowList, _ logger: Logger) -> Bool {
        guard allow.admits(channel.remoteAddress, logger: logger) else {
            // Closed once registered: a channel made from an accepted socket must still be open
            // when its initializer returns (swift-nio asserts it in registerAlreadyConfigured0).
            channel.eventLoop.execute { channel.close(promise: nil) }
            return false
        }
        return true
    }

    /// A handed-over socket's channel gets the bytes the fast path already read, if any (first
    /// in its pipeline), and, on TCP, no Nagle delay.
    private static func prepareAccepted(_ channel: any Channel, _ accepted: ConnectionAcceptor.AcceptedConnection, isTCP: Bool) throws {
        if isTCP { try channel.syncOptions?.setOption(.tcpOption(.tcp_nodelay), value: 1) }
        guard accepted.prefetched.readableBytes > 0 else { return }
        try channel.pipeline.syncOperations.addHandler(PrefetchedBytesHandler(accepted.prefetched), position: .first)
    }
}

/// A connection through admission: what its protocol's `setup` made, and its registered context.
struct Admitted<Connection: Sendable>: Sendable {
    let connection: Connection
    let context: ConnectionContext
    /// A connection served in its pipeline: its channel's close.
    var closed: EventLoopFuture<Void>? = nil
}

/// The open connections, so that a graceful shutdown can drain them, and `--max-connections`
/// counts them all.
final class ConnectionRegistry: Sendable {
    private struct State {
        var draining = false
        var open: [ObjectIdentifier: ConnectionContext] = [:]
        /// Fast-path connections (``WholeRequestCycle``): busy from accept to close, so there is
        /// nothing to drain in them, only a slot to count.
        var busy = 0
        var count: Int { open.count + busy }
    }
    private let state = Mutex(State())

    func add(_ context: ConnectionContext, limit: Int) -> Bool {
        let (ok, draining) = state.withLock { state -> (Bool, Bool) in
            guard state.count < limit else { return (false, false) }
            state.open[ObjectIdentifier(context)] = context
            return (true, state.draining)
        }
        if ok && draining { context.drain() }
        return ok
    }

    func remove(_ context: ConnectionContext) {
        _ = state.withLock { $0.open.removeValue(forKey: ObjectIdentifier(context)) }
    }

    /// Takes a slot for a fast-path connection; `false` over `limit`.
    func addBusy(limit: Int) -> Bool {
        state.withLock { state in
            guard state.count < limit else { return false }
            state.busy += 1
            return true
        }
    }

    func removeBusy() {
        state.withLock { $0.busy -= 1 }
    }

    func drainAll() {
        let open = state.withLock { state in
            state.draining = true
            return Array(state.open.values)
        }
        for context in open { context.drain() }
    }
}

/// The open connections of one pipeline listener, so that its `run` can wait for the last one
/// after the listener closes (a graceful shutdown lets in-flight requests finish), or close them
/// all when cancelled.
final class OpenChannels: Sendable {
    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        /// Channels on their way (a fast-path response being handed over): counted as open.
        var reserved = 0
        /// Fast-path requests whose application waits without a channel (``PeerWatch``): counted
        /// as open; ``closeAll()`` cancels them.
        var waiting: [Int: @Sendable () -> Void] = [:]
        var nextWaiting = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Set by ``closeAll()``: what opens from then on is closed at once.
        var closing = false
        var isIdle: Bool { open.isEmpty && reserved == 0 && waiting.isEmpty }
    }
    private let state = Mutex(State())

    /// Counts `channel` until ``closed(_:)``; after ``closeAll()`` it is closed as soon as it is
    /// registered (called from a channel initializer, where swift-nio wants it still open).
    func opened(_ channel: any Channel) {
        let closing = state.withLock { state in
            state.open[ObjectIdentifier(channel)] = channel
            return state.closing
        }
        if closing { channel.eventLoop.execute { channel.close(promise: nil) } }
    }

    func closed(_ channel: any Channel) {
        update { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// A channel is about to be made: wait for it too.
    func reserve() {
        state.withLock { $0.reserved += 1 }
    }

    /// ``reserve()``, unless ``closeAll()`` was called: then `false`, and no channel is to be made.
    func reserveUnlessClosing() -> Bool {
        state.withLock { state in
            guard !state.closing else { return false }
            state.reserved += 1
            return true
        }
    }

    /// The reserved channel is open (or could not be made).
    func unreserve() {
        update { $0.reserved -= 1 }
    }

    private func update(_ change: (inout State) -> Void) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            change(&state)
            guard state.isIdle else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// A fast-path request's application waits (see ``WholeRequestCycle``); `cancel` cancels it.
    func startWaiting(cancel: @escaping @Sendable () -> Void) -> Int {
        state.withLock { state in
            defer { state.nextWaiting += 1 }
            state.waiting[state.nextWaiting] = cancel
            return state.nextWaiting
        }
    }

    /// Its response is out and its connection closed (or handed to a channel, counted on its own).
    func endWaiting(_ id: Int) {
        update { _ = $0.waiting.removeValue(forKey: id) }
    }

    /// Closes every channel and cancels every waiting request, now and from now on.
    func closeAll() {
        let (channels, waiting) = state.withLock { state in
            state.closing = true
            return (Array(state.open.values), Array(state.waiting.values))
        }
        for channel in channels { channel.close(promise: nil) }
        for cancel in waiting { cancel() }
    }

    func waitUntilNoneOpen() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.isIdle { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
