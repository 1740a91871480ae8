import Foundation
import NIOCore
import NIOPosix
import Postern
import PosternApps
import PosternCore
import PosternEngine
import PosternTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A server task cancelled while connections keep arriving stops cleanly and soon: connections
/// accepted but not yet served used to be dropped with their `NIOAsyncChannel` unfinished, which
/// traps the whole process ("Deinited NIOAsyncWriter without calling finish()"; a trap here ends
/// the test process, so the test fails by crashing), and a connection closed before it was
/// active kept the server for the 60 s idle timeout (`FlushBeforeCloseHandler`).
@Suite("Runtime: cancellation while connections arrive")
struct CancellationTests {
    @Test("cancel the server task during a burst of connections, five times", arguments: [ListenerProtocol.http, .fastcgi, .scgi, .uwsgi])
    func cancelDuringConnectionBurst(_ listenerProtocol: ListenerProtocol) async throws {
        for round in 0..<5 {
            let configuration = GatewayConfiguration(application: Hello())
            let (ready, continuation) = AsyncStream<[SocketAddress?]>.makeStream()
            let server = GatewayServer(listeners: [loopback(listenerProtocol)], configuration: configuration) { addresses in
                continuation.yield(addresses)
                continuation.finish()
            }
            let task = Task { try await server.run() }
            var iterator = ready.makeAsyncIterator()
            guard let addresses = await iterator.next() else { throw TestFailure("the server did not start") }
            let ports = addresses.compactMap { $0?.port }
            #expect(ports.count == 1)
            // A thread of its own opens connections as fast as it can until told to stop.
            let stop = ManagedAtomicFlag()
            let opened = Thread.detachNewThreadCounted(ports: ports, stop: stop)
            try await Task.sleep(for: .milliseconds(30 + 10 * round))
            task.cancel()
            let cancelled = ContinuousClock.now
            let result = await task.result
            let stopping = ContinuousClock.now - cancelled
            print("\(listenerProtocol) round \(round): stopped \(stopping) after the cancellation")
            // Idle and half-made connections close at once: not after the 60 s idle timeout.
            #expect(stopping < .seconds(10), "round \(round): the server took \(stopping) to stop")
            stop.set()
            if case .failure(let error) = result { Issue.record("round \(round): the server failed: \(error)") }
            #expect(opened.value() > 0, "round \(round): no connection was made")
        }
    }
}

/// A flag a test sets from async code and a thread reads.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() {
        lock.lock()
        flag = true
        lock.unlock()
    }
    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return flag
    }
}

/// A counter written by one thread and read when it is done.
final class ConnectionCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() {
        lock.lock()
        count += 1
        lock.unlock()
    }
    func value() -> Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}

extension Thread {
    /// Opens and closes connections to the ports in turn until `stop` is set.
    static func detachNewThreadCounted(ports: [Int], stop: ManagedAtomicFlag) -> ConnectionCount {
        let count = ConnectionCount()
        Thread.detachNewThread {
            var index = 0
            while !stop.isSet {
                if let fd = try? BlockingClient.connectTCP(port: ports[index % ports.count]) {
                    count.add()
                    close(fd)
                }
                index += 1
            }
        }
        return count
    }
}
