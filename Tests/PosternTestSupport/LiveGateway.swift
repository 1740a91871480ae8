import Logging
import NIOCore
import Postern
import PosternCore

/// Runs a ``GatewayServer`` for the length of a test: binds the listeners (port 0 for TCP),
/// hands their addresses to `body`, then cancels the server and waits until it has stopped,
/// whether `body` returned or threw.
public func withLiveGateway<T: Sendable>(
    _ listeners: [ListenerSpec],
    application: any Application,
    limits: GatewayLimits = GatewayLimits(),
    logger: Logger = Logger(label: "test"),
    _ body: ([SocketAddress]) async throws -> T
) async throws -> T {
    let configuration = GatewayConfiguration(application: application, limits: limits, logger: logger)
    let (ready, continuation) = AsyncStream<[SocketAddress?]>.makeStream()
    let server = GatewayServer(listeners: listeners, configuration: configuration) { addresses in
        continuation.yield(addresses)
        continuation.finish()
    }
    let task = Task {
        defer { continuation.finish() }
        try await server.run()
    }
    var iterator = ready.makeAsyncIterator()
    guard let bound = await iterator.next() else {
        try await task.value  // bind failed: rethrow its error
        throw TestFailure("the gateway stopped before it was ready")
    }
    let addresses = bound.compactMap { $0 }
    do {
        let result = try await body(addresses)
        task.cancel()
        _ = await task.result
        return result
    } catch {
        task.cancel()
        _ = await task.result
        throw error
    }
}

/// A loopback TCP listener on an ephemeral port.
public func loopback(_ gatewayProtocol: GatewayProtocol) -> ListenerSpec {
    ListenerSpec(gatewayProtocol, .tcp(host: "127.0.0.1", port: 0))
}

/// A failure a helper reports to the test.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
