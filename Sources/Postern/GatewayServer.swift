import Logging
import NIOCore
import NIOPosix
import PosternCore
import PosternFastCGI
import PosternHTTP
import PosternSCGI
import PosternUWSGI
import ServiceLifecycle
import Synchronization

/// The server runtime: opens every listener, serves each connection in its own task with the
/// protocol's ``ProtocolServer``, and on graceful shutdown stops accepting, closes idle
/// connections and lets in-flight requests finish.
public final class GatewayServer: Service, Sendable {
    public let listeners: [ListenerSpec]
    public let configuration: GatewayConfiguration
    private let group: any EventLoopGroup
    private let connections = ConnectionRegistry()
    private let boundAddresses = Mutex<[SocketAddress?]>([])
    private let onReady: (@Sendable ([SocketAddress?]) -> Void)?
    private let sharedSockets: Bool

    /// - Parameters:
    ///   - sharedSockets: the `fd:N` listeners are shared with other processes (a worker's):
    ///     accept on them with a ``SharedSocketAcceptor`` instead of swift-nio's server channel.
    ///   - onReady: called once every listener is bound, with their local addresses in
    ///     the order of `listeners` (tests bind port 0 and read the port here).
    public init(
        listeners: [ListenerSpec],
        configuration: GatewayConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        sharedSockets: Bool = false,
        onReady: (@Sendable ([SocketAddress?]) -> Void)? = nil
    ) {
        self.listeners = listeners
        self.configuration = configuration
        self.group = group
        self.sharedSockets = sharedSockets
        self.onReady = onReady
    }

    /// The bound addresses, once ``run()`` has bound them.
    public var localAddresses: [SocketAddress?] { boundAddresses.withLock { $0 } }

