import Logging
import NIOCore
import Postern
import PosternCore
import PosternEngine

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
    try await withLiveGateway(
        listeners, configuration: GatewayConfiguration(application: application, limits: limits, logger: logger), body)
}

/// ``withLiveGateway(_:application:limits:logger:_:)`` with a whole configuration (`debug`, flags,
/// ...). A server that has not stopped `stopTimeout` seconds after its cancellation is a failure
/// (thrown), not a test process that waits forever.
public func withLiveGateway<T: Sendable>(
    _ listeners: [ListenerSpec],
    configuration: GatewayConfiguration,
    stopTimeout: Double = 30,
    _ body: ([SocketAddress]) async throws -> T
) async throws -> T {
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
    let result: Result<T, any Error>
    do {
        result = .success(try await body(addresses))
    } catch {
        result = .failure(error)
    }
    task.cancel()
    guard await finishes(task, within: stopTimeout) else {
        let thrown = (try? result.get()) == nil ? "; the test had thrown: \(result)" : ""
        throw TestFailure("the gateway had not stopped \(stopTimeout) s after its cancellation (a connection task that never ends?)\(thrown)")
    }
    return try result.get()
}

/// Whether `task` finishes within `seconds`; a task that never does is left behind.
private func finishes(_ task: Task<Void, any Error>, within seconds: Double) async -> Bool {
    let (outcome, continuation) = AsyncStream<Bool>.makeStream()
    let waiter = Task {
        _ = await task.result
        continuation.yield(true)
    }
    let timer = Task {
        try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        continuation.yield(false)
    }
    var iterator = outcome.makeAsyncIterator()
    let finished = await iterator.next() ?? false
    timer.cancel()
    if finished { _ = await waiter.value }
    return finished
}

/// A loopback TCP listener on an ephemeral port.
public func loopback(_ listenerProtocol: ListenerProtocol) -> ListenerSpec {
    ListenerSpec(listenerProtocol, .tcp(host: "127.0.0.1", port: 0))
}

/// A failure a helper reports to the test.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
