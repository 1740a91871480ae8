// A close that reaches FlushBeforeCloseHandler while it flushes, or after its real close, must complete.
import NIOCore
import NIOPosix
import PosternCore
import PosternEngine
import PosternTestSupport
import Testing

extension Hardening {
    @Suite("FlushBeforeCloseHandler: every close promise completes")
    struct FlushBeforeCloseHandlerTests {
        /// A connected client channel with the handler next to its socket, to a peer that never reads.
        static func connect() async throws -> (client: any Channel, server: any Channel) {
            let group = MultiThreadedEventLoopGroup.singleton
            let server = try await ServerBootstrap(group: group)
                .childChannelOption(.autoRead, value: false)
                .bind(host: "127.0.0.1", port: 0).get()
            let client = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(FlushBeforeCloseHandler(timeout: .seconds(1)))
                    }
                }
                .connect(to: server.localAddress!).get()
            return (client, server)
        }

        /// How `promise` ended within 5 s: "ok", "alreadyClosed", "never" or another error.
        static func outcome(_ promise: EventLoopPromise<Void>, on loop: any EventLoop) async -> String {
            loop.scheduleTask(in: .seconds(5)) { promise.fail(TestFailure("never")) }
            do {
                try await promise.futureResult.get()
                return "ok"
            } catch let error as ChannelError where error == .alreadyClosed {
                return "alreadyClosed"
            } catch {
                return "\(error)"
            }
        }

        /// `executeThenClose` closes again (and waits) when its body threw; a connection the server
        /// had already closed (idle or header timeout) must not leave that wait hanging: it did, and
        /// the listener's task group, and so the whole server, never stopped.
        @Test("a close after the real close fails with alreadyClosed instead of never completing")
        func lateClose() async throws {
            let (client, server) = try await Self.connect()
            defer { server.close(promise: nil) }
            let first = client.eventLoop.makePromise(of: Void.self)
            let again = client.eventLoop.makePromise(of: Void.self)
            let late = client.eventLoop.makePromise(of: Void.self)
            // The late close runs while the channel is closed but the handler still in the pipeline.
            first.futureResult.whenComplete { _ in client.close(promise: late) }
            client.eventLoop.execute {
                client.close(promise: first)
                client.close(promise: again)
            }
            #expect(await Self.outcome(first, on: client.eventLoop) == "ok")
            #expect(await Self.outcome(again, on: client.eventLoop) == "alreadyClosed")
            #expect(await Self.outcome(late, on: client.eventLoop) == "alreadyClosed")
        }

        @Test("closes while the flush waits on a peer that reads nothing complete with the real close")
        func closeWhileFlushing() async throws {
            let (client, server) = try await Self.connect()
            defer { server.close(promise: nil) }
            // More than the socket buffers take: the write stays queued, so the flush waits for the timeout.
            client.writeAndFlush(ByteBuffer(repeating: 0x61, count: 64 << 20), promise: nil)
            let first = client.eventLoop.makePromise(of: Void.self)
            let second = client.eventLoop.makePromise(of: Void.self)
            client.eventLoop.execute {
                client.close(promise: first)
                client.close(promise: second)
            }
            #expect(await Self.outcome(first, on: client.eventLoop) == "ok")
            #expect(await Self.outcome(second, on: client.eventLoop) == "ok")
        }
    }
}