    public func run() async throws {
        let logger = configuration.logger
        var bound: [BoundListener] = []
        do {
            for spec in listeners {
                bound.append(try await bind(spec))
                logger.info("listening", metadata: ["protocol": "\(spec.gatewayProtocol)", "address": "\(spec.address)"])
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

    private func bind(_ spec: ListenerSpec) async throws -> BoundListener {
        switch spec.gatewayProtocol {
        case .http:
            return try await bind(spec, server: HTTPProtocolServer(configuration: configuration))
        case .fastcgi:
            return try await bind(spec, server: FastCGIProtocolServer(configuration: configuration))
        case .scgi:
            return try await bind(spec, pipeline: SCGIProtocolServer(configuration: configuration))
        case .uwsgi:
            return try await bind(spec, pipeline: UWSGIProtocolServer(configuration: configuration))
        case .cgi:
            throw ServeError("CGI is a launch mode, not a listener")
        }
    }

    private func bind<Server: ProtocolServer>(_ spec: ListenerSpec, server: Server) async throws -> BoundListener {
        let logger = configuration.logger
        let configuration = self.configuration
        let connections = self.connections
        let allow = spec.allow
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
        if case .tcp = spec.address {
            bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        }
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<Server.Inbound, Server.Outbound>?> = { channel in
            channel.eventLoop.makeCompletedFuture {
                guard allow.allows(channel.remoteAddress) else {
                    logger.warning("connection refused by the allow-list", metadata: ["peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
                    channel.close(promise: nil)
                    return nil
                }
                // First in the pipeline, next to the socket: a close waits for the bytes before it.
                try channel.pipeline.syncOperations.addHandler(FlushBeforeCloseHandler(timeout: .seconds(Int64(max(1, configuration.limits.idleTimeoutSeconds)))))
                return try server.configure(channel)
            }
        }
        let maxConnections = configuration.limits.maxConnections
        let protocolName = "\(spec.gatewayProtocol)"
        let connectionIDs = Atomic<Int>(0)
        // Registers and serves one accepted connection; returns once it has closed.
        let serveConnection: @Sendable (NIOAsyncChannel<Server.Inbound, Server.Outbound>) async -> Void = { connection in
            let id = connectionIDs.add(1, ordering: .relaxed).newValue
            var connectionLogger = logger
            connectionLogger[metadataKey: "protocol"] = "\(protocolName)"
            connectionLogger[metadataKey: "connection"] = "\(id)"
            let context = ConnectionContext(channel: connection.channel, configuration: configuration, logger: connectionLogger)
            guard connections.add(context, limit: maxConnections) else {
                connectionLogger.warning("connection refused: \(maxConnections) connections open (--max-connections)")
                // However the client behaves, the refusal ends within 2 s.
                connection.channel.eventLoop.scheduleTask(in: .seconds(2)) { context.close() }
                await server.refuse(connection, context: context)
                return
            }
            await server.serve(connection, context: context)
            connections.remove(context)
        }
        if sharedSockets, case .fd(let fd) = spec.address {
            return try sharedListener(fd: fd, initializer: initializer, serveConnection: serveConnection)
        }
        let serverChannel: NIOAsyncChannel<NIOAsyncChannel<Server.Inbound, Server.Outbound>?, Never>
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
            guard isListeningSocket(fd) else { throw ServeError("fd \(fd) is not a listening socket") }
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

    /// A listener whose connections are served in their pipelines (``PipelineProtocolServer``):
    /// no task per connection. Each connection is registered (or refused over
    /// `--max-connections`) as it is accepted and unregistered when its channel closes; `run`
    /// returns once the listener is closed and its last connection has closed.
    private func bind<Server: PipelineProtocolServer>(_ spec: ListenerSpec, pipeline server: Server) async throws -> BoundListener {
        let logger = configuration.logger
        let configuration = self.configuration
        let connections = self.connections
        let allow = spec.allow
        let maxConnections = configuration.limits.maxConnections
        let protocolName = "\(spec.gatewayProtocol)"
        let connectionIDs = Atomic<Int>(0)
        let open = OpenChannels()
        let isTCP: Bool
        if case .tcp = spec.address { isTCP = true } else { isTCP = false }
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                guard allow.allows(channel.remoteAddress) else {
                    logger.warning("connection refused by the allow-list", metadata: ["peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
                    channel.close(promise: nil)
                    return
                }
                if isTCP { try channel.syncOptions?.setOption(.tcpOption(.tcp_nodelay), value: 1) }
                // First in the pipeline, next to the socket: a close waits for the bytes before it.
                try channel.pipeline.syncOperations.addHandler(FlushBeforeCloseHandler(timeout: .seconds(Int64(max(1, configuration.limits.idleTimeoutSeconds)))))
                let id = connectionIDs.add(1, ordering: .relaxed).newValue
                var connectionLogger = logger
                connectionLogger[metadataKey: "protocol"] = "\(protocolName)"
                connectionLogger[metadataKey: "connection"] = "\(id)"
                let context = ConnectionContext(channel: channel, configuration: configuration, logger: connectionLogger)
                open.opened(channel)
                guard connections.add(context, limit: maxConnections) else {
                    connectionLogger.warning("connection refused: \(maxConnections) connections open (--max-connections)")
                    // However the client behaves, the refusal ends within 2 s.
                    channel.eventLoop.scheduleTask(in: .seconds(2)) { context.close() }
                    channel.closeFuture.whenComplete { _ in open.closed(channel) }
                    try server.configure(channel, context: context, refusal: .serviceUnavailable)
                    return
                }
                channel.closeFuture.whenComplete { _ in
                    connections.remove(context)
                    open.closed(channel)
                }
                try server.configure(channel, context: context, refusal: nil)
            }
        }
        if sharedSockets, case .fd(let fd) = spec.address {
            let (group, acceptor) = try startSharedAcceptor(fd: fd)
            return BoundListener(
                localAddress: nil,
                close: { acceptor.stop() },
                run: {
                    // Cancelled (not a graceful shutdown): stop at once, closing every connection.
                    await withTaskCancellationHandler {
                    for await socket in acceptor.connections {
                        do {
                            _ = try await ClientBootstrap(group: group)
                                .channelOption(.allowRemoteHalfClosure, value: false)
                                .channelInitializer(initializer)
                                .withConnectedSocket(NIOBSDSocket.Handle(socket))
                                .get()
                        } catch {
                            logger.warning("cannot serve an accepted connection", metadata: ["error": "\(error)"])
                        }
                    }
                    await open.waitUntilNoneOpen()
                    } onCancel: {
                        acceptor.stop()
                        open.closeAll()
                    }
                }
            )
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer(initializer)
        let channel: any Channel
        switch spec.address {
        case .tcp(let host, let port):
            channel = try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            try UnixSocketFile.prepare(path: path)
            channel = try await UnixSocketFile.bindingPrivately { try await bootstrap.bind(unixDomainSocketPath: path).get() }
            try UnixSocketFile.setMode(path: path, mode: spec.socketMode)
        case .fd(let fd):
            guard isListeningSocket(fd) else { throw ServeError("fd \(fd) is not a listening socket") }
            channel = try await bootstrap.withBoundSocket(NIOBSDSocket.Handle(fd)).get()
        }
        return BoundListener(
            localAddress: channel.localAddress,
            close: {
                channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in
                    channel.eventLoop.scheduleTask(in: .milliseconds(200)) { channel.close(promise: nil) }
                }
            },
            run: {
                // Cancelled (not a graceful shutdown): stop at once, closing every connection.
                await withTaskCancellationHandler {
                    try? await channel.closeFuture.get()
                    await open.waitUntilNoneOpen()
                } onCancel: {
                    channel.close(promise: nil)
                    open.closeAll()
                }
            }
        )
    }

    /// Starts the accept thread on a listening socket inherited from the worker master.
    private func startSharedAcceptor(fd: Int32) throws -> (MultiThreadedEventLoopGroup, SharedSocketAcceptor) {
        guard isListeningSocket(fd) else { throw ServeError("fd \(fd) is not a listening socket") }
        guard let group = group as? MultiThreadedEventLoopGroup else {
            throw ServeError("shared listening sockets need a MultiThreadedEventLoopGroup")
        }
        let acceptor = try SharedSocketAcceptor(listeningSocket: fd, logger: configuration.logger)
        acceptor.start()
        return (group, acceptor)
    }

    /// A listening socket shared with other workers: a thread of its own accepts (see
    /// ``SharedSocketAcceptor``) and each accepted socket becomes a channel here. Closing stops
    /// the thread and closes this process's copy of the socket, never the socket itself: queued
    /// connections stay in the backlog for the other workers.
    private func sharedListener<Inbound: Sendable, Outbound: Sendable>(
        fd: Int32,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<Inbound, Outbound>?>,
        serveConnection: @escaping @Sendable (NIOAsyncChannel<Inbound, Outbound>) async -> Void
    ) throws -> BoundListener {
        let logger = configuration.logger
        let (group, acceptor) = try startSharedAcceptor(fd: fd)
        return BoundListener(
            localAddress: nil,
            close: { acceptor.stop() },
            run: {
                await withDiscardingTaskGroup { tasks in
                    for await socket in acceptor.connections {
                        tasks.addTask {
                            let connection: NIOAsyncChannel<Inbound, Outbound>?
                            do {
                                connection = try await ClientBootstrap(group: group)
                                    .channelOption(.allowRemoteHalfClosure, value: false)
                                    .withConnectedSocket(NIOBSDSocket.Handle(socket), channelInitializer: initializer)
                            } catch {
                                logger.warning("cannot serve an accepted connection", metadata: ["error": "\(error)"])
                                return
                            }
                            guard let connection else { return }
                            await serveConnection(connection)
                        }
                    }
                }
            }
        )
    }
}

/// A server that cannot start as configured.
public struct ServeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The open connections, so that a graceful shutdown can drain them.
final class ConnectionRegistry: Sendable {
    private let state = Mutex<(draining: Bool, open: [ObjectIdentifier: ConnectionContext])>((false, [:]))

    func add(_ context: ConnectionContext, limit: Int) -> Bool {
        let (ok, draining) = state.withLock { state -> (Bool, Bool) in
            guard state.open.count < limit else { return (false, false) }
            state.open[ObjectIdentifier(context)] = context
            return (true, state.draining)
        }
        if ok && draining { context.drain() }
        return ok
    }

    func remove(_ context: ConnectionContext) {
        _ = state.withLock { $0.open.removeValue(forKey: ObjectIdentifier(context)) }
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
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func opened(_ channel: any Channel) {
        state.withLock { $0.open[ObjectIdentifier(channel)] = channel }
    }

    func closed(_ channel: any Channel) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open.removeValue(forKey: ObjectIdentifier(channel))
            guard state.open.isEmpty else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func closeAll() {
        for channel in state.withLock({ Array($0.open.values) }) { channel.close(promise: nil) }
    }

    func waitUntilNoneOpen() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.open.isEmpty { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
